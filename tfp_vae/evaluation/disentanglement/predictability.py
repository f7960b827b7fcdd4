"""SAP, separated attribute predictability (Kumar et al. 2018), discrete factors, as
disentanglement_lib computes it.

Per latent j and factor k a `LinearSVC(C=0.01, class_weight="balanced")` on that single latent;
S[j, k] its test accuracy; per factor the gap between the two best latents; mean over factors.
10,000 train / 5,000 test. A perfect code does not score 1: a factor with n balanced classes
scores at most 1 - 1/n, and a one-feature linear classifier can rarely separate more than a few
ordered classes.
"""

from __future__ import annotations

import warnings

import numpy as np

from tfp_vae.errors import DataError
from tfp_vae.evaluation.disentanglement.checks import Seed, check_codes_factors, train_test
from tfp_vae.evaluation.disentanglement.importance import NUM_TEST, NUM_TRAIN


def sap_matrix(train_codes, train_factors, test_codes, test_factors) -> np.ndarray:
    """S [d, K]: test accuracy of a linear SVM predicting factor k from latent j alone."""
    from sklearn.exceptions import ConvergenceWarning  # scikit-learn loads when a metric first runs
    from sklearn.svm import LinearSVC  # scikit-learn loads when a metric first runs

    d, k = train_codes.shape[1], train_factors.shape[1]
    scores = np.zeros((d, k))
    with warnings.catch_warnings():
        # A latent that carries nothing about a factor makes liblinear stop at its iteration cap;
        # the classifier is then as good as any at chance, which is what S[j, k] should say.
        warnings.simplefilter("ignore", ConvergenceWarning)
        for j in range(d):
            for f in range(k):
                svm = LinearSVC(C=0.01, class_weight="balanced")
                svm.fit(train_codes[:, j : j + 1], train_factors[:, f])
                scores[j, f] = np.mean(svm.predict(test_codes[:, j : j + 1]) == test_factors[:, f])
    return scores


def sap(
    codes: np.ndarray,
    factors: np.ndarray,
    num_train: int = NUM_TRAIN,
    num_test: int = NUM_TEST,
    seed: Seed = 0,
) -> float:
    """SAP score: mean over factors of the gap between the two best single-latent classifiers'
    test accuracies (see module doc). codes [N, d >= 2] float, factors [N, K] int."""
    codes, factors = check_codes_factors(codes, factors)
    if codes.shape[1] < 2:
        raise DataError("sap needs codes with latent_dim >= 2 (the gap between the top two latents).")
    scores = np.sort(sap_matrix(*train_test(codes, factors, num_train, num_test, seed, "sap")), axis=0)
    return float(np.mean(scores[-1] - scores[-2]))
