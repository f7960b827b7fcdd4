"""MIG, the mutual information gap (Chen et al. 2018), as disentanglement_lib computes it.

Each latent is discretised into 20 equal-width bins over its range; I(z_j; v_k) is the discrete
mutual information (nats); per factor, the gap between its two most informative latents over
H(v_k); mean over factors. 10,000 points (a random subsample when N is larger).
"""

from __future__ import annotations

import numpy as np

from tfp_vae.errors import DataError
from tfp_vae.evaluation.disentanglement.checks import Seed, check_codes_factors, count
from tfp_vae.evaluation.disentanglement.information import (
    BINS,
    discrete_entropy,
    discretize,
    mutual_information,
)

MIG_BINS = BINS
MIG_POINTS = 10_000


def mig(
    codes: np.ndarray, factors: np.ndarray, num_points: int = MIG_POINTS, bins: int = MIG_BINS, seed: Seed = 0
) -> float:
    """Mutual information gap in [0, 1] (1: each factor is in one latent alone; see module doc).

    codes [N, d] float, factors [N, K] int; uses `num_points` random rows when N is larger.
    Needs d >= 2 (a gap between two latents).
    """
    codes, factors = check_codes_factors(codes, factors)
    if codes.shape[1] < 2:
        raise DataError("mig needs codes with latent_dim >= 2 (the gap between the top two latents).")
    if len(codes) > count(num_points, "num_points"):
        keep = np.random.default_rng(seed).choice(len(codes), num_points, replace=False)
        codes, factors = codes[keep], factors[keep]
    info = np.sort(mutual_information(discretize(codes, count(bins, "bins")), factors), axis=0)
    entropy = discrete_entropy(factors)
    if np.any(entropy == 0):
        raise DataError(
            f"factors {np.flatnonzero(entropy == 0).tolist()} take one value only in these "
            "points; MIG normalises by each factor's entropy."
        )
    return float(np.mean((info[-1] - info[-2]) / entropy))
