"""A run's disentanglement metrics, kept group by group so an interrupted evaluation resumes.

Layout added to RUN_DIR:
    evaluation/disentanglement/<key>/<group>.json   {"metrics": {...}, "seconds": s} of one
                                                    group of `suite.GROUPS` (mig, dci, ...)
    metrics.json                                    updated with every metric computed, the
                                                    settings and disentanglement_seconds (the
                                                    groups' sum), kept by the weights' optimizer
                                                    steps too (`tfp_vae.evaluation.record`)

<key> names the SHA-256 of model.weights.h5, the points, the votes and the seed: figures of other
weights or settings are never combined, and starting under a new key deletes the older ones
(saying so: a run trained further after an evaluation has new weights, hence a new key). Each
group's randomness depends on the seed alone (`suite`), so a resumed evaluation gives exactly the
figures of an uninterrupted one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tfp_vae.evaluation.disentanglement.suite import GROUPS, TABLE_METRICS, check_groups, model_metrics
from tfp_vae.evaluation.record import read_record, update_record
from tfp_vae.evaluation.shards import EVALUATION_DIR, discard_stale, weights_digest
from tfp_vae.runs import files as runs

if TYPE_CHECKING:
    from tfp_vae.data.dsprites import DSprites
    from tfp_vae.model.vae import VAE

FOLDER = "disentanglement"


def metrics_folder(run_dir, points: tuple[int, int], votes: tuple[int, int], seed: int) -> Path:
    """RUN_DIR/evaluation/disentanglement/<weights hash>-p<train>x<test>-v<train>x<eval>-s<seed>."""
    key = f"{weights_digest(run_dir)}-p{points[0]}x{points[1]}-v{votes[0]}x{votes[1]}-s{seed}"
    return Path(run_dir) / EVALUATION_DIR / FOLDER / key


def evaluate_factors(
    model: VAE,
    run_dir: str | os.PathLike,
    ds: DSprites,
    points: tuple[int, int] = (10_000, 5_000),
    votes: tuple[int, int] = (10_000, 5_000),
    verbose: int = 1,
    groups: Sequence[str] | None = None,
) -> tuple[dict[str, Any], Path]:
    """The metrics of `suite.TABLE_METRICS` of the run's `model` on the factor grid `ds` (those of
    `groups` only, e.g. ("mig", "factor_vae"); default all), group by group; groups kept in the
    folder are reused. Adds them to RUN_DIR/metrics.json (`tfp_vae.evaluation.record`: by the
    weights' optimizer steps too) with disentanglement_points, factor_vae_votes and
    disentanglement_seconds (of every group kept for these weights).

    points: (train, test) images for the code metrics; votes: (train, eval) for the FactorVAE and
    BetaVAE scores; the seed is the run's config.seed. Returns (the metrics added, the folder).
    """
    chosen = check_groups(groups)  # before any work: an unknown name is refused at once
    points, votes = (int(points[0]), int(points[1])), (int(votes[0]), int(votes[1]))
    seed = model.config.seed
    folder = metrics_folder(run_dir, points, votes, seed)
    discard_stale(folder, "disentanglement metrics", verbose)  # other weights or settings
    folder.mkdir(parents=True, exist_ok=True)
    done: dict[str, float] = {}
    seconds: dict[str, float] = {}
    for group in GROUPS:  # all kept: disentanglement_seconds counts every group of these weights
        path = folder / f"{group}.json"
        if path.is_file():
            record = json.loads(path.read_text())
            done.update(record["metrics"])
            seconds[group] = record["seconds"]

    def keep(group: str, scores: dict[str, float], spent: float) -> None:
        seconds[group] = spent
        text = json.dumps({"metrics": scores, "seconds": spent}, indent=2)
        runs.atomic_write_text(folder / f"{group}.json", text)

    scores = model_metrics(
        model,
        ds,
        *points,
        factor_vae_votes=votes,
        seed=seed,
        done=done,
        on_group=keep,
        verbose=verbose,
        groups=chosen,
    )
    added: dict[str, Any] = {
        **scores,
        "disentanglement_points": list(points),
        "factor_vae_votes": list(votes),
        "disentanglement_seconds": float(sum(seconds.values())),
    }
    old = read_record(run_dir)
    settings = ("disentanglement_points", "factor_vae_votes")
    # figures of these weights at other points or votes are not shown beside these (never mixed)
    other = any(old.get(k) not in (None, added[k]) for k in settings)
    drop = (*TABLE_METRICS, "disentanglement_seconds") if other else ()
    update_record(run_dir, added, runs.weights_steps(run_dir), weights_digest(run_dir), drop=drop)
    return added, folder
