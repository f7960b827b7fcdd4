"""Disentanglement metrics on data with known generative factors.

Each metric follows the estimator of disentanglement_lib (Locatello et al. 2019), so the numbers
are comparable with the published tables; each takes `seed` (an int or a `np.random.Generator`).

    codes    float [N, latent_dim]   posterior means E_q[z|x] (`tfp_vae.posterior_means`)
    factors  int   [N, num_factors]  the class index of every generative factor

- `mig(codes, factors)`: mutual information gap (Chen et al. 2018). Each latent is discretised
  into 20 equal-width bins over its range; I(z_j; v_k) is the discrete mutual information (nats);
  per factor, the gap between its two most informative latents over H(v_k); mean over factors.
  10,000 points (a random subsample when N is larger).
- `dci(codes, factors)`: Eastwood & Williams (2018). One `GradientBoostingClassifier` (sklearn
  defaults) per factor predicts its class from all latents; its feature importances form the
  column R[:, k]. disentanglement = sum_j rho_j (1 - H_K(R[j, :] / sum)) with rho_j the latent's
  share of all importance; completeness = sum_k (share of factor k) (1 - H_D(R[:, k] / sum)), the
  plain mean over factors since each classifier's importances sum to 1; informativeness = the
  mean test *accuracy* over factors (disentanglement_lib's `informativeness_test`; higher is
  better, unlike the paper's prediction error). 10,000 train / 5,000 test points.
- `sap(codes, factors)`: Kumar et al. (2018), discrete factors. Per latent j and factor k a
  `LinearSVC(C=0.01, class_weight="balanced")` on that single latent; S[j, k] its test accuracy;
  per factor the gap between the two best latents; mean over factors. 10,000 train / 5,000 test.
  A perfect code does not score 1: a factor with n balanced classes scores at most 1 - 1/n, and
  a one-feature linear classifier can rarely separate more than a few ordered classes.
- `factor_vae_score(model, ds)`: Kim & Mnih (2018). Latents are divided by their standard
  deviation over 10,000 random images; latents with sd < 0.05 are ignored. Each vote fixes one
  random factor k over a batch of 64 random images and takes the latent of least normalised
  variance; a majority-vote classifier maps latent -> factor on 10,000 votes; the score is its
  accuracy on 5,000 fresh votes (chance: about 1 / num_factors).

Time at the defaults on this project's 2 CPU cores shared with other jobs (load average about 8),
latent_dim 10, `dsprites_small` factors (3, 6, 10, 8, 8): mig 1 s, sap 2 s, dci 9 minutes (one
regression tree per class of each factor per boosting stage: full dSprites' 113 classes cost about
3 times as much; pass smaller `num_train` to trade precision for time); factor_vae_score is
dominated by encoding its 970,000 images (about 25 minutes with a 32-filter conv encoder,
extrapolated from 15,000 images in 24 s).

>>> rng = np.random.default_rng(0)
>>> factors = rng.integers(0, 4, [600, 2])                               # two factors, 4 classes each
>>> codes = np.concatenate([factors[:, ::-1], rng.normal(size=[600, 1])], axis=1)  # swapped + noise
>>> good, noise = mig(codes, factors), mig(rng.normal(size=[600, 3]), factors)
>>> good > 0.9 > 0.1 > noise, round(dci(codes, factors, 400, 200)["disentanglement"], 2)
(True, 1.0)
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from tfp_vae.data.dsprites import DSprites, load_dsprites
from tfp_vae.data.pixels import scale_images
from tfp_vae.data.sources import DSPRITES_NAMES
from tfp_vae.errors import DataError
from tfp_vae.evaluation.elbo import posterior_means
from tfp_vae.registry import Registry

if TYPE_CHECKING:
    from tfp_vae.model.vae import VAE

# A seed for numpy's default_rng: an int, or a Generator to draw from.
Seed = int | np.random.Generator

MIG_BINS = 20
MIG_POINTS = 10_000
NUM_TRAIN, NUM_TEST = 10_000, 5_000  # DCI and SAP
FACTOR_VAE_BATCH = 64
FACTOR_VAE_TRAIN, FACTOR_VAE_EVAL = 10_000, 5_000  # votes
FACTOR_VAE_VARIANCE_POINTS = 10_000
FACTOR_VAE_MIN_SD = 0.05  # disentanglement_lib's prune_dims.threshold (an sd, not a variance)
ENCODE_BATCH = 4096  # images rendered per call of the representation (encoded 1000 at a time)
# Data sets whose generative factors are known: `VAEConfig.dataset` -> a loader of its factor grid.
FACTOR_DATASETS: Registry[Callable[[], DSprites]] = Registry("dataset", "data set with known factors")
for _name, _variant in DSPRITES_NAMES.items():
    FACTOR_DATASETS.register(_name, functools.partial(load_dsprites, _variant), help=f"dSprites, {_variant}")
# The sweep's columns (`model_metrics`), each entry the label pictures give it.
METRICS: Registry[str] = Registry("metric", "disentanglement metric")
for _name, _label, _help in (
    ("mig", "MIG", "mutual information gap (Chen et al. 2018)"),
    (
        "dci_disentanglement",
        "DCI disentanglement",
        "one factor per code dimension (Eastwood & Williams 2018)",
    ),
    ("dci_completeness", "DCI completeness", "one code dimension per factor"),
    ("dci_informativeness", "DCI informativeness (accuracy)", "test accuracy of the factors' classifiers"),
    ("sap", "SAP", "separated attribute predictability (Kumar et al. 2018)"),
    ("factor_vae_score", "FactorVAE score", "majority-vote accuracy (Kim & Mnih 2018)"),
):
    METRICS.register(_name, _label, help=_help)
TABLE_METRICS = tuple(METRICS)


# ---------------------------------------------------------------------------- input checks
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


def _count(value, name: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise DataError(f"{name}={value!r} must be an integer >= 1.")
    return int(value)


def _train_test(codes, factors, num_train, num_test, seed, metric):
    """A random split without replacement: num_train and num_test disjoint rows."""
    num_train, num_test = _count(num_train, "num_train"), _count(num_test, "num_test")
    if len(codes) < num_train + num_test:
        raise DataError(
            f"{metric} needs num_train + num_test = {num_train + num_test} points, got "
            f"{len(codes)}; pass more codes or smaller num_train / num_test."
        )
    order = np.random.default_rng(seed).permutation(len(codes))
    train, test = order[:num_train], order[num_train : num_train + num_test]
    return codes[train], factors[train], codes[test], factors[test]


# ---------------------------------------------------------------------------- MIG
def discretize(codes, bins: int = MIG_BINS) -> np.ndarray:
    """Each column of codes [N, d] cut into `bins` equal-width bins over its own range: int [N, d]."""
    columns = [np.digitize(c, np.histogram_bin_edges(c, bins)[:-1]) for c in np.asarray(codes).T]
    return np.stack(columns, axis=1)


def mutual_information(discrete_codes, factors) -> np.ndarray:
    """Discrete mutual information I(z_j; v_k) in nats: [d, K]."""
    from sklearn.metrics import mutual_info_score  # scikit-learn loads when a metric first runs

    return np.array([[mutual_info_score(f, c) for f in factors.T] for c in discrete_codes.T])


def mig(
    codes: np.ndarray, factors: np.ndarray, num_points: int = MIG_POINTS, bins: int = MIG_BINS, seed: Seed = 0
) -> float:
    """Mutual information gap in [0, 1] (1: each factor is in one latent alone; see module doc).

    codes [N, d] float, factors [N, K] int; uses `num_points` random rows when N is larger.
    Needs d >= 2 (a gap between two latents).
    """
    from sklearn.metrics import mutual_info_score  # scikit-learn loads when a metric first runs

    codes, factors = check_codes_factors(codes, factors)
    if codes.shape[1] < 2:
        raise DataError("mig needs codes with latent_dim >= 2 (the gap between the top two latents).")
    if len(codes) > _count(num_points, "num_points"):
        keep = np.random.default_rng(seed).choice(len(codes), num_points, replace=False)
        codes, factors = codes[keep], factors[keep]
    info = np.sort(mutual_information(discretize(codes, _count(bins, "bins")), factors), axis=0)
    entropy = np.array([mutual_info_score(f, f) for f in factors.T])
    if np.any(entropy == 0):
        raise DataError(
            f"factors {np.flatnonzero(entropy == 0).tolist()} take one value only in these "
            "points; MIG normalises by each factor's entropy."
        )
    return float(np.mean((info[-1] - info[-2]) / entropy))


# ---------------------------------------------------------------------------- DCI
def importance_matrix(train_codes, train_factors, test_codes, test_factors, seed=0):
    """Gradient-boosted-tree importances R [d, K] (each column sums to 1, or 0 if unused) and
    per-factor test accuracies [K]."""
    from sklearn.ensemble import GradientBoostingClassifier  # scikit-learn loads when a metric first runs

    d, k = train_codes.shape[1], train_factors.shape[1]
    importance, accuracy = np.zeros((d, k)), np.zeros(k)
    random_state = int(np.random.default_rng(seed).integers(2**31))
    for j in range(k):
        trees = GradientBoostingClassifier(random_state=random_state).fit(train_codes, train_factors[:, j])
        importance[:, j] = np.abs(trees.feature_importances_)
        accuracy[j] = np.mean(trees.predict(test_codes) == test_factors[:, j])
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
) -> dict[str, float]:
    """DCI: {"disentanglement", "completeness", "informativeness"}, each in [0, 1] (see module doc;
    informativeness is the mean test accuracy of the per-factor tree ensembles).

    codes [N, d] float, factors [N, K] int, N >= num_train + num_test (disjoint random rows).
    """
    codes, factors = check_codes_factors(codes, factors)
    train_c, train_f, test_c, test_f = _train_test(codes, factors, num_train, num_test, seed, "dci")
    importance, accuracy = importance_matrix(train_c, train_f, test_c, test_f, seed)
    return {**dci_scores(importance), "informativeness": float(np.mean(accuracy))}


# ---------------------------------------------------------------------------- SAP
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
    scores = np.sort(sap_matrix(*_train_test(codes, factors, num_train, num_test, seed, "sap")), axis=0)
    return float(np.mean(scores[-1] - scores[-2]))


# ---------------------------------------------------------------------------- FactorVAE score
def representation(model):
    """images uint8 [n, H, W, C] -> codes float [n, d]: a `tfp_vae.VAE`'s posterior means of the
    images scaled for its likelihood, or `model` itself if it is any other callable."""
    if hasattr(model, "encoder") and hasattr(model, "config"):
        likelihood = model.config.likelihood
        return lambda images: posterior_means(model, scale_images(images, likelihood))
    if callable(model):
        return model
    raise DataError(f"model must be a tfp_vae VAE or a callable images -> codes, got {type(model).__name__}.")


def _encode(encode, ds, indices) -> np.ndarray:
    """Codes [*indices.shape, d] of the images at `indices`, ENCODE_BATCH images per call."""
    flat = indices.reshape(-1)
    codes = np.concatenate(
        [
            np.asarray(encode(ds.images(flat[i : i + ENCODE_BATCH])), np.float64)
            for i in range(0, len(flat), ENCODE_BATCH)
        ]
    )
    if codes.ndim != 2 or len(codes) != len(flat):
        raise DataError(
            f"the representation must map n images to codes [n, latent_dim]; got {codes.shape} "
            f"for {len(flat)} images."
        )
    return codes.reshape(*indices.shape, codes.shape[1])


def _votes(encode, ds, sizes, count, batch, scale, active, rng) -> np.ndarray:
    """votes [K, d]: for `count` batches with one random factor fixed, (that factor, the active
    latent of least variance relative to `scale**2`)."""
    fixed = rng.integers(len(sizes), size=count)
    classes = rng.integers(0, sizes, size=(count, batch, len(sizes)))
    rows = np.arange(count)
    classes[rows, :, fixed] = classes[rows, :1, fixed]
    votes = np.zeros((len(sizes), len(scale)), np.int64)
    per_call = max(1, ENCODE_BATCH // batch)
    for start in range(0, count, per_call):
        part = slice(start, start + per_call)
        indices = np.ravel_multi_index(np.moveaxis(classes[part], -1, 0), sizes)  # [votes, batch]
        variance = np.var(_encode(encode, ds, indices), axis=1, ddof=1)[:, active]
        latent = np.flatnonzero(active)[np.argmin(variance / scale[active] ** 2, axis=1)]
        np.add.at(votes, (fixed[part], latent), 1)
    return votes


def factor_vae_score(
    model: VAE | Callable[[np.ndarray], np.ndarray],
    ds: DSprites,
    num_train: int = FACTOR_VAE_TRAIN,
    num_eval: int = FACTOR_VAE_EVAL,
    batch_size: int = FACTOR_VAE_BATCH,
    num_variance_points: int = FACTOR_VAE_VARIANCE_POINTS,
    seed: Seed = 0,
) -> float:
    """FactorVAE score in [0, 1]: accuracy of the majority-vote classifier on `num_eval` votes
    (see module doc). 0.0 when no latent has sd >= 0.05.

    model: a `tfp_vae.VAE` (posterior means of the images scaled for its likelihood) or any
      callable uint8 images [n, H, W, C] -> codes [n, d].
    ds: a data set on the full grid of factor classes (`tfp_vae.load_dsprites`): `factor_sizes`
      and `images(indices)`, the index row-major over the factor classes.
    """
    encode = representation(model)
    sizes = tuple(int(s) for s in getattr(ds, "factor_sizes", ()))
    if not sizes or not hasattr(ds, "images"):
        raise DataError("ds must have factor_sizes and images(indices), like tfp_vae.load_dsprites().")
    num_train, num_eval = _count(num_train, "num_train"), _count(num_eval, "num_eval")
    batch_size = _count(batch_size, "batch_size")
    num_variance_points = _count(num_variance_points, "num_variance_points")
    if batch_size < 2:
        raise DataError("batch_size must be >= 2: each vote needs a variance over the batch.")
    rng = np.random.default_rng(seed)
    scale = np.std(
        _encode(encode, ds, rng.integers(int(np.prod(sizes)), size=num_variance_points)), axis=0, ddof=1
    )
    active = scale >= FACTOR_VAE_MIN_SD
    if not active.any():
        return 0.0
    train = _votes(encode, ds, sizes, num_train, batch_size, scale, active, rng)
    classifier = np.argmax(train, axis=0)  # latent -> the factor it voted for most
    held_out = _votes(encode, ds, sizes, num_eval, batch_size, scale, active, rng)
    return float(held_out[classifier, np.arange(held_out.shape[1])].sum() / held_out.sum())


# ---------------------------------------------------------------------------- all at once
def disentanglement_metrics(
    codes: np.ndarray,
    factors: np.ndarray,
    num_train: int = NUM_TRAIN,
    num_test: int = NUM_TEST,
    seed: Seed = 0,
) -> dict[str, float]:
    """The sweep's columns for one model: mig (on num_train random rows), dci_disentanglement,
    dci_completeness, dci_informativeness and sap (one train/test split, shared by dci and sap)."""
    if not isinstance(seed, (int, np.integer)):  # a Generator: one int, so dci and sap split alike
        seed = int(np.random.default_rng(seed).integers(2**31))
    scores = dci(codes, factors, num_train, num_test, seed)
    return {
        "mig": mig(codes, factors, num_points=num_train, seed=seed),
        **{f"dci_{name}": value for name, value in scores.items()},
        "sap": sap(codes, factors, num_train, num_test, seed),
    }


# ---------------------------------------------------------------------------- a trained model
def factor_data(dataset: str):
    """The factor grid of data set `dataset` (a `VAEConfig.dataset`), or None if its factors are
    unknown."""
    return FACTOR_DATASETS[dataset]() if dataset in FACTOR_DATASETS else None


def model_metrics(
    model: VAE | Callable[[np.ndarray], np.ndarray],
    ds: DSprites,
    num_train: int = NUM_TRAIN,
    num_test: int = NUM_TEST,
    factor_vae_votes: tuple[int, int] = (FACTOR_VAE_TRAIN, FACTOR_VAE_EVAL),
    seed: Seed = 0,
) -> dict[str, float]:
    """Every metric of `model` (a `tfp_vae.VAE` or a callable images -> codes) on the grid `ds`.

    As in disentanglement_lib, the points are num_train + num_test images drawn uniformly with
    replacement from the whole grid (training images included) and encoded to posterior means;
    `disentanglement_metrics` on them, and the FactorVAE score with `factor_vae_votes` = (train,
    eval) votes, its global variances from as many images as training votes (10,000 each in
    disentanglement_lib). Returns {name: float} with the keys of TABLE_METRICS.
    """
    num_train, num_test = _count(num_train, "num_train"), _count(num_test, "num_test")
    rng = np.random.default_rng(seed)
    indices = rng.integers(len(ds), size=num_train + num_test)
    codes = _encode(representation(model), ds, indices)
    scores = disentanglement_metrics(codes, ds.factors(indices), num_train, num_test, rng)
    votes_train, votes_eval = factor_vae_votes
    scores["factor_vae_score"] = factor_vae_score(
        model, ds, votes_train, votes_eval, num_variance_points=votes_train, seed=rng
    )
    return scores
