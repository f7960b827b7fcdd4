"""The BetaVAE score (Higgins et al. 2017), as disentanglement_lib computes it.

Each point fixes one random factor k and draws two batches of 64 random images that share the
class of factor k (all other factors drawn independently); its feature is the mean over the batch
of |z(x1) - z(x2)| [d] (posterior means) and its label k. A `LogisticRegression` (scikit-learn's
defaults) trained on 10,000 points predicts k; the score is its accuracy on 5,000 fresh points
(chance: about 1 / num_factors). That is 15,000 x 2 x 64 = 1,920,000 images drawn, twice the
FactorVAE score's; each distinct one is rendered and encoded once (about 680,000 on full dSprites;
`observations.encode_indices`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from tfp_vae.errors import DataError
from tfp_vae.evaluation.disentanglement.checks import Seed, count, int_seed
from tfp_vae.evaluation.disentanglement.observations import (
    Progress,
    encode_indices,
    factor_grid,
    representation,
)

if TYPE_CHECKING:
    from tfp_vae.data.dsprites import DSprites
    from tfp_vae.model.vae import VAE

BETA_VAE_BATCH = 64
BETA_VAE_TRAIN, BETA_VAE_EVAL = 10_000, 5_000  # points (pairs of batches)


def beta_vae_images(num_train, num_eval, batch_size=BETA_VAE_BATCH) -> int:
    """Images the score encodes: two batches per point."""
    return (num_train + num_eval) * 2 * batch_size


def _draw_points(sizes, num, batch, rng) -> tuple[np.ndarray, np.ndarray]:
    """(grid indices int [2, num, batch], labels int [num]): per point a random fixed factor and
    two batches of random images that share its class."""
    labels = rng.integers(len(sizes), size=num)
    first = rng.integers(0, sizes, size=(num, batch, len(sizes)))
    second = rng.integers(0, sizes, size=(num, batch, len(sizes)))
    rows = np.arange(num)
    second[rows, :, labels] = first[rows, :, labels]
    pairs = np.stack([first, second])  # [2, num, batch, K]
    return np.ravel_multi_index(np.moveaxis(pairs, -1, 0), sizes), labels


def _features(codes) -> np.ndarray:
    """float [num, d]: the mean over a batch of |z(x1) - z(x2)|, from codes [2, num, batch, d]."""
    return np.mean(np.abs(codes[0] - codes[1]), axis=1)


def beta_vae_points(encode, ds, num, batch, rng, progress: Progress = None):
    """(features float [num, d], labels int [num]): per point, the fixed factor and the mean
    absolute difference of the codes of its two batches."""
    indices, labels = _draw_points(factor_grid(ds), num, batch, rng)
    return _features(encode_indices(encode, ds, indices, progress)), labels


def beta_vae_score(
    model: VAE | Callable[[np.ndarray], np.ndarray],
    ds: DSprites,
    num_train: int = BETA_VAE_TRAIN,
    num_eval: int = BETA_VAE_EVAL,
    batch_size: int = BETA_VAE_BATCH,
    seed: Seed = 0,
    progress: Progress = None,
) -> float:
    """BetaVAE score in [0, 1]: the logistic regression's accuracy on `num_eval` fresh points
    (see module doc).

    model: a `tfp_vae.VAE` (posterior means) or any callable uint8 images [n, H, W, C] -> codes
      [n, d]. ds: a data set on the full grid of factor classes (`tfp_vae.load_dsprites`).
    progress: called with the number of images just encoded (a progress bar's update).
    """
    from sklearn.exceptions import ConvergenceWarning  # scikit-learn loads when a metric first runs
    from sklearn.linear_model import LogisticRegression  # scikit-learn loads when a metric first runs

    encode = representation(model)
    sizes = factor_grid(ds)
    num_train, num_eval = count(num_train, "num_train"), count(num_eval, "num_eval")
    batch_size = count(batch_size, "batch_size")
    rng = np.random.default_rng(seed)
    random_state = int_seed(rng)
    # Both sets of points drawn first (in the order of the reference), then encoded together:
    # each distinct image once (`encode_indices`).
    train_indices, train_y = _draw_points(sizes, num_train, batch_size, rng)
    if len(np.unique(train_y)) < 2:
        raise DataError(f"num_train={num_train} points fixed one factor only; pass more training points.")
    eval_indices, eval_y = _draw_points(sizes, num_eval, batch_size, rng)
    codes = encode_indices(encode, ds, np.concatenate([train_indices, eval_indices], axis=1), progress)
    train_x, eval_x = _features(codes[:, :num_train]), _features(codes[:, num_train:])
    with warnings.catch_warnings():
        # lbfgs may stop at its default 100 iterations; the reference keeps that cap, as we do.
        warnings.simplefilter("ignore", ConvergenceWarning)
        classifier = LogisticRegression(random_state=random_state).fit(train_x, train_y)
    return float(np.mean(classifier.predict(eval_x) == eval_y))
