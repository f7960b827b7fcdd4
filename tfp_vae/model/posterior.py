"""The KL term of the ELBO, attached to the encoder in either tfp.layers style, counted once.

Stock tfp.layers mis-weights it (TF 2.21, TFP 0.25, tf_keras 2.21):
  * `KLDivergenceRegularizer` on `MultivariateNormalTriL` is applied twice, because the layer
    returns (distribution, tensor) and Keras regularizes every output: effective beta = 2 beta.
  * `KLDivergenceAddLoss(use_exact_kl=True)` adds the batch *sum*: effective beta = beta * batch.
Here both styles add exactly one loss, beta * mean over the batch of KL(q(z|x) || p(z)), in nats
per example, with the KL summed over latent dimensions.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras
from tensorflow_probability import distributions as tfd
from tensorflow_probability import layers as tfpl

from tfp_vae.model.streams import stream_seed


def standard_normal_prior(latent_dim: int) -> tfd.Distribution:
    """p(z) = N(0, I) as a `MultivariateNormalDiag` (exact KL against MVNTriL is registered)."""
    return tfd.MultivariateNormalDiag(loc=tf.zeros([latent_dim]), name="prior")


class KLDivergence:
    """Per-example KL(q || prior), exact or Monte Carlo, weighted by beta (or capacity objective).

    Args:
      prior: p(z), a distribution with event [latent_dim], or a function of no arguments returning
        the current one (a learned prior, rebuilt from its variables at every loss).
      beta: weight of the KL in the loss (>= 0).
      mode: "exact" (analytic) or "sampled" (mean over `num_samples` draws z ~ q of
        log q(z) - log p(z)).
      num_samples: draws per example for the sampled estimate.
      capacity: None for the plain penalty beta * mean_B KL; a number C (nats) for the capacity
        objective of Burgess et al. 2018, beta * |mean_B KL - C|.

    `beta` and `capacity` are non-trainable `tf.Variable`s, read when the loss is computed, so the
    train step can set them every step (`VAE.follow_kl_schedule`) without retracing.
    """

    def __init__(
        self,
        prior: tfd.Distribution | Callable[[], tfd.Distribution],
        beta: float = 1.0,
        mode: str = "exact",
        num_samples: int = 10,
        capacity: float | None = None,
    ) -> None:
        self.prior = prior
        self.beta = tf.Variable(float(beta), trainable=False, dtype=tf.float32, name="kl_beta")
        self.capacity = (
            None
            if capacity is None
            else tf.Variable(float(capacity), trainable=False, dtype=tf.float32, name="kl_capacity")
        )
        self.mode = mode
        self.num_samples = int(num_samples)

    def per_example(self, q: tfd.Distribution) -> tf.Tensor:
        """q: batch [B] of distributions over z -> KL [B] in nats."""
        q = getattr(q, "_tfp_distribution", q)  # a tfp.layers tensor carries its distribution
        prior = self.prior() if callable(self.prior) else self.prior
        if self.mode == "exact":
            return tfd.kl_divergence(q, prior)
        z = q.sample(self.num_samples, seed=stream_seed())  # [S, B, latent_dim]
        return tf.reduce_mean(q.log_prob(z) - prior.log_prob(z), axis=0)

    def weighted(self, kl_total: tf.Tensor, count: tf.Tensor | float) -> tf.Tensor:
        """The penalty for `count` examples whose KLs sum to `kl_total` (nats), times `count`.

        beta * kl_total, or with a capacity beta * count * |kl_total / count - C|. The absolute
        value is only taken in capacity mode: a sampled KL estimate can be negative on a batch,
        and the plain penalty must stay an unbiased beta * KL.
        """
        if self.capacity is None:
            return self.beta * kl_total
        return self.beta * count * tf.abs(kl_total / count - self.capacity)

    def penalty(self, q: tfd.Distribution) -> tf.Tensor:
        """The one loss the encoder carries: beta * mean_B KL (or beta * |mean_B KL - C|), a
        scalar in nats per example."""
        return self.weighted(tf.reduce_mean(self.per_example(q)), 1.0)


class KLRegularizer(tf_keras.regularizers.Regularizer):
    """Activity regularizer for `PosteriorTriL`: returns beta * sum_B KL (B times the penalty).

    Keras divides an activity regularizer's value by the batch size, so the loss it adds is
    beta * mean_B KL (or beta * |mean_B KL - C| with a capacity).
    """

    def __init__(self, divergence: KLDivergence):
        self.divergence = divergence

    def __call__(self, q):
        kl = self.divergence.per_example(q)
        return self.divergence.weighted(tf.reduce_sum(kl), tf.cast(tf.shape(kl)[0], kl.dtype))


# Added to the softplus of the scale's diagonal, as in `tfpl.MultivariateNormalTriL.new`.
_DIAG_SHIFT = 1e-5


def posterior_distribution(params, event_size: int) -> tfd.MultivariateNormalTriL:
    """params [B, event + event (event + 1) / 2] -> q(z|x), bit for bit `tfpl.MultivariateNormalTriL.new`.

    loc = params[..., :event]; scale_tril = fill_triangular(rest) with its diagonal replaced by
    softplus(diagonal) + 1e-5. The stock layer replaces the diagonal with `tf.linalg.set_diag`,
    whose gradient cannot be XLA-compiled when the batch size is unknown at trace time (it builds
    a shape of data-dependent length); selecting the diagonal with `tf.where` picks the very same
    values and compiles, which is what lets the training step run under XLA.
    """
    params = tf.convert_to_tensor(params, name="params")
    tril = tfp.math.fill_triangular(params[..., event_size:])
    diag = tf.nn.softplus(tf.linalg.diag_part(tril)) + tf.constant(_DIAG_SHIFT, params.dtype)
    on_diagonal = tf.cast(tf.eye(event_size), tf.bool)
    scale_tril = tf.where(on_diagonal, tf.linalg.diag(diag), tril)
    return tfd.MultivariateNormalTriL(loc=params[..., :event_size], scale_tril=scale_tril)


def sample_from_stream(q: tfd.Distribution) -> tf.Tensor:
    """One draw z ~ q, seeded from the current `random_stream` (a stateful draw outside one)."""
    return q.sample(seed=stream_seed())


class PosteriorTriL(tfpl.MultivariateNormalTriL):
    """`tfp.layers.MultivariateNormalTriL` whose activity regularizer is applied once.

    The stock layer hands Keras both its distribution and that distribution's tensor value, and
    Keras applies the activity regularizer to each: the KL would be counted twice. Its
    distribution is built by `posterior_distribution` (the stock one, XLA-compilable); its tensor
    value is a draw seeded from the current `random_stream` (`sample_from_stream`), so training
    steps draw reproducibly under XLA.
    """

    def __init__(self, event_size: int, convert_to_tensor_fn=None, **kwargs):
        # What `tfpl.MultivariateNormalTriL.__init__` does, with our (identical) distribution
        # function in place of its `lambda t: MultivariateNormalTriL.new(t, event_size)`.
        tfpl.DistributionLambda.__init__(
            self,
            functools.partial(posterior_distribution, event_size=event_size),
            convert_to_tensor_fn or sample_from_stream,
            **kwargs,
        )

    def _handle_activity_regularization(self, inputs, outputs):
        if isinstance(outputs, (tuple, list)):
            outputs = outputs[0]  # the distribution; outputs[1] is its sampled tensor value
        super()._handle_activity_regularization(inputs, outputs)


class KLAddLoss(tf_keras.layers.Layer):
    """Pass-through layer after the posterior that adds the divergence's penalty to the model's losses."""

    def __init__(self, divergence: KLDivergence, **kwargs):
        super().__init__(**kwargs)
        self.divergence = divergence

    def call(self, q):
        self.add_loss(self.divergence.penalty(q))
        return q


class DiagonalScaleParams(tf_keras.layers.Layer):
    """[B, 2 d] (loc, raw diagonal) -> [B, d + d (d + 1) / 2], the parameters of a
    `MultivariateNormalTriL` whose scale's off-diagonal entries are exactly 0 (no weights)."""

    def __init__(self, event_size: int, **kwargs):
        super().__init__(**kwargs)
        self.event_size = event_size

    def call(self, params):
        loc, raw = params[..., : self.event_size], params[..., self.event_size :]
        return tf.concat([loc, tfp.math.fill_triangular_inverse(tf.linalg.diag(raw))], axis=-1)


