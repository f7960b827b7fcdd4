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
    times_field: one of `config_fields` (e.g. the number of mixture components) that multiplies
      `params_per_pixel`, or None.
    """

    name: str
    params_per_pixel: int
    make: Callable[..., tfd.Distribution]  # params, then the `config_fields` as keywords
    config_fields: tuple[str, ...] = ()
    times_field: str | None = None

    def outputs_per_pixel(self, **options: Any) -> int:
        """Raw decoder outputs per pixel, given the family's `options`."""
        return self.params_per_pixel * (int(options[self.times_field]) if self.times_field else 1)

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

    def params_size(self, event_shape: tuple[int, ...], **options: Any) -> int:
        """Number of raw decoder outputs for one image of `event_shape` (H, W, C)."""
        return int(np.prod(event_shape)) * self.outputs_per_pixel(**options)

    def options(self, config: VAEConfig) -> dict[str, Any]:
        """The keyword options this family takes from `config` ({} for most families)."""
        return {name: getattr(config, name) for name in self.config_fields}

    def distribution(
        self, params: tf.Tensor, event_shape: tuple[int, ...], **options: Any
    ) -> tfd.Distribution:
        """params [..., params_size] -> distribution with batch [...] and event `event_shape`."""
        pixels = self.make(_unflatten(params, event_shape, self.outputs_per_pixel(**options)), **options)
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


