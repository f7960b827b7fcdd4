"""The decoder likelihood families: entries of `tfp_vae.choices.LIKELIHOODS`, keyed by name.

A family turns the decoder's raw outputs into a distribution over the whole image and says how
many raw outputs it needs per pixel; how uint8 images are scaled for it and which values it
supports are declared with its name (`tfp_vae.choices`) and done by `tfp_vae.data.pixels`.
Adding a family: declare it there, then `LIKELIHOODS.register(name, Likelihood(...))` here.

>>> fam = LIKELIHOODS["beta"]
>>> fam.params_size((28, 28, 1))
1568
>>> import tensorflow as tf
>>> p = fam.distribution(tf.zeros([3, 1568]), (28, 28, 1))   # batch 3 -> Independent(Beta)
>>> p.batch_shape.as_list(), p.event_shape.as_list()
([3], [28, 28, 1])
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import tensorflow as tf
from tensorflow_probability import distributions as tfd
from tensorflow_probability import layers as tfpl

from tfp_vae.choices import LIKELIHOODS
from tfp_vae.data.pixels import SUPPORTS, check_support

if TYPE_CHECKING:
    from tfp_vae.config import VAEConfig


# Smallest concentration/scale a decoder can emit: keeps log_prob finite whatever the raw output.
_EPS = 1e-3


def _unflatten(params, event_shape, k):
    """[..., prod(event_shape) * k] -> [..., *event_shape, k]; leading (sample, batch) axes kept."""
    new_shape = tf.concat([tf.shape(params)[:-1], list(event_shape) + [k]], axis=0)
    return tf.reshape(params, new_shape)


@dataclasses.dataclass(frozen=True)
class Likelihood:
    """One decoder family.

    Attributes:
      name: registry key.
      params_per_pixel: raw decoder outputs per pixel.
      make: `(params [..., H, W, C, k]) -> tfd.Distribution` with scalar event, batch [..., H, W, C].
      config_fields: `VAEConfig` fields the family reads, passed to `make` as keywords.
    """

    name: str
    params_per_pixel: int
    make: Callable[..., tfd.Distribution]  # params, then the `config_fields` as keywords
    config_fields: tuple[str, ...] = ()

    @property
    def description(self) -> str:
        return LIKELIHOODS.help(self.name)

    @property
    def support(self) -> str:
        """The values the family supports, in words, e.g. "(0, 1)"."""
        return SUPPORTS.help(LIKELIHOODS.fact(self.name, "support"))

    def check(self, x: np.ndarray) -> None:
        """Raises `DataError` (or warns) for float images outside the family's support."""
        check_support(x, self.name)

    def params_size(self, event_shape: tuple[int, ...]) -> int:
        """Number of raw decoder outputs for one image of `event_shape` (H, W, C)."""
        return int(np.prod(event_shape)) * self.params_per_pixel

    def options(self, config: VAEConfig) -> dict[str, Any]:
        """The keyword options this family takes from `config` ({} for most families)."""
        return {name: getattr(config, name) for name in self.config_fields}

    def distribution(
        self, params: tf.Tensor, event_shape: tuple[int, ...], **options: Any
    ) -> tfd.Distribution:
        """params [..., params_size] -> distribution with batch [...] and event `event_shape`."""
        pixels = self.make(_unflatten(params, event_shape, self.params_per_pixel), **options)
        return tfd.Independent(pixels, reinterpreted_batch_ndims=len(event_shape))

    def layer(self, event_shape: tuple[int, ...], **options: Any) -> tf.Module:
        """A tfp.layers `DistributionLambda` emitting `distribution(params, event_shape)`.

        Its tensor value is the distribution's mean (the reconstruction), so no unused sample is
        drawn every step. `options`: the family's config fields (see `options`).
        """
        return tfpl.DistributionLambda(
            functools.partial(self.distribution, event_shape=tuple(event_shape), **options),
            convert_to_tensor_fn=tfd.Distribution.mean,
            name=f"{self.name}_likelihood",
        )


