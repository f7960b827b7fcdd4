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
current prior, `model.prior`. Also, on one scale for every family (Theis et al. 2016),
    bits_per_dim = -log P(x) / (D ln 2)                  D = pixels per image, P(x) the probability
                 of the discrete image, mean over images with its standard error. Its kind
                 (`bits_per_dim_kind`): "exact" for a family of probabilities of grey levels
                 (discretized_logistic): log P(x) is its iwae; "dequantization bound" for a
                 density (beta, normal, normal_fixed, continuous_bernoulli) on 8-bit images:
                     log P(x) >= logsumexp_k [log p(y_k|z_k) + log p(z_k) - log q(z_k|x)] - log K
                                 + D log a,   y_k = a (x + u_k) + b,  u_k ~ U[0, 1)^D,
                 the IWAE of the joint latent (u, z) under the proposal q(z|x) U(u) (Ho et al.
                 2019), a fresh u_k per importance sample (with one u per image it would bound only
                 E_u log p(y_u)); a is the family's dequantized scaling, 1/256, so the Jacobian term
                 is -D log 256 (`tfp_vae.data.pixels.dequantized_log_jacobian`). The Bernoulli's
                 is the exact figure of binarized images, another data set (`bits_per_dim_data`
                 says so), never of 8-bit ones; on any other images it is None ("not applicable")
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
>>> sorted(metrics)[:5]
['active_units', 'bits_per_dim', 'bits_per_dim_data', 'bits_per_dim_kind', 'bits_per_dim_standard_error']
>>> metrics["bits_per_dim_kind"], metrics["bits_per_dim_data"]     # binary images, Bernoulli
('exact', 'binarized images (another data set: not in the 8-bit ranking)')
>>> bool(metrics["elbo"] <= metrics["iwae"]), bool(np.isclose(sum(metrics["kl_per_dim"]), metrics["kl"]))
(True, True)
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_vae.choices import LIKELIHOODS, PRIORS
from tfp_vae.data.pixels import (
    DEQUANTIZE_MARGIN,
    check_images,
    dequantize,
    dequantized_log_jacobian,
    grey_levels,
)
from tfp_vae.errors import TfpVaeError
from tfp_vae.evaluation.memory import return_large_blocks
from tfp_vae.model.vae import float32_twin

if TYPE_CHECKING:
    from tfp_vae.model.vae import VAE

