"""All the metrics of one model: the registries of metrics and factor data sets, the metrics of
codes (`disentanglement_metrics`) and of a model on a factor grid (`model_metrics`), in groups
(one estimator each) that can be skipped when already done, so an interrupted evaluation resumes.

    group        metrics                                         data
    mig          mig                                             num_train of the points
    dci          dci_disentanglement, _completeness, _informativeness   num_train / num_test split
    sap          sap                                             the same split
    modularity   modularity, explicitness                        the same split
    factor_vae   factor_vae_score                                its own votes of 64 images
    beta_vae     beta_vae_score                                  its own pairs of 64-image batches

Each group's randomness comes from the seed alone (the points and their split from (seed, 0), an
image group's draws from (seed, its place in GROUPS)), so a group gives the same figure whether
it runs with the others or alone after an interruption.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import tf_keras

from tfp_vae.choices import METRIC_GROUPS, metric_groups
from tfp_vae.data.dsprites import DSprites, load_dsprites
from tfp_vae.data.sources import DSPRITES_NAMES
from tfp_vae.evaluation.disentanglement.beta_vae import beta_vae_images, beta_vae_score
from tfp_vae.evaluation.disentanglement.checks import Seed, count, int_seed
from tfp_vae.evaluation.disentanglement.factor_vae import (
    FACTOR_VAE_EVAL,
    FACTOR_VAE_TRAIN,
    factor_vae_images,
    factor_vae_score,
)
from tfp_vae.evaluation.disentanglement.importance import NUM_TEST, NUM_TRAIN, dci
from tfp_vae.evaluation.disentanglement.modularity_explicitness import modularity_explicitness
from tfp_vae.evaluation.disentanglement.mutual_info_gap import mig
from tfp_vae.evaluation.disentanglement.observations import encode_indices, representation
from tfp_vae.evaluation.disentanglement.predictability import sap
from tfp_vae.registry import Registry

if TYPE_CHECKING:
    from tfp_vae.model.vae import VAE

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
    (
        "beta_vae_score",
        "BetaVAE score",
        "logistic-regression accuracy on code differences (Higgins et al. 2017)",
    ),
    ("modularity", "Modularity", "each code dimension informs about one factor (Ridgeway & Mozer 2018)"),
    (
        "explicitness",
        "Explicitness (ROC-AUC)",
        "a linear classifier's ROC-AUC per factor (Ridgeway & Mozer 2018)",
    ),
):
    METRICS.register(_name, _label, help=_help)
TABLE_METRICS = tuple(METRICS)

# Groups of metrics on codes: (codes, factors, num_train, num_test, seed: int) -> {metric: value}.
CODE_GROUPS: dict[str, Callable[..., dict[str, float]]] = {
    "mig": lambda c, f, train, test, seed: {"mig": mig(c, f, num_points=train, seed=seed)},
    "dci": lambda c, f, train, test, seed: {f"dci_{k}": v for k, v in dci(c, f, train, test, seed).items()},
    "sap": lambda c, f, train, test, seed: {"sap": sap(c, f, train, test, seed)},
    "modularity": lambda c, f, train, test, seed: modularity_explicitness(c, f, train, test, seed=seed),
}
# Groups of metrics that render their own images: (model, ds, votes (train, eval), seed, progress).
IMAGE_GROUPS: dict[str, Callable[..., dict[str, float]]] = {
    "factor_vae": lambda model, ds, votes, seed, progress: {
        "factor_vae_score": factor_vae_score(
            model, ds, votes[0], votes[1], num_variance_points=votes[0], seed=seed, progress=progress
        )
    },
    "beta_vae": lambda model, ds, votes, seed, progress: {
        "beta_vae_score": beta_vae_score(model, ds, votes[0], votes[1], seed=seed, progress=progress)
    },
}
GROUPS = (*CODE_GROUPS, *IMAGE_GROUPS)
GROUP_METRICS = METRIC_GROUPS  # declared TensorFlow-free in `tfp_vae.choices`
assert tuple(GROUP_METRICS) == GROUPS, "choices.METRIC_GROUPS and the groups here must agree"


def _group_seed(seed: Seed, group: str) -> int:
    """One int per (seed, group), whatever else runs."""
    return int(np.random.default_rng([int_seed(seed), GROUPS.index(group) + 1]).integers(2**31))


def disentanglement_metrics(
    codes: np.ndarray,
    factors: np.ndarray,
    num_train: int = NUM_TRAIN,
    num_test: int = NUM_TEST,
    seed: Seed = 0,
) -> dict[str, float]:
    """The metrics of codes [N, d] with factors [N, K]: mig (on num_train random rows),
    dci_disentanglement, dci_completeness, dci_informativeness, sap, modularity and explicitness
    (one train/test split, shared by dci, sap and modularity)."""
    split = int_seed(seed)  # a Generator: one int, so dci, sap and modularity split alike
    scores: dict[str, float] = {}
    for group in CODE_GROUPS.values():
        scores.update(group(codes, factors, num_train, num_test, split))
    return scores


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
    done: dict[str, float] | None = None,
    on_group: Callable[[str, dict[str, float], float], None] | None = None,
    verbose: int = 0,
    groups: Sequence[str] | None = None,
) -> dict[str, float]:
    """Every metric of `model` (a `tfp_vae.VAE` or a callable images -> codes) on the grid `ds`.

    As in disentanglement_lib, the points are num_train + num_test images drawn uniformly with
    replacement from the whole grid (training images included) and encoded to posterior means;
    the code groups on them, the FactorVAE and BetaVAE scores with `factor_vae_votes` = (train,
    eval) votes each (10,000 / 5,000 in disentanglement_lib; the FactorVAE score's global variances
    from as many images as training votes). Returns {name: float} with the keys of TABLE_METRICS.

    done: metrics already computed; a group whose metrics are all there is skipped (resuming).
    on_group(group, scores, seconds): called as each group finishes (to keep it).
    verbose: 1 prints a line per group and a progress bar over the images each encodes.
    groups: the groups to compute (`GROUPS`, in any order; default all), e.g. ("mig",
    "factor_vae") at a milestone; the result then holds their metrics only.
    """
    num_train, num_test = count(num_train, "num_train"), count(num_test, "num_test")
    votes = tuple(count(v, "factor_vae_votes") for v in factor_vae_votes)
    chosen = check_groups(groups)
    scores = dict(done or {})
    todo = [g for g in chosen if not all(m in scores for m in GROUP_METRICS[g])]
    if verbose and len(todo) < len(chosen):
        print(f"resuming: {len(chosen) - len(todo)} of {len(chosen)} metric group(s) done")
    encode = representation(model)  # one compiled encoder for every group
    codes = factors = None
    split = 0
    for group in todo:
        start = time.perf_counter()
        if group in CODE_GROUPS:
            if codes is None:  # the points and their split, shared by the code groups
                rng = np.random.default_rng([int_seed(seed), 0])
                indices = rng.integers(len(ds), size=num_train + num_test)
                split = int(rng.integers(2**31))
                codes = encode_indices(encode, ds, indices, _bar(verbose, len(indices), "points"))
                factors = ds.factors(indices)
            part = CODE_GROUPS[group](codes, factors, num_train, num_test, split)
        else:
            images = (factor_vae_images if group == "factor_vae" else beta_vae_images)(*votes)
            part = IMAGE_GROUPS[group](
                encode, ds, votes, _group_seed(seed, group), _bar(verbose, images, group)
            )
        seconds = time.perf_counter() - start
        scores.update(part)
        if on_group is not None:
            on_group(group, part, seconds)
        if verbose:
            figures = ", ".join(f"{k} {v:.4f}" for k, v in part.items())
            print(f"{group:<11} {figures}  ({seconds:.0f} s)")
    return {m: float(scores[m]) for m in TABLE_METRICS if any(m in GROUP_METRICS[g] for g in chosen)}


def check_groups(groups: Sequence[str] | None) -> tuple[str, ...]:
    """`groups` checked (`tfp_vae.choices.metric_groups`: groups or their metrics), in `GROUPS`
    order; None is every group."""
    return GROUPS if groups is None else metric_groups(groups)


def _bar(verbose: int, images: int, what: str):
    """A progress bar's update over `images` images, or None when quiet."""
    if not verbose:
        return None
    print(f"{what}: encoding {images:,} images")
    bar = tf_keras.utils.Progbar(images, unit_name="image")
    seen = 0

    def advance(n: int) -> None:
        nonlocal seen
        seen += n
        bar.update(seen)

    return advance
