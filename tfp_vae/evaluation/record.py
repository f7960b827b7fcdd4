"""RUN_DIR/metrics.json: the metrics of the run's weights, and of every weights evaluated before.

    {"elbo": ..., "mig": ..., ...,          the latest evaluation (what `tfp-vae show` and older
                                            readers take), of the weights below
     "evaluated_steps": 10000,              the optimizer steps those weights were trained for
                                            (`tfp_vae.runs.files.weights_steps`; null if unknown)
     "weights_sha256": "571e59d62e5af8f0",  the first 16 hex digits of model.weights.h5's SHA-256
     "at_steps": {"10000": {...}, "25000": {...}}}   each evaluation's scalars, by evaluated_steps

A run trained further after an evaluation has new weights: the next evaluation starts the top
level afresh (nothing of the older weights is shown as theirs) and keeps the older figures under
their steps in "at_steps". Evaluations of the same weights add to one record (the ELBO, then a
subset of the disentanglement metrics, then the rest).

>>> import tempfile
>>> run = Path(tempfile.mkdtemp())
>>> _ = update_record(run, {"mig": 0.1}, steps=10, digest="aa")
>>> _ = update_record(run, {"elbo": -2.0}, steps=10, digest="aa")   # the same weights: added
>>> record = update_record(run, {"mig": 0.3}, steps=20, digest="bb")  # trained further: afresh
>>> record["mig"], "elbo" in record, record["at_steps"]
(0.3, False, {'10': {'mig': 0.1, 'elbo': -2.0}, '20': {'mig': 0.3}})
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tfp_vae.runs import files as runs

AT_STEPS = "at_steps"
STEPS_KEY = "evaluated_steps"
DIGEST_KEY = "weights_sha256"


def read_record(run_dir) -> dict[str, Any]:
    """RUN_DIR/metrics.json as a dict ({} if missing or unreadable)."""
    path = Path(run_dir) / runs.METRICS_FILE
    try:
        record = json.loads(path.read_text()) if path.is_file() else {}
    except json.JSONDecodeError:  # a damaged file: the evaluation under way rewrites it whole
        return {}
    return record if isinstance(record, dict) else {}


def scalars(record: dict) -> dict[str, float]:
    """The finite numbers of a metrics record (bools, lists, text, the bookkeeping left out)."""
    return {
        k: v
        for k, v in record.items()
        if isinstance(v, (int, float))
        and not isinstance(v, bool)
        and k not in (STEPS_KEY,)
        and math.isfinite(v)
    }


def update_record(
    run_dir, metrics: dict[str, Any], steps: int | None, digest: str, drop: Sequence[str] = ()
) -> dict[str, Any]:
    """Adds `metrics` (JSON-ready) of the weights with SHA-256 prefix `digest`, trained for `steps`
    optimizer steps, to RUN_DIR/metrics.json (atomically) and returns the record written.

    A record of other weights is replaced at the top level (its "at_steps" kept); the scalars of
    the new top level are kept in "at_steps" under str(steps) (unless steps is None: unknown).
    drop: keys of a record of the same weights that `metrics` supersedes (figures of other settings).
    """
    old = read_record(run_dir)
    history = dict(old.get(AT_STEPS) or {})
    same = old.get(DIGEST_KEY) == digest
    if not same and old.get(STEPS_KEY) is not None:
        # figures of other weights not yet filed (e.g. a record of an older version, given its
        # evaluated_steps by hand): keep them under their steps
        history.setdefault(str(old[STEPS_KEY]), scalars(old))
    top = {k: v for k, v in old.items() if k != AT_STEPS and k not in drop} if same else {}
    top.update(metrics)
    top[STEPS_KEY], top[DIGEST_KEY] = steps, digest
    if steps is not None:  # top holds every figure of these weights (the older ones if same)
        history[str(steps)] = scalars(top)
    record = {**top, AT_STEPS: dict(sorted(history.items(), key=lambda kv: _steps_order(kv[0])))}
    runs.atomic_write_text(Path(run_dir) / runs.METRICS_FILE, json.dumps(record, indent=2))
    return record


def _steps_order(key: str) -> float:
    try:
        return float(key)
    except ValueError:
        return math.inf