# Images decoded per step: sample blocks hold DRAWS_PER_CHUNK // batch_size draws of each image,
# fewer if their pixel values would exceed DECODED_VALUES_PER_CHUNK (2^23 float32s = 32 MB, the L3
# cache of the machines this was tuned on: larger blocks only cost memory).
DRAWS_PER_CHUNK = 20_000
DECODED_VALUES_PER_CHUNK = 2**23
ACTIVE_THRESHOLD = 0.01
# metrics["bits_per_dim_kind"] and ["bits_per_dim_data"] by the family's fact `on_8bit`.
BITS_KINDS = {"exact": "exact", "dequantization bound": "dequantization bound", "binarized": "exact"}
BITS_DATA = {
    "exact": "8-bit images",
    "dequantization bound": "8-bit images",
    "binarized": "binarized images (another data set: not in the 8-bit ranking)",
}


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
      elbo, nll, kl, iwae: floats;
      iwae_standard_error: standard error of the mean of the N per-image iwae values;
      bits_per_dim, bits_per_dim_standard_error: -log P(x) / (D ln 2) of the discrete images
        (see the module's docstring), None when x is not 8-bit (or, for the Bernoulli, binary);
      bits_per_dim_kind: "exact", "dequantization bound" or "not applicable";
      bits_per_dim_data: "8-bit images", "binarized images (...)" or None;
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
    [N, latent_dim], float64, and log_p_discrete [N] (log P(x) of the discrete images, exact or
    its bound) when x is 8-bit (binary for the Bernoulli). first_index: index of x[0] in the
    whole set, so that with a seed the images of a slice get the draws they get in a call on the
    whole set (when slices start at multiples of batch_size). progress: called with the number of
    images of each finished chunk."""
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
    kind = LIKELIHOODS.fact(config.likelihood, "on_8bit")
    # The discrete images' log-probability: of 8-bit images for every family but the Bernoulli,
    # of binary images for it; with a density, the dequantization bound (per-pixel term `jacobian`).
    if kind == "binarized":
        discrete = bool(np.all((x == 0) | (x == 1)))
    else:
        discrete = grey_levels(x, config.likelihood) is not None
    dequantized = discrete and kind == "dequantization bound"
    jacobian = pixels * dequantized_log_jacobian(config.likelihood) if dequantized else 0.0
    parts: dict[str, list] = {"iwae": [], "nll": [], "kl": [], "kl_per_dim": [], "mean": []}
    if discrete:
        parts["log_p_discrete"] = []
    for start in range(0, len(x), batch_size):
        xb = tf.constant(x[start : start + batch_size])
        key = None if seed is None else (int(seed), first_index + start)
        log_w, log_px_z, kl, kl_parts, mean, log_w_discrete = _chunk(
            model, xb, int(num_samples), draws, analytic, key, dequantized
        )
        # log_w, log_px_z [K, b]: log-mean-exp over the K draws, never exponentiating.
        parts["iwae"].append(tf.reduce_logsumexp(log_w, axis=0) - math.log(num_samples))
        parts["nll"].append(-tf.reduce_mean(log_px_z, axis=0))
        if discrete:
            iwae = tf.reduce_logsumexp(log_w_discrete, axis=0) - math.log(num_samples)
            parts["log_p_discrete"].append(iwae + jacobian)
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
    kind = LIKELIHOODS.fact(config.likelihood, "on_8bit")
    bits = None if "log_p_discrete" not in parts else -parts["log_p_discrete"] / (pixels * math.log(2))
    return {
        "elbo": -(nll + kl),
        "nll": nll,
        "kl": kl,
        "iwae": iwae,
        "iwae_standard_error": _standard_error(parts["iwae"]),
        "bits_per_dim": None if bits is None else float(np.mean(bits)),
        "bits_per_dim_standard_error": None if bits is None else _standard_error(bits),
        "bits_per_dim_kind": "not applicable" if bits is None else BITS_KINDS[kind],
        "bits_per_dim_data": None if bits is None else BITS_DATA[kind],
        "kl_per_dim": np.mean(parts["kl_per_dim"], axis=0)
        if PRIORS.fact(config.prior, "analytic_kl")
        else None,
        "active_units": active_units(parts["mean"]),
        "images": n,
    }


def _chunk(model, xb, num_samples: int, draws: int, analytic: bool, key=None, dequantized: bool = False):
    """For images xb [b, ...]: log_w and log p(x|z) [K, b], KL [b], its parts [b, d] (zeros unless
    `analytic`), E_q z [b, d], and the log-weights of the discrete images [K, b] (log_w itself,
    or with `dequantized` those of joint draws (u_k, z_k), see `_log_weights`). key: None, or
    (seed, index of xb[0]) for stateless draws."""
    q = model.encoder(xb, training=False)
    mean, scale = q.mean(), q.scale.to_dense()  # [b, d], Cholesky factor [b, d, d]
    log_w, log_px_z, log_w_discrete = [], [], []
    for done in range(0, num_samples, draws):
        seed = () if key is None else (tf.random.experimental.stateless_fold_in(key, done),)
        w, px_z, w_discrete = _log_weights(
            model, mean, scale, xb, min(draws, num_samples - done), *seed, dequantized=dequantized
        )
        log_w.append(w)
        log_px_z.append(px_z)
        log_w_discrete.append(w_discrete)
    log_w, log_px_z, log_w_discrete = (tf.concat(t, 0) for t in (log_w, log_px_z, log_w_discrete))
    if analytic:
        kl = tfp.distributions.kl_divergence(q, model.prior)
        return log_w, log_px_z, kl, _chain_rule_kl(q), mean, log_w_discrete
    # log q(z_k|x) - log p(z_k) = log p(x|z_k) - log w_k: the K draws already made.
    kl = tf.reduce_mean(log_px_z - log_w, axis=0)
    return log_w, log_px_z, kl, tf.zeros_like(mean), mean, log_w_discrete


@tf.function  # a graph: the decoder's matmuls run in oneDNN; traced once per model, batch and `num`
def _log_weights(model, loc, scale_tril, xb, num: int, seed=None, dequantized: bool = False):
    """num draws z ~ q(z|x) = N(loc, scale_tril scale_tril^T): (log w, log p(x|z), log w of the
    discrete images), each [num, b].

    The last is log w itself, or with `dequantized` the log-weights of joint draws (u_k, z_k) from
    the proposal q(z|x) U(u): log p(y_k|z_k) + log p(z_k) - log q(z_k|x), y_k the images
    dequantized with u_k (`tfp_vae.data.pixels.dequantize`), a fresh u_k per draw. Their
    log-mean-exp plus D times the per-pixel log-Jacobian is the IWAE of the joint latent (u, z),
    a lower bound on log P(x) of the 8-bit images that tightens to it as K grows (Ho et al.
    2019). (One u per image shared by the K draws would bound only E_u log p(y_u), looser.)

    q comes in as tensors, not as the encoder's distribution object, which tf.function would
    treat as a new Python argument (and retrace for) at every call. seed: None, or a stateless
    seed [2] (a tensor: no retrace per seed).
    """
    q = tfp.distributions.MultivariateNormalTriL(loc=loc, scale_tril=scale_tril)
    z = q.sample(num, seed=seed)  # [num, b, d]
    p = model.decoder(tf.reshape(z, [-1, tf.shape(z)[2]]), training=False)  # batch [num * b], draw-major
    drawn = tf.concat([[num * tf.shape(xb)[0]], tf.shape(xb)[1:]], 0)  # [num * b, H, W, C]
    u = None
    if dequantized:
        margin = DEQUANTIZE_MARGIN
        if seed is None:
            u = tf.random.uniform(drawn, margin, 1 - margin)
        else:
            u_seed = tf.random.experimental.stateless_fold_in(seed, 1)
            u = tf.random.stateless_uniform(drawn, u_seed, margin, 1 - margin)

    # One fused XLA pass over the [num * b, D] decoder output: elementwise log-probabilities and
    # their sum per image. The images are broadcast over the draws inside it, so XLA reads xb
    # without ever tiling it num times in memory.
    @tf.function(jit_compile=True)
    def log_likelihood(xb, u):
        images = tf.broadcast_to(xb, tf.concat([[num], tf.shape(xb)], 0))  # [num, b, H, W, C]
        images = tf.reshape(images, tf.concat([[-1], tf.shape(xb)[1:]], 0))  # draw-major, as p
        log_px_z = tf.reshape(p.log_prob(images), [num, -1])
        if u is None:
            return log_px_z, log_px_z
        log_py_z = p.log_prob(dequantize(images, u, model.config.likelihood))
        return log_px_z, tf.reshape(log_py_z, [num, -1])

    log_px_z, log_py_z = log_likelihood(xb, u)
    log_prior_ratio = model.prior.log_prob(z) - q.log_prob(z)
    return log_px_z + log_prior_ratio, log_px_z, log_py_z + log_prior_ratio


def _chain_rule_kl(q):
    """[b, d]: 0.5 (Sigma_dd + mu_d^2 - 1 - 2 log L_dd), the chain-rule parts of KL(q || N(0, I)).

    The prior is the standard normal of `standard_normal_prior`; q is any Gaussian with a
    lower-triangular scale (MultivariateNormalTriL, or Diag as a special case).
    """
    scale = q.scale.to_dense()  # Cholesky factor L [b, d, d]
    variance = tf.reduce_sum(tf.square(scale), axis=-1)  # Sigma_dd = sum_j L_dj^2
    log_diag = tf.math.log(tf.abs(tf.linalg.diag_part(scale)))
    return 0.5 * (variance + tf.square(q.mean()) - 1.0 - 2.0 * log_diag)


def _standard_error(values) -> float:
    """Standard error of the mean of per-image values [N] (NaN for one image)."""
    n = len(values)
    return float(np.std(values, ddof=1) / math.sqrt(n)) if n > 1 else math.nan


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
