"""Input checks shared by the disentanglement metrics, and the random train / test split."""

from __future__ import annotations

import numpy as np

from tfp_vae.errors import DataError

# A seed for numpy's default_rng: an int, or a Generator to draw from.
Seed = int | np.random.Generator


def check_codes_factors(codes, factors) -> tuple[np.ndarray, np.ndarray]:
    """(codes float64 [N, d], factors int64 [N, K]), or a `DataError` naming the bad argument."""
    codes, factors = np.asarray(codes), np.asarray(factors)
    if codes.ndim != 2 or codes.shape[0] < 2 or codes.shape[1] < 1:
        raise DataError(f"codes must be posterior means [N >= 2, latent_dim], got shape {codes.shape}.")
    if not np.issubdtype(codes.dtype, np.number) or not np.all(np.isfinite(codes)):
        raise DataError("codes must be finite numbers (posterior means); found NaN, inf or non-numbers.")
    if factors.ndim != 2 or factors.shape[1] < 1:
        raise DataError(f"factors must be class indices [N, num_factors], got shape {factors.shape}.")
    if len(factors) != len(codes):
        raise DataError(
            f"codes and factors need one row per image: {len(codes)} codes, {len(factors)} factors."
        )
    if not np.issubdtype(factors.dtype, np.integer):
        raise DataError(
            f"factors must be integer class indices, got dtype {factors.dtype} "
            "(pass ds.factors(indices), not the factor values)."
        )
    return codes.astype(np.float64), factors.astype(np.int64)


def count(value, name: str) -> int:
    """`value` as an int >= 1, or a `DataError` naming `name`."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise DataError(f"{name}={value!r} must be an integer >= 1.")
    return int(value)


def train_test(codes, factors, num_train, num_test, seed: Seed, metric: str):
    """A random split without replacement: num_train and num_test disjoint rows,
    (train codes, train factors, test codes, test factors)."""
    num_train, num_test = count(num_train, "num_train"), count(num_test, "num_test")
    if len(codes) < num_train + num_test:
        raise DataError(
            f"{metric} needs num_train + num_test = {num_train + num_test} points, got "
            f"{len(codes)}; pass more codes or smaller num_train / num_test."
        )
    order = np.random.default_rng(seed).permutation(len(codes))
    train, test = order[:num_train], order[num_train : num_train + num_test]
    return codes[train], factors[train], codes[test], factors[test]


def int_seed(seed: Seed) -> int:
    """An int for scikit-learn's random_state: `seed` itself, or one draw from a Generator."""
    if isinstance(seed, (int, np.integer)):
        return int(seed)
    return int(np.random.default_rng(seed).integers(2**31))