def _full_params(latent_dim: int) -> list:
    return [
        tf_keras.layers.Dense(tfpl.MultivariateNormalTriL.params_size(latent_dim), name="posterior_params")
    ]


def _diagonal_params(latent_dim: int) -> list:
    return [
        tf_keras.layers.Dense(2 * latent_dim, name="posterior_params"),
        DiagonalScaleParams(latent_dim, name="diagonal_scale"),
    ]


# `VAEConfig.posterior` -> the layers giving the posterior's parameters [B, params_size].
POSTERIOR_PARAMS: dict[str, Callable[[int], list]] = {"full": _full_params, "diagonal": _diagonal_params}


def posterior_head(latent_dim: int, divergence: KLDivergence, style: str, covariance: str = "full") -> list:
    """Layers ending an encoder: features [B, F] -> q(z|x), carrying the KL in `style`.

    style "regularizer": the KL is the posterior layer's activity regularizer;
    style "add_loss": a `KLAddLoss` layer follows the posterior layer.
    covariance "full" or "diagonal" (`POSTERIOR_PARAMS`): the posterior is the same
    `MultivariateNormalTriL` layer either way; "diagonal" feeds it a scale with zero off-diagonal.
    """
    regularizer = KLRegularizer(divergence) if style == "regularizer" else None
    layers = [
        *POSTERIOR_PARAMS[covariance](latent_dim),
        PosteriorTriL(latent_dim, activity_regularizer=regularizer, name="posterior"),
    ]
    if style == "add_loss":
        layers.append(KLAddLoss(divergence, name="kl_add_loss"))
    return layers
