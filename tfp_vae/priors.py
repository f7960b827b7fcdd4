"""Priors p(z): registry `PRIORS`, keyed by `VAEConfig.prior`.

Each entry builds a tf_keras layer that holds the prior's variables (none for `standard`) and whose
`distribution()` is p(z) as a `tfd.Distribution` with event [latent_dim], built from the current
variables each time it is called (inside a training step, so gradients reach them):

  standard  N(0, I), a `MultivariateNormalDiag`: the KL against q(z|x) has a closed form.
  mixture   sum_k pi_k N(mu_k, diag(sigma_k^2)), K = `prior_components` Gaussians with learned
            logits, means and scales (`tfd.MixtureSameFamily`).
  vamp      the VampPrior (Tomczak & Welling 2018): 1/K sum_k q(z | u_k), K learned pseudo-inputs
            u_k in (0, 1) of the image shape pushed through the encoder's own network.

Only `standard` has an analytic KL (`Prior.analytic_kl`); the others need `kl="sampled"`, whose
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

import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras
from tensorflow_probability import distributions as tfd

from tfp_vae.config import VAEConfig
from tfp_vae.divergence import standard_normal_prior

tfde = tfp.experimental.distributions

# Raw scale whose softplus is 1: mixture components start as unit Gaussians.
_UNIT_SCALE = math.log(math.expm1(1.0))
# Spread of the mixture means at initialisation: enough to tell the components apart, small
# against the unit scales so the initial prior is close to N(0, I).
_MEAN_SPREAD = 0.5
# Added to the softplus of the mixture scales, as `posterior_distribution` does, so no scale
# reaches 0.
_SCALE_SHIFT = 1e-5


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
    (`tfp_vae.encoders.posterior_without_kl`): encoding the pseudo-inputs adds no loss and never
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

    def distribution(self) -> tfd.Distribution:
        q = self._encode(self.pseudo_inputs())  # q(z | u_k): N(mu_k, L_k L_k^T), batch [K]
        # The same Gaussians, parameterised by the precision factor L_k^-T: log p(z) then costs
        # a matrix-vector product per component instead of a triangular solve broadcast over all
        # (draw, example, component) triples, which under XLA made a training step with K = 500
        # (latent_dim 40, hidden 300-300, batch 32) take 2.1 s instead of 0.35 s on 2 CPU cores.
        scale = q.scale.to_dense()
        identity = tf.eye(scale.shape[-1], batch_shape=tf.shape(scale)[:-2])
        inverse = tf.linalg.triangular_solve(scale, identity)  # L_k^-1, lower triangular
        components = tfde.MultivariateNormalPrecisionFactorLinearOperator(
            loc=q.loc, precision_factor=tf.linalg.LinearOperatorLowerTriangular(inverse).adjoint()
        )
        return tfd.MixtureSameFamily(
            mixture_distribution=tfd.Categorical(logits=tf.zeros(tf.shape(q.loc)[:-1])),
            components_distribution=components,
            name="prior",
        )


@dataclasses.dataclass(frozen=True)
class Prior:
    """A registry entry: `build(cfg, encode)` -> a layer with `distribution()`; `analytic_kl`:
    whether KL(q(z|x) || p(z)) has a closed form (else `kl` must be "sampled")."""

    build: Callable
    analytic_kl: bool


PRIORS = {
    "standard": Prior(lambda cfg, encode: StandardPrior(cfg.latent_dim, name="prior"), True),
    "mixture": Prior(
        lambda cfg, encode: MixturePrior(cfg.latent_dim, cfg.prior_components, name="prior"), False
    ),
    "vamp": Prior(
        lambda cfg, encode: VampPrior(cfg.input_shape, cfg.prior_components, encode, name="prior"), False
    ),
}


def build_prior(cfg: VAEConfig, encode: Callable | None = None) -> tf_keras.layers.Layer:
    """The prior layer of `cfg.prior`. encode: images [K, H, W, C] -> posteriors batch [K] without
    the KL loss, needed by "vamp" only (`VAE` passes its encoder's)."""
    return PRIORS[cfg.prior].build(cfg, encode)
