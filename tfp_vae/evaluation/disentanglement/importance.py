"""DCI (Eastwood & Williams 2018), as disentanglement_lib computes it.

One `GradientBoostingClassifier` (scikit-learn's defaults: 100 stages of depth-3 regression trees,
one tree per class and stage) per factor predicts its class from all latents; its feature
importances form the column R[:, k]. disentanglement = sum_j rho_j (1 - H_K(R[j, :] / sum)) with
rho_j the latent's share of all importance; completeness = sum_k (share of factor k)
(1 - H_D(R[:, k] / sum)), the plain mean over factors since each classifier's importances sum to 1;
informativeness = the mean test *accuracy* over factors (disentanglement_lib's
`informativeness_test`; higher is better, unlike the paper's prediction error). 10,000 train /
5,000 test points.

Speed: the trees are the whole cost: 100 stages x (3 + 6 + 40 + 32 + 32) classes = 11,300 trees on
full dSprites, each 27-30 CPU ms at 10,000 points (93% of it in scikit-learn's tree builder,
which sorts the node's samples on every feature and releases the GIL; the boosting loop's Python
is about 5%), some 300-330 CPU seconds in all. The factors' ensembles are independent, so they
fit in threads, largest factor first; each ensemble is exactly the one a serial fit gives. One
thread per core would leave a core idle at the end (on two cores the best split of the five fits
is 40 + 6 + 3 against 32 + 32 classes, 64 of 113 on the longer side); `workers` defaults to one
more than the cores, so the cores share the last fits and finish together (about 57.5 of 113,
against the ideal 56.5). On two cores DCI therefore takes at least half its CPU seconds, about
150 s on a quiet machine.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from tfp_vae.evaluation.disentanglement.checks import Seed, check_codes_factors, int_seed, train_test

NUM_TRAIN, NUM_TEST = 10_000, 5_000  # DCI and SAP


def default_workers() -> int:
    """Threads for the per-factor ensembles: one more than the cores this process may use (see the
    module doc)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return cores + 1


def importance_matrix(train_codes, train_factors, test_codes, test_factors, seed: Seed = 0, workers=None):
    """Gradient-boosted-tree importances R [d, K] (each column sums to 1, or 0 if unused) and
    per-factor test accuracies [K]; the K ensembles fit in `workers` threads (default: one more than
    the cores, at most K)."""
    from sklearn.ensemble import GradientBoostingClassifier  # scikit-learn loads when a metric first runs

    d, k = train_codes.shape[1], train_factors.shape[1]
    random_state = int_seed(seed)

    def fit(j):
        trees = GradientBoostingClassifier(random_state=random_state).fit(train_codes, train_factors[:, j])
        return np.abs(trees.feature_importances_), np.mean(trees.predict(test_codes) == test_factors[:, j])

    # Largest first: a factor's cost grows with its classes, so the long ones do not start last.
    order = sorted(range(k), key=lambda j: -len(np.unique(train_factors[:, j])))
    workers = max(1, min(k, workers or default_workers()))
    with ThreadPoolExecutor(workers) as pool:
        results = dict(zip(order, pool.map(fit, order)))
    importance = np.stack([results[j][0] for j in range(k)], axis=1).reshape(d, k)
    accuracy = np.array([results[j][1] for j in range(k)])
    return importance, accuracy


def _one_minus_entropy(p, axis):
    """1 - entropy of the distributions along `axis` (normalised from p + 1e-11), in base
    p.shape[axis], so 1 means all weight on one entry and 0 means spread evenly."""
    from scipy.stats import entropy  # scipy loads when a metric first runs

    return 1.0 - entropy(p + 1e-11, base=p.shape[axis], axis=axis)


def dci_scores(importance) -> dict:
    """Disentanglement and completeness of an importance matrix R [d, K] (>= 0)."""
    importance = np.asarray(importance, np.float64)
    weights = importance if importance.sum() > 0 else np.ones_like(importance)
    code_share = weights.sum(axis=1) / weights.sum()
    factor_share = weights.sum(axis=0) / weights.sum()
    return {
        "disentanglement": float(np.sum(_one_minus_entropy(importance, axis=1) * code_share)),
        "completeness": float(np.sum(_one_minus_entropy(importance, axis=0) * factor_share)),
    }


def dci(
    codes: np.ndarray,
    factors: np.ndarray,
    num_train: int = NUM_TRAIN,
    num_test: int = NUM_TEST,
    seed: Seed = 0,
    workers: int | None = None,
) -> dict[str, float]:
    """DCI: {"disentanglement", "completeness", "informativeness"}, each in [0, 1] (see module doc;
    informativeness is the mean test accuracy of the per-factor tree ensembles).

    codes [N, d] float, factors [N, K] int, N >= num_train + num_test (disjoint random rows).
    """
    codes, factors = check_codes_factors(codes, factors)
    train_c, train_f, test_c, test_f = train_test(codes, factors, num_train, num_test, seed, "dci")
    importance, accuracy = importance_matrix(train_c, train_f, test_c, test_f, seed, workers)
    return {**dci_scores(importance), "informativeness": float(np.mean(accuracy))}