# ---------------------------------------------------------------------------- the families
class LogitBernoulli(tfd.Bernoulli):
    """`tfd.Bernoulli(logits=l)` whose log_prob costs one softplus per pixel, not two.

    log p(x) = x log sigmoid(l) + (1 - x) log sigmoid(-l) = x l - softplus(l), written in the
    stable form of `tf.nn.sigmoid_cross_entropy_with_logits`: x l - max(l, 0) - log1p(exp(-|l|)).
    Same values as the stock class for finite logits (the stock one takes softplus(l) and
    softplus(-l)); the per-pixel transcendental functions are the largest elementwise cost of
    training and evaluation, about as much as the decoder's last matmul.

    >>> l, x = tf.constant([-30.0, -1.0, 0.0, 2.0, 30.0]), tf.constant([1.0, 0.0, 1.0, 1.0, 0.0])
    >>> bool(np.allclose(LogitBernoulli(logits=l).log_prob(x), tfd.Bernoulli(logits=l).log_prob(x)))
    True
    """

    def _log_prob(self, event):
        logits = tf.convert_to_tensor(self._logits)
        event = tf.cast(event, logits.dtype)
        return event * logits - tf.nn.relu(logits) - tf.math.log1p(tf.exp(-tf.abs(logits)))


def _bernoulli(logits):
    # logits [..., H, W, C, 1]
    return LogitBernoulli(logits=logits[..., 0], dtype=tf.float32)


def _beta(t):
    # t [..., H, W, C, 2]; softplus keeps both concentrations positive without exp overflow.
    concentration = tf.math.softplus(t) + _EPS
    return tfd.Beta(concentration1=concentration[..., 0], concentration0=concentration[..., 1])


LIKELIHOODS.register(
    "bernoulli",
    Likelihood(
        name="bernoulli",
        params_per_pixel=1,
        make=_bernoulli,
    ),
)

LIKELIHOODS.register(
    "beta",
    Likelihood(
        name="beta",
        params_per_pixel=2,
        make=_beta,
    ),
)


# ---------------------------------------------------------------------------- Gaussian families
# Pixels scaled to [0, 1] like the Bernoulli's; a Normal puts mass on all reals, so only
# finiteness is checked. With a fixed sigma, -log p(x|z) = ||x - mu||^2 / (2 sigma^2) + const:
# the "MSE loss" of many tutorials is this family with its constant and its 1/(2 sigma^2) dropped.
def _normal_fixed(loc, normal_sigma):
    # loc [..., H, W, C, 1]; sigma is VAEConfig.normal_sigma, the same for every pixel.
    return tfd.Normal(loc=loc[..., 0], scale=tf.cast(normal_sigma, loc.dtype))


def _normal_learned(t):
    # t [..., H, W, C, 2]: mean, and a softplus scale per pixel (floored so log_prob stays finite
    # on constant pixels such as a black background).
    return tfd.Normal(loc=t[..., 0], scale=tf.math.softplus(t[..., 1]) + _EPS)


LIKELIHOODS.register(
    "normal_fixed",
    Likelihood(
        name="normal_fixed",
        params_per_pixel=1,
        make=_normal_fixed,
        config_fields=("normal_sigma",),
    ),
)

LIKELIHOODS.register(
    "normal",
    Likelihood(
        name="normal",
        params_per_pixel=2,
        make=_normal_learned,
    ),
)


def _continuous_bernoulli(logits):
    # logits [..., H, W, C, 1]. Unlike the Bernoulli, this density is normalised on [0, 1]
    # (Loaiza-Ganem & Cunningham 2019), so its nats on grey-level images are a real log-density.
    return tfd.ContinuousBernoulli(logits=logits[..., 0])


LIKELIHOODS.register(
    "continuous_bernoulli",
    Likelihood(
        name="continuous_bernoulli",
        params_per_pixel=1,
        make=_continuous_bernoulli,
    ),
)
