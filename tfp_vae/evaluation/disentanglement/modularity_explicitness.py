"""Modularity and explicitness (Ridgeway & Mozer 2018), as disentanglement_lib computes them.

    modularity    per latent j, with m_jk = I(z_j; v_k) from the 20-bin histogram discretizer on
                  the training points: 1 - (sum_k m_jk^2 - max_k m_jk^2) / ((K - 1) max_k m_jk^2),
                  0 for a latent that carries nothing; mean over latents. 1 when each latent
                  informs about one factor only (several latents may share a factor).
    explicitness  per factor, a `LogisticRegression` (scikit-learn's defaults) from all latents,
                  standardised by the training points' mean and sd, predicts its classes; the
                  macro ROC-AUC of its class probabilities on the test points (one-vs-rest);
                  mean over factors. 0.5 is chance, 1 a linearly explicit code.

10,000 train / 5,000 test points, as disentanglement_lib. A latent of sd 0 is standardised with
sd 1 (disentanglement_lib would divide by 0); ROC-AUC skips a class absent from the test points.

>>> round(modularity(np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])), 4)  # the last latent is dead
0.6667
"""

from __future__ import annotations

import warnings

import numpy as np

from tfp_vae.evaluation.disentanglement.checks import Seed, check_codes_factors, count, train_test
from tfp_vae.evaluation.disentanglement.importance import NUM_TEST, NUM_TRAIN
from tfp_vae.evaluation.disentanglement.information import BINS, discretize, mutual_information


def modularity(mutual_info) -> float:
    """Modularity of a mutual-information matrix [d, K] (>= 0, nats): mean over latents (see
    module doc)."""
    squared = np.square(np.asarray(mutual_info, np.float64))
    top = squared.max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = (squared.sum(axis=1) - top) / (top * (squared.shape[1] - 1.0))
    return float(np.mean(np.where(top > 0, 1.0 - delta, 0.0)))


def explicitness(train_codes, train_factors, test_codes, test_factors) -> np.ndarray:
    """Per factor, the test ROC-AUC (macro over classes, one-vs-rest) of a logistic regression
    from the standardised codes: [K]."""
    from sklearn.exceptions import ConvergenceWarning  # scikit-learn loads when a metric first runs
    from sklearn.linear_model import LogisticRegression  # scikit-learn loads when a metric first runs
    from sklearn.metrics import roc_auc_score  # scikit-learn loads when a metric first runs
    from sklearn.preprocessing import label_binarize  # scikit-learn loads when a metric first runs

    mean, sd = train_codes.mean(axis=0), train_codes.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    train, test = (train_codes - mean) / sd, (test_codes - mean) / sd
    scores = np.zeros(train_factors.shape[1])
    for k in range(train_factors.shape[1]):
        with warnings.catch_warnings():
            # lbfgs may stop at its default 100 iterations on many classes; the reference keeps
            # that cap, and so do we.
            warnings.simplefilter("ignore", ConvergenceWarning)
            classifier = LogisticRegression().fit(train, train_factors[:, k])
        probabilities = classifier.predict_proba(test)
        truth = label_binarize(test_factors[:, k], classes=classifier.classes_)
        if len(classifier.classes_) == 2:  # label_binarize gives one column for two classes
            truth = np.concatenate([1 - truth, truth], axis=1)
        present = (truth.min(axis=0) == 0) & (truth.max(axis=0) == 1)  # ROC-AUC needs both labels
        scores[k] = roc_auc_score(truth[:, present], probabilities[:, present], average="macro")
    return scores


def modularity_explicitness(
    codes: np.ndarray,
    factors: np.ndarray,
    num_train: int = NUM_TRAIN,
    num_test: int = NUM_TEST,
    bins: int = BINS,
    seed: Seed = 0,
) -> dict[str, float]:
    """{"modularity", "explicitness"} in [0, 1] (see module doc). codes [N, d] float, factors
    [N, K] int, N >= num_train + num_test (disjoint random rows)."""
    codes, factors = check_codes_factors(codes, factors)
    train_c, train_f, test_c, test_f = train_test(codes, factors, num_train, num_test, seed, "modularity")
    info = mutual_information(discretize(train_c, count(bins, "bins")), train_f)
    return {
        "modularity": modularity(info),
        "explicitness": float(np.mean(explicitness(train_c, train_f, test_c, test_f))),
    }
