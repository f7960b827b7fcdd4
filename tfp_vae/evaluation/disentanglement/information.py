"""Discrete information of codes and factors: the histogram discretizer, entropy and mutual
information, in nats, as disentanglement_lib's `utils` computes them (MIG and modularity use them).

>>> discretize(np.array([[0.1, 0.6], [0.2, 0.5], [0.3, 0.4], [0.4, 0.3], [0.5, 0.2], [0.6, 0.1]]), 3).T
array([[1, 1, 2, 2, 3, 3],
       [3, 3, 2, 2, 1, 1]])
"""

from __future__ import annotations

import numpy as np

BINS = 20  # disentanglement_lib's discretizer.num_bins


def discretize(codes, bins: int = BINS) -> np.ndarray:
    """Each column of codes [N, d] cut into `bins` equal-width bins over its own range: int [N, d]
    with values 1..bins (a constant column is all 1)."""
    columns = [np.digitize(c, np.histogram_bin_edges(c, bins)[:-1]) for c in np.asarray(codes).T]
    return np.stack(columns, axis=1)


def discrete_entropy(factors) -> np.ndarray:
    """H(v_k) in nats of each column of the discrete factors [N, K]: [K]."""
    from sklearn.metrics import mutual_info_score  # scikit-learn loads when a metric first runs

    return np.array([mutual_info_score(f, f) for f in np.asarray(factors).T])


def mutual_information(discrete_codes, factors) -> np.ndarray:
    """Discrete mutual information I(z_j; v_k) in nats of discrete codes [N, d] and factors
    [N, K]: [d, K]."""
    from sklearn.metrics import mutual_info_score  # scikit-learn loads when a metric first runs

    codes, factors = np.asarray(discrete_codes), np.asarray(factors)
    return np.array([[mutual_info_score(f, c) for f in factors.T] for c in codes.T]).reshape(
        codes.shape[1], factors.shape[1]
    )