# ---------------------------------------------------------------------------- discretized family
class DiscretizedLogisticMixture(tfd.Distribution):
    """A mixture of K discretized logistics on the grey levels 0..255 (Salimans et al. 2017).

    Component k puts on level v the mass of a Logistic(loc_k, scale_k) over the bin [v - 1/2,
    v + 1/2], level 0 taking (-inf, 1/2] and level 255 taking [254.5, inf): a probability of the
    8-bit value, normalised over the 256 levels. Parameters live on PixelCNN++'s scale, the
    levels mapped to [-1, 1] (v -> 2 v / 255 - 1, bins of width 2 / 255), where a decoder's raw
    outputs near 0 mean a mid-grey pixel.

    Written directly rather than as MixtureSameFamily(Categorical, QuantizedDistribution(Logistic)):
    the mass of an inner bin is computed in the closed form
        log(sigmoid(a) - sigmoid(b)) = -softplus(-a) - softplus(b) + log(-expm1(b - a)),
    a = (x + h - loc) / scale, b = (x - h - loc) / scale, which never subtracts two CDFs (finite
    and accurate far in the tails, where QuantizedDistribution's difference of CDFs or survival
    functions underflows to log 0), costs three transcendental functions per component and pixel
    (the stock one six or more, with its own branches), and gives finite gradients everywhere.
    QuantizedDistribution has no mean either (reconstructions plot it).

    logits, loc, scale: [..., K] (batch [...]): the mixture's logits over its K components, and
    each logistic's location and scale (> 0) on the [-1, 1] scale of the grey levels.
    Event: scalar, a grey level (float, integer-valued) in 0..255.
    """

    def __init__(
        self, logits, loc, scale, validate_args=False, allow_nan_stats=True, name="DiscretizedLogisticMixture"
    ):
        parameters = dict(locals())
        with tf.name_scope(name) as name:
            self._logits = tf.convert_to_tensor(logits, dtype_hint=tf.float32, name="logits")
            self._loc = tf.convert_to_tensor(loc, dtype=self._logits.dtype, name="loc")
            self._scale = tf.convert_to_tensor(scale, dtype=self._logits.dtype, name="scale")
            super().__init__(
                dtype=self._logits.dtype,
                reparameterization_type=tfd.NOT_REPARAMETERIZED,
                validate_args=validate_args,
                allow_nan_stats=allow_nan_stats,
                parameters=parameters,
                name=name,
            )

    @classmethod
    def _parameter_properties(cls, dtype, num_classes=None):
        from tensorflow_probability.python.internal import parameter_properties  # TFP's own helper type

        return {
            "logits": parameter_properties.ParameterProperties(event_ndims=1),
            "loc": parameter_properties.ParameterProperties(event_ndims=1),
            "scale": parameter_properties.ParameterProperties(event_ndims=1),
        }

    @property
    def logits(self):
        return self._logits

    @property
    def loc(self):
        return self._loc

    @property
    def scale(self):
        return self._scale

    def _event_shape(self):
        return tf.TensorShape([])

    def _event_shape_tensor(self):
        return tf.constant([], tf.int32)

    def _log_prob(self, x):
        # x [...] grey levels -> log P(x) [...]; components on the last axis.
        levels = tf.cast(x, self.dtype)[..., None]
        centred = (levels * (2.0 / 255.0) - 1.0 - self._loc) / self._scale  # [..., K]
        half = (1.0 / 255.0) / self._scale  # half a bin, in units of the scale
        upper, lower = centred + half, centred - half
        below = -tf.math.softplus(-upper)  # log F(upper): level 0 takes the lower tail
        above = -tf.math.softplus(lower)  # log (1 - F(lower)): level 255 takes the upper tail
        inner = below + above + tf.math.log(-tf.math.expm1(-2.0 * half))
        component = tf.where(levels < 0.5, below, tf.where(levels > 254.5, above, inner))
        return tf.reduce_logsumexp(tf.nn.log_softmax(self._logits) + component, axis=-1)

    def _sample_n(self, n, seed=None):
        # A component per draw, a logistic draw from it, rounded to its bin (edges take the tails).
        from tensorflow_probability.python.internal import samplers  # TFP's stateless seed splitter

        pick_seed, draw_seed = samplers.split_seed(seed, salt="DiscretizedLogisticMixture")
        shape = tf.concat([[n], tf.shape(self._logits)], 0)
        k = tf.shape(self._logits)[-1]
        pick = tfd.Categorical(logits=self._logits).sample(n, seed=pick_seed)  # [n, ...]
        one_hot = tf.one_hot(pick, k, dtype=self.dtype)
        u = samplers.uniform(shape[:-1], minval=1e-6, maxval=1 - 1e-6, dtype=self.dtype, seed=draw_seed)
        loc = tf.reduce_sum(one_hot * self._loc, -1)
        scale = tf.reduce_sum(one_hot * self._scale, -1)
        y = loc + scale * (tf.math.log(u) - tf.math.log1p(-u))  # Logistic(loc, scale)
        return tf.clip_by_value(tf.round((y + 1.0) * 127.5), 0.0, 255.0)

    def _mean(self):
        # E[X] = sum_{v=1}^{255} P(X >= v), P(X >= v) = sum_k w_k sigmoid(-(edge_v - loc_k) / scale_k)
        # with edge_v the lower edge of level v: exact, one pass over the 255 edges (plots only).
        weights = tf.nn.softmax(self._logits)

        def add_level(total, v):
            edge = (v - 0.5) * (2.0 / 255.0) - 1.0
            return total + tf.reduce_sum(weights * tf.sigmoid((self._loc - edge) / self._scale), -1)

        levels = tf.range(1, 256, dtype=self.dtype)
        return tf.foldl(add_level, levels, initializer=tf.zeros_like(self._logits[..., 0]))

    def _default_event_space_bijector(self):
        return None


def _discretized_logistic(t, likelihood_components):
    # t [..., H, W, C, 3K]: K mixture logits, K locations, K raw scales (softplus, floored) on the
    # [-1, 1] scale; the floor is 1/8 of a bin, where one level holds all of a component's mass.
    logits, loc, raw = tf.split(t, 3, axis=-1)
    return DiscretizedLogisticMixture(logits, loc, tf.math.softplus(raw) + _EPS)


LIKELIHOODS.register(
    "discretized_logistic",
    Likelihood(
        name="discretized_logistic",
        params_per_pixel=3,
        make=_discretized_logistic,
        config_fields=("likelihood_components",),
        times_field="likelihood_components",
    ),
)
