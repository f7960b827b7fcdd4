"""`evaluate`: a trained VAE's ELBO parts, importance-weighted log-likelihood and latent diagnostics.

For images x and K draws z_k ~ q(z|x), with log-weights

    log w_k = log p(x|z_k) + log p(z_k) - log q(z_k|x),

the metrics (per-example means over x, in nats, always at beta = 1 whatever the training beta) are

    nll  = -1/K sum_k log p(x|z_k)                       distortion, Monte Carlo over the K draws
    kl   = KL(q(z|x) || p(z))                            rate, analytic for the standard prior; for
                                                         a learned prior (no closed form) the Monte
                                                         Carlo estimate 1/K sum_k log q(z_k|x) - log p(z_k)
                                                         over the same K draws
    elbo = -(nll + kl)
    iwae = logsumexp_k(log w_k) - log K                  importance-weighted bound on log p(x)

with elbo <= E[iwae] <= log p(x), and iwae -> log p(x) as K grows (with a learned prior elbo <= iwae
holds draw for draw: the mean of the log w_k is at most their log-mean-exp). p(z) is the model's
current prior, `model.prior`. Also
    bits_per_dim = -iwae / (D ln 2)                      D = pixels per image
    kl_per_dim   [latent_dim]: the KL's chain-rule parts, KL = sum_d E_q KL(q(z_d|z_<d, x) || N(0, 1)),
                 which for a full-covariance posterior with Cholesky factor L are
                 0.5 (Sigma_dd + mu_d^2 - 1 - 2 log L_dd); they sum exactly to `kl` (for a diagonal
                 posterior, the usual per-dimension KLs). They assume p(z) = N(0, I): None for a
                 learned prior, whose KL does not split over dimensions
    active_units = #{d : Var_x(E_q[z_d | x]) > 0.01}      (Burda et al., 2016)

Work is vectorised over examples and draws and chunked: `batch_size` images at a time, and draws in
blocks so that at most `DRAWS_PER_CHUNK` images, and at most `DECODED_VALUES_PER_CHUNK` pixel values,
are decoded at once (32 MB of logits: 10,700 images of 28x28, 680 of 64x64x3). Peak memory is
therefore a few such tensors, whatever K and N; freed blocks of 1 MiB or more that come from
glibc's malloc go back to the system (`tfp_vae.evaluation.memory`), so its per-thread arenas
cannot keep them. The decoder's matmuls run in a TensorFlow graph
(oneDNN, faster than XLA's CPU matmuls at these shapes) and the per-pixel log-probability, the
largest elementwise cost, in one XLA-fused pass that reads the images by broadcasting, never tiled.

>>> import numpy as np
>>> from tfp_vae.model.vae import build_vae
>>> model = build_vae(latent_dim=2, input_shape=(8, 8, 1), hidden_units=(16,))   # untrained
>>> x_test = (np.random.default_rng(0).random([10, 8, 8, 1]) < 0.5).astype("float32")
>>> metrics = evaluate(model, x_test, num_samples=50, seed=0)
>>> sorted(metrics)
['active_units', 'bits_per_dim', 'elbo', 'images', 'iwae', 'iwae_standard_error', 'kl', 'kl_per_dim', 'nll']
>>> bool(metrics["elbo"] <= metrics["iwae"]), bool(np.isclose(sum(metrics["kl_per_dim"]), metrics["kl"]))
(True, True)
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_vae.choices import PRIORS
from tfp_vae.data.pixels import check_images
from tfp_vae.errors import TfpVaeError
from tfp_vae.evaluation.memory import return_large_blocks
from tfp_vae.model.precision import float32_twin

if TYPE_CHECKING:
    from tfp_vae.model.vae import VAE

# Images decoded per step: sample blocks hold DRAWS_PER_CHUNK // batch_size draws of each image,
# fewer if their pixel values would exceed DECODED_VALUES_PER_CHUNK (2^23 float32s = 32 MB, the L3
# cache of the machines this was tuned on: larger blocks only cost memory).
DRAWS_PER_CHUNK = 20_000
DECODED_VALUES_PER_CHUNK = 2**23
ACTIVE_THRESHOLD = 0.01


def evaluate(
    model: VAE, x: np.ndarray, num_samples: int = 1000, batch_size: int = 100, seed: int | None = None
) -> dict[str, Any]:
    """Metrics of `model` on images x [N, H, W, C] (already scaled for the model's likelihood).

    Args:
      model: a `tfp_vae.VAE` (anything with `encoder`, `decoder`, `prior`, `config`).
      x: float images [N, *config.input_shape], N >= 1.
      num_samples: K, importance samples per image for `iwae` (and draws for `nll`).
      batch_size: images per chunk.
      seed: None draws from TensorFlow's global generator; an int makes the draws a stateless
        function of (seed, image index, batch_size), so a repeated call gives the same numbers.

    Returns dict (per-example means over the N images, nats unless stated):
      elbo, nll, kl, iwae, bits_per_dim: floats;
      iwae_standard_error: standard error of the mean of the N per-image iwae values;
      kl_per_dim: float array [latent_dim] summing to kl (None unless the prior is N(0, I));
      active_units: int; images: N.
    """
    return summarize(model.config, per_example(model, x, num_samples, batch_size, seed))


def per_example(
    model,
    x,
    num_samples: int = 1000,
    batch_size: int = 100,
    seed: int | None = None,
    first_index: int = 0,
    progress=None,
) -> dict:
    """Per-image parts of `evaluate`: iwae, nll, kl [N] (nats), kl_per_dim and mean (E_q z)
    [N, latent_dim], float64. first_index: index of x[0] in the whole set, so that with a seed the
    images of a slice get the draws they get in a call on the whole set (when slices start at
    multiples of batch_size). progress: called with the number of images of each finished chunk."""
    model = float32_twin(model)  # evaluation runs in float32, whatever the model trains in
    config = model.config
    for name, value in (("num_samples", num_samples), ("batch_size", batch_size)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise TfpVaeError(f"evaluate: {name}={value!r} must be an integer >= 1.")
    x = np.asarray(x)
    check_images(x, config.input_shape, config.likelihood)
    x = x.astype(np.float32, copy=False)
    return_large_blocks()  # freed large blocks leave the process, whatever thread freed them

    pixels = int(np.prod(config.input_shape))
    cap = min(DRAWS_PER_CHUNK, DECODED_VALUES_PER_CHUNK // pixels) // int(batch_size)
    draws = max(1, min(int(num_samples), cap))
    analytic = PRIORS.fact(config.prior, "analytic_kl")  # only N(0, I): the chain-rule parts apply
    parts: dict[str, list] = {"iwae": [], "nll": [], "kl": [], "kl_per_dim": [], "mean": []}
    for start in range(0, len(x), batch_size):
        xb = tf.constant(x[start : start + batch_size])
        key = None if seed is None else (int(seed), first_index + start)
        log_w, log_px_z, kl, kl_parts, mean = _chunk(model, xb, int(num_samples), draws, analytic, key)
        # log_w, log_px_z [K, b]: log-mean-exp over the K draws, never exponentiating.
        parts["iwae"].append(tf.reduce_logsumexp(log_w, axis=0) - math.log(num_samples))
        parts["nll"].append(-tf.reduce_mean(log_px_z, axis=0))
        for name, value in (("kl", kl), ("kl_per_dim", kl_parts), ("mean", mean)):
            parts[name].append(value)
        if progress is not None:
            progress(len(xb))
    return {k: np.concatenate([np.asarray(v, np.float64) for v in vals]) for k, vals in parts.items()}


def summarize(config, parts: dict) -> dict:
    """`evaluate`'s metrics from the per-image parts of `per_example` (of any number of calls,
    concatenated)."""
    n = len(parts["iwae"])
    nll, kl, iwae = (float(np.mean(parts[k])) for k in ("nll", "kl", "iwae"))
    pixels = int(np.prod(config.input_shape))
    return {
        "elbo": -(nll + kl),
        "nll": nll,
        "kl": kl,
        "iwae": iwae,
        "iwae_standard_error": float(np.std(parts["iwae"], ddof=1) / math.sqrt(n)) if n > 1 else math.nan,
        "bits_per_dim": -iwae / (pixels * math.log(2)),
        "kl_per_dim": np.mean(parts["kl_per_dim"], axis=0)
        if PRIORS.fact(config.prior, "analytic_kl")
        else None,
        "active_units": active_units(parts["mean"]),
        "images": n,
    }


def _chunk(model, xb, num_samples: int, draws: int, analytic: bool, key=None):
    """For images xb [b, ...]: log_w and log p(x|z) [K, b], KL [b], its parts [b, d] (zeros unless
    `analytic`), E_q z [b, d]. key: None, or (seed, index of xb[0]) for stateless draws."""
    q = model.encoder(xb, training=False)
    mean, scale = q.mean(), q.scale.to_dense()  # [b, d], Cholesky factor [b, d, d]
    log_w, log_px_z = [], []
    for done in range(0, num_samples, draws):
        seed = () if key is None else (tf.random.experimental.stateless_fold_in(key, done),)
        w, px_z = _log_weights(model, mean, scale, xb, min(draws, num_samples - done), *seed)
        log_w.append(w)
        log_px_z.append(px_z)
    log_w, log_px_z = tf.concat(log_w, 0), tf.concat(log_px_z, 0)
    if analytic:
        return log_w, log_px_z, tfp.distributions.kl_divergence(q, model.prior), _chain_rule_kl(q), mean
    # log q(z_k|x) - log p(z_k) = log p(x|z_k) - log w_k: the K draws already made.
    kl = tf.reduce_mean(log_px_z - log_w, axis=0)
    return log_w, log_px_z, kl, tf.zeros_like(mean), mean


@tf.function  # a graph: the decoder's matmuls run in oneDNN; traced once per model, batch and `num`
def _log_weights(model, loc, scale_tril, xb, num: int, seed=None):
    """num draws z ~ q(z|x) = N(loc, scale_tril scale_tril^T): (log w, log p(x|z)), each [num, b].

    q comes in as tensors, not as the encoder's distribution object, which tf.function would
    treat as a new Python argument (and retrace for) at every call. seed: None, or a stateless
    seed [2] (a tensor: no retrace per seed).
    """
    q = tfp.distributions.MultivariateNormalTriL(loc=loc, scale_tril=scale_tril)
    z = q.sample(num, seed=seed)  # [num, b, d]
    p = model.decoder(tf.reshape(z, [-1, tf.shape(z)[2]]), training=False)  # batch [num * b], draw-major

    # One fused XLA pass over the [num * b, D] decoder output: elementwise log-probabilities and
    # their sum per image. The images are broadcast over the draws inside it, so XLA reads xb
    # without ever tiling it num times in memory.
    @tf.function(jit_compile=True)
    def log_likelihood(xb):
        images = tf.broadcast_to(xb, tf.concat([[num], tf.shape(xb)], 0))  # [num, b, H, W, C]
        images = tf.reshape(images, tf.concat([[-1], tf.shape(xb)[1:]], 0))  # draw-major, as p
        return tf.reshape(p.log_prob(images), [num, -1])

    log_px_z = log_likelihood(xb)
    return log_px_z + model.prior.log_prob(z) - q.log_prob(z), log_px_z


def _chain_rule_kl(q):
    """[b, d]: 0.5 (Sigma_dd + mu_d^2 - 1 - 2 log L_dd), the chain-rule parts of KL(q || N(0, I)).

    The prior is the standard normal of `standard_normal_prior`; q is any Gaussian with a
    lower-triangular scale (MultivariateNormalTriL, or Diag as a special case).
    """
    scale = q.scale.to_dense()  # Cholesky factor L [b, d, d]
    variance = tf.reduce_sum(tf.square(scale), axis=-1)  # Sigma_dd = sum_j L_dj^2
    log_diag = tf.math.log(tf.abs(tf.linalg.diag_part(scale)))
    return 0.5 * (variance + tf.square(q.mean()) - 1.0 - 2.0 * log_diag)


def posterior_means(model: VAE, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """E_q[z|x] for images x [N, H, W, C], in batches: float32 [N, latent_dim]."""
    model = float32_twin(model)  # in float32, whatever the model trains in
    x = np.asarray(x, np.float32)
    return np.concatenate(
        [
            model.encoder(x[i : i + batch_size], training=False).mean().numpy()
            for i in range(0, len(x), batch_size)
        ]
    )


def active_units(means) -> int:
    """Number of latent dims d with Var over images of E_q[z_d|x] > ACTIVE_THRESHOLD; means [N, d]."""
    return int(np.sum(np.var(np.asarray(means), axis=0) > ACTIVE_THRESHOLD))


def active_directions(means, threshold: float = ACTIVE_THRESHOLD) -> int:
    """Rotation-invariant count of active latent directions: eigenvalues of Cov_x(E_q[z|x]) above
    `threshold`. means: posterior means [N, latent_dim] (`posterior_means`).

    `active_units` counts coordinates. With a full-covariance posterior and the isotropic prior
    N(0, I) the objective is invariant to rotating z, so a 2-D code may be spread over all
    coordinates (each with variance > 0.01) and every coordinate counts as active; the
    eigenvalues count the code's dimensions whatever its orientation.
    """
    means = np.asarray(means, np.float64)
    if means.ndim != 2 or len(means) < 2:
        raise TfpVaeError(
            f"active_directions needs posterior means [N >= 2, latent_dim], got shape {means.shape}."
        )
    covariance = np.cov(means, rowvar=False).reshape(means.shape[1], -1)
    return int(np.sum(np.linalg.eigvalsh(covariance) > threshold))
