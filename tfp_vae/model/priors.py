"""Priors p(z): entries of registry `tfp_vae.choices.PRIORS`, keyed by `VAEConfig.prior`.

Each entry builds a tf_keras layer that holds the prior's variables (none for `standard`) and whose
`distribution()` is p(z) as a `tfd.Distribution` with event [latent_dim], built from the current
variables each time it is called (inside a training step, so gradients reach them):

  standard  N(0, I), a `MultivariateNormalDiag`: the KL against q(z|x) has a closed form.
  mixture   sum_k pi_k N(mu_k, diag(sigma_k^2)), K = `prior_components` Gaussians with learned
            logits, means and scales (`tfd.MixtureSameFamily`).
  vamp      the VampPrior (Tomczak & Welling 2018): 1/K sum_k q(z | u_k), K learned pseudo-inputs
            u_k in (0, 1) of the image shape pushed through the encoder's own network.

Only `standard` has an analytic KL (`PRIORS.fact(name, "analytic_kl")`); the others need `kl="sampled"`, whose
estimate costs K component log-densities per posterior draw.

>>> from tfp_vae.config import VAEConfig
>>> layer = build_prior(VAEConfig(latent_dim=3, prior="mixture", prior_components=5, kl="sampled"))
>>> p = layer.distribution()
>>> p.event_shape.as_list(), len(layer.trainable_weights)
([3], 3)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np
import tensorflow as tf
import tf_keras
from tensorflow_probability import distributions as tfd

from tfp_vae.choices import PRIORS
from tfp_vae.config import VAEConfig
from tfp_vae.model.posterior import standard_normal_prior

# Raw scale whose softplus is 1: mixture components start as unit Gaussians.
_UNIT_SCALE = math.log(math.expm1(1.0))
# Spread of the mixture means at initialisation: enough to tell the components apart, small
# against the unit scales so the initial prior is close to N(0, I).
_MEAN_SPREAD = 0.5
# Added to the softplus of the mixture scales, as `posterior_distribution` does, so no scale
# reaches 0.
_SCALE_SHIFT = 1e-5
# Pseudo-inputs started from training images are clipped to [_PSEUDO_CLIP, 1 - _PSEUDO_CLIP].
_PSEUDO_CLIP = 0.01
# Largest block of whitened points P_k z (float32 values, 64 MB) `GaussianMixtureTriL.log_prob`
# holds at once.
_WHITE_VALUES = 2**24


class StandardPrior(tf_keras.layers.Layer):
    """p(z) = N(0, I) (`standard_normal_prior`); no variables."""

    def __init__(self, latent_dim: int, **kwargs):
        super().__init__(**kwargs)
        self._prior = standard_normal_prior(latent_dim)

    def distribution(self) -> tfd.Distribution:
        return self._prior


class MixturePrior(tf_keras.layers.Layer):
    """A learned mixture of `components` diagonal Gaussians over z [latent_dim].

    Variables: `logits` [K] (start equal), `means` [K, d] (start N(0, 0.5^2)), `raw_scales`
    [K, d] (scales = softplus(raw_scales) + 1e-5, start 1).
    """

    def __init__(self, latent_dim: int, components: int, **kwargs):
        super().__init__(**kwargs)
        self.logits = self.add_weight(name="logits", shape=[components], initializer="zeros")
        self.means = self.add_weight(
            name="means",
            shape=[components, latent_dim],
            initializer=tf_keras.initializers.RandomNormal(stddev=_MEAN_SPREAD),
        )
        self.raw_scales = self.add_weight(
            name="raw_scales",
            shape=[components, latent_dim],
            initializer=tf_keras.initializers.Constant(_UNIT_SCALE),
        )
        self.built = True

    def distribution(self) -> tfd.Distribution:
        scales = tf.nn.softplus(self.raw_scales) + _SCALE_SHIFT
        return tfd.MixtureSameFamily(
            mixture_distribution=tfd.Categorical(logits=tf.convert_to_tensor(self.logits)),
            components_distribution=tfd.MultivariateNormalDiag(
                loc=tf.convert_to_tensor(self.means), scale_diag=scales
            ),
            name="prior",
        )


class VampPrior(tf_keras.layers.Layer):
    """p(z) = 1/K sum_k q(z | u_k) (Tomczak & Welling 2018) for K learned pseudo-inputs u_k.

    u = sigmoid(raw_pseudo_inputs) [K, H, W, C] stays inside the images' range (0, 1).
    `encode` maps images [K, H, W, C] to the encoder's posteriors, a batch [K] of Gaussians over
    z, through the encoder's own weights but WITHOUT its KL loss
    (`tfp_vae.model.encoders.posterior_without_kl`): encoding the pseudo-inputs adds no loss and never
    calls the prior again. It is kept out of Keras' tracking, so the encoder's weights are saved
    once, with the encoder.
    """

    def __init__(self, image_shape, components: int, encode: Callable, **kwargs):
        super().__init__(**kwargs)
        self.raw_pseudo_inputs = self.add_weight(
            name="raw_pseudo_inputs",
            shape=[components, *image_shape],
            initializer=tf_keras.initializers.RandomNormal(stddev=1.0),
        )
        object.__setattr__(self, "_encode", encode)
        self.built = True

    def pseudo_inputs(self) -> tf.Tensor:
        """u [K, H, W, C] in (0, 1)."""
        return tf.sigmoid(self.raw_pseudo_inputs)

    def start_from_data(self, images: np.ndarray, seed: int) -> None:
        """Sets the pseudo-inputs to K of `images` [N, H, W, C] (values in [0, 1]) drawn without
        replacement (with, if N < K) by `seed`, clipped to [0.01, 0.99] so their logits stay finite
        and Adam can still move a pixel off 0 or 1 within a few epochs."""
        k = self.raw_pseudo_inputs.shape[0]
        pick = np.random.default_rng(seed).choice(len(images), size=k, replace=len(images) < k)
        u = np.clip(np.asarray(images[pick], np.float64), _PSEUDO_CLIP, 1.0 - _PSEUDO_CLIP)
        self.raw_pseudo_inputs.assign(np.log(u / (1.0 - u)).astype(np.float32))

    def distribution(self) -> tfd.Distribution:
        q = self._encode(self.pseudo_inputs())  # q(z | u_k): N(mu_k, L_k L_k^T), batch [K]
        return GaussianMixtureTriL(
            mixture_distribution=tfd.Categorical(logits=tf.zeros(tf.shape(q.loc)[:-1])),
            components_distribution=q,
            name="prior",
        )


class GaussianMixtureTriL(tfd.MixtureSameFamily):
    """sum_k pi_k N(mu_k, L_k L_k^T): a mixture of K full-covariance Gaussians over z [d] whose
    `log_prob` costs one matrix product for all components. Sampling and every other method are
    `tfd.MixtureSameFamily`'s.

    components_distribution: a `tfd.MultivariateNormalTriL` with batch [K]; the mixture itself has
    batch [] (one distribution over z).

    TFP's own `log_prob` broadcasts a triangular solve (or, with precision factors, a matvec) over
    every (point, component) pair; its gradient then builds and reduces a [points, K, d, d]
    tensor. For the VampPrior's K = 500, d = 40 and a batch of 100 the prior's gradient took 110
    ms of a 120 ms training step on 2 CPU cores; here it takes 17 ms, the encoder's pass over the
    pseudo-inputs included (`bench/vampprior.py` times whole epochs). With P_k = L_k^-1 (K small
    triangular inverses), log N(z; mu_k, L_k L_k^T) = -|P_k z - P_k mu_k|^2 / 2 + log det P_k
    - d log(2 pi) / 2, and P_k z for all k is one [K d, d] x [d, points] product.

    >>> import numpy as np
    >>> loc = np.float32([[0.0, 0.0], [3.0, 1.0]])
    >>> tril = np.float32([[[1.0, 0.0], [0.5, 2.0]], [[0.3, 0.0], [0.0, 1.0]]])
    >>> mix = tfd.Categorical(logits=[0.0, 1.0])
    >>> fast = GaussianMixtureTriL(mix, tfd.MultivariateNormalTriL(loc, tril))
    >>> stock = tfd.MixtureSameFamily(mix, tfd.MultivariateNormalTriL(loc, tril))
    >>> z = np.float32([[[0.1, -0.2], [2.9, 1.0]]])  # [1, 2, d]
    >>> np.allclose(fast.log_prob(z), stock.log_prob(z), atol=1e-5), fast.log_prob(z).shape
    (True, TensorShape([1, 2]))
    """

    def _log_prob(self, z):
        components = self.components_distribution
        loc = components.loc  # [K, d]
        if loc.shape.rank != 2 or None in loc.shape or self.mixture_distribution.batch_shape.rank != 0:
            raise ValueError(
                f"GaussianMixtureTriL: one mixture of components with a static batch [K] and event [d] "
                f"(loc [K, d], mixture logits [K]), got loc of shape {loc.shape} and mixture batch "
                f"{self.mixture_distribution.batch_shape}; use tfd.MixtureSameFamily for batches of "
                f"mixtures."
            )
        k, d = loc.shape
        precision = tf.linalg.triangular_solve(
            components.scale.to_dense(), tf.eye(d, batch_shape=[k], dtype=loc.dtype)
        )  # P_k = L_k^-1, lower triangular [K, d, d]
        log_weights = (  # [K]: log pi_k + log det P_k - d log(2 pi) / 2
            tf.math.log_softmax(self.mixture_distribution.logits_parameter())
            + tf.reduce_sum(tf.math.log(tf.abs(tf.linalg.diag_part(precision))), axis=-1)
            - 0.5 * d * math.log(2.0 * math.pi)
        )
        white_loc = tf.linalg.matvec(precision, loc)  # P_k mu_k [K, d]
        stacked = tf.reshape(precision, [k * d, d])
        points = tf.reshape(z, [-1, d])  # [N, d]

        def log_prob_rows(rows):  # [n, d] -> [n]
            white = tf.reshape(tf.matmul(stacked, rows, transpose_b=True), [k, d, -1])  # P_k z [K, d, n]
            squares = tf.reduce_sum(tf.square(white - white_loc[..., None]), axis=1)  # [K, n]
            return tf.reduce_logsumexp(log_weights[:, None] - 0.5 * squares, axis=0)

        # P_k z for all points holds K d values per point: evaluating millions of draws (IWAE)
        # goes through it in row blocks of at most _WHITE_VALUES values.
        rows = max(1, _WHITE_VALUES // (k * d))
        n = points.shape[0]
        if n is None or n <= rows:
            values = log_prob_rows(points)
        else:
            values = tf.concat([log_prob_rows(points[i : i + rows]) for i in range(0, n, rows)], 0)
        return tf.reshape(values, tf.shape(z)[:-1])


@dataclasses.dataclass(frozen=True)
class Prior:
    """A registry entry: `build(cfg, encode)` -> a layer with `distribution()`;
    `start_from_data(layer, images, seed)`: how `prior_init="data"` starts the layer (None: it
    cannot). Whether KL(q(z|x) || p(z)) has a closed form is declared with the name
    (`tfp_vae.choices.PRIORS`, fact "analytic_kl"), so a config is checked without TensorFlow."""

    name: str
    build: Callable
    start_from_data: Callable | None = None


for _prior in (
    Prior("standard", lambda cfg, encode: StandardPrior(cfg.latent_dim, name="prior")),
    Prior("mixture", lambda cfg, encode: MixturePrior(cfg.latent_dim, cfg.prior_components, name="prior")),
    Prior(
        "vamp",
        lambda cfg, encode: VampPrior(cfg.input_shape, cfg.prior_components, encode, name="prior"),
        VampPrior.start_from_data,
    ),
):
    PRIORS.register(_prior.name, _prior)


def start_prior(layer: tf_keras.layers.Layer, cfg: VAEConfig, images: np.ndarray) -> None:
    """Starts a new run's prior as `cfg.prior_init` says: "data" from training images [N, H, W, C]
    (drawn by seed + 3), "random" leaves the layer's initial variables."""
    start = PRIORS[cfg.prior].start_from_data
    if cfg.prior_init == "data" and start is not None:  # VAEConfig refuses "data" without one
        start(layer, images, cfg.seed + 3)


def build_prior(cfg: VAEConfig, encode: Callable | None = None) -> tf_keras.layers.Layer:
    """The prior layer of `cfg.prior`. encode: images [K, H, W, C] -> posteriors batch [K] without
    the KL loss, needed by "vamp" only (`VAE` passes its encoder's)."""
    return PRIORS[cfg.prior].build(cfg, encode)
