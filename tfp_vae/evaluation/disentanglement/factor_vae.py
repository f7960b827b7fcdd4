"""The FactorVAE score (Kim & Mnih 2018), as disentanglement_lib computes it.

Latents are divided by their standard deviation over 10,000 random images; latents with sd < 0.05
are ignored. Each vote fixes one random factor k over a batch of 64 random images and takes the
latent of least normalised variance; a majority-vote classifier maps latent -> factor on 10,000
votes; the score is its accuracy on 5,000 fresh votes (chance: about 1 / num_factors). That is
10,000 + 15,000 x 64 = 970,000 images drawn; each distinct one is rendered and encoded once
(about 540,000 on full dSprites; `observations.encode_indices`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from tfp_vae.errors import DataError
from tfp_vae.evaluation.disentanglement.checks import Seed, count
from tfp_vae.evaluation.disentanglement.observations import (
    Progress,
    encode_indices,
    factor_grid,
    representation,
)

if TYPE_CHECKING:
    from tfp_vae.data.dsprites import DSprites
    from tfp_vae.model.vae import VAE

FACTOR_VAE_BATCH = 64
FACTOR_VAE_TRAIN, FACTOR_VAE_EVAL = 10_000, 5_000  # votes
FACTOR_VAE_VARIANCE_POINTS = 10_000
FACTOR_VAE_MIN_SD = 0.05  # disentanglement_lib's prune_dims.threshold (an sd, not a variance)


def factor_vae_images(num_train, num_eval, batch_size=FACTOR_VAE_BATCH, num_variance_points=None) -> int:
    """Images the score encodes: its variance points plus one batch per vote."""
    return (num_variance_points or num_train) + (num_train + num_eval) * batch_size


def _draw_votes(sizes, num, batch, rng) -> tuple[np.ndarray, np.ndarray]:
    """(fixed factor int [num], grid indices int [num, batch]): per vote one random factor and
    `batch` random images that share its class."""
    fixed = rng.integers(len(sizes), size=num)
    classes = rng.integers(0, sizes, size=(num, batch, len(sizes)))
    rows = np.arange(num)
    classes[rows, :, fixed] = classes[rows, :1, fixed]
    return fixed, np.ravel_multi_index(np.moveaxis(classes, -1, 0), sizes)


def _tally(codes, fixed, num_factors, scale, active) -> np.ndarray:
    """votes [K, d]: per vote (codes [batch, d] of its images), (its fixed factor, the active
    latent of least variance relative to `scale**2`)."""
    variance = np.var(codes, axis=1, ddof=1)[:, active]  # [num, active]
    latent = np.flatnonzero(active)[np.argmin(variance / scale[active] ** 2, axis=1)]
    votes = np.zeros((num_factors, len(scale)), np.int64)
    np.add.at(votes, (fixed, latent), 1)
    return votes


def factor_vae_score(
    model: VAE | Callable[[np.ndarray], np.ndarray],
    ds: DSprites,
    num_train: int = FACTOR_VAE_TRAIN,
    num_eval: int = FACTOR_VAE_EVAL,
    batch_size: int = FACTOR_VAE_BATCH,
    num_variance_points: int = FACTOR_VAE_VARIANCE_POINTS,
    seed: Seed = 0,
    progress: Progress = None,
) -> float:
    """FactorVAE score in [0, 1]: accuracy of the majority-vote classifier on `num_eval` votes
    (see module doc). 0.0 when no latent has sd >= 0.05.

    model: a `tfp_vae.VAE` (posterior means of the images scaled for its likelihood) or any
      callable uint8 images [n, H, W, C] -> codes [n, d].
    ds: a data set on the full grid of factor classes (`tfp_vae.load_dsprites`): `factor_sizes`
      and `images(indices)`, the index row-major over the factor classes.
    progress: called with the number of images just encoded (a progress bar's update).
    """
    encode = representation(model)
    sizes = factor_grid(ds)
    num_train, num_eval = count(num_train, "num_train"), count(num_eval, "num_eval")
    batch_size = count(batch_size, "batch_size")
    num_variance_points = count(num_variance_points, "num_variance_points")
    if batch_size < 2:
        raise DataError("batch_size must be >= 2: each vote needs a variance over the batch.")
    rng = np.random.default_rng(seed)
    points = rng.integers(int(np.prod(sizes)), size=num_variance_points)
    scale = np.std(encode_indices(encode, ds, points, progress), axis=0, ddof=1)
    active = scale >= FACTOR_VAE_MIN_SD
    if not active.any():
        return 0.0
    # Both sets of votes drawn first (in the order of the reference), then encoded together:
    # each distinct image once (`encode_indices`).
    train_fixed, train_indices = _draw_votes(sizes, num_train, batch_size, rng)
    eval_fixed, eval_indices = _draw_votes(sizes, num_eval, batch_size, rng)
    codes = encode_indices(encode, ds, np.concatenate([train_indices, eval_indices]), progress)
    train = _tally(codes[:num_train], train_fixed, len(sizes), scale, active)
    classifier = np.argmax(train, axis=0)  # latent -> the factor it voted for most
    held_out = _tally(codes[num_train:], eval_fixed, len(sizes), scale, active)
    return float(held_out[classifier, np.arange(held_out.shape[1])].sum() / held_out.sum())
