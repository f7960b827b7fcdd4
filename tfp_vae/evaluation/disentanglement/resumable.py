"""A run's disentanglement metrics, kept group by group so an interrupted evaluation resumes.

Layout added to RUN_DIR:
    evaluation/disentanglement/<key>/<group>.json   {"metrics": {...}, "seconds": s} of one
                                                    group of `suite.GROUPS` (mig, dci, ...)
    metrics.json                                    updated with every metric, the settings and
                                                    disentanglement_seconds (all groups' sum)

<key> names the SHA-256 of model.weights.h5, the points, the votes and the seed: figures of other
weights or settings are never combined, and starting under a new key deletes the older ones. Each
group's randomness depends on the seed alone (`suite`), so a resumed evaluation gives exactly the
figures of an uninterrupted one.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tfp_vae.evaluation.disentanglement.suite import GROUP_METRICS, model_metrics
from tfp_vae.evaluation.shards import EVALUATION_DIR, weights_digest
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
) -> tuple[dict[str, Any], Path]:
    """Every metric of `suite.TABLE_METRICS` of the run's `model` on the factor grid `ds`, group by
    group; groups kept in the folder are reused. Adds them to RUN_DIR/metrics.json (created if
    missing) with disentanglement_points, factor_vae_votes and disentanglement_seconds.

    points: (train, test) images for the code metrics; votes: (train, eval) for the FactorVAE and
    BetaVAE scores; the seed is the run's config.seed. Returns (the metrics added, the folder).
    """
    points, votes = (int(points[0]), int(points[1])), (int(votes[0]), int(votes[1]))
    seed = model.config.seed
    folder = metrics_folder(run_dir, points, votes, seed)
    for stale in folder.parent.glob("*"):  # other weights or settings: never to be combined
        if stale != folder:
            shutil.rmtree(stale, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    done: dict[str, float] = {}
    seconds: dict[str, float] = {}
    for group in GROUP_METRICS:
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
        model, ds, *points, factor_vae_votes=votes, seed=seed, done=done, on_group=keep, verbose=verbose
    )
    added: dict[str, Any] = {
        **scores,
        "disentanglement_points": list(points),
        "factor_vae_votes": list(votes),
        "disentanglement_seconds": float(sum(seconds.values())),
    }
    path = Path(run_dir) / runs.METRICS_FILE
    record = json.loads(path.read_text()) if path.is_file() else {}
    record.update(added)
    runs.atomic_write_text(path, json.dumps(record, indent=2))
    return added, folder
