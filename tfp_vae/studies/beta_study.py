"""The β-VAE study's table: one row per run directory, its metrics at each milestone of training.

The study (issue 24) trains one run directory per (β, seed), e.g.
experiments/results/dsprites_beta4_seed1/, to a growing `max_steps`, and evaluates it at each
milestone; metrics.json keeps every evaluation under the optimizer steps of its weights
(`tfp_vae.evaluation.record`: "at_steps"). `study_table` reads them back:

    run, beta, seed, steps (optimizer steps trained), status
    mig@10k, factor_vae_score@10k, mig@25k, ...   `MILESTONE_METRICS` at every milestone
    dci_disentanglement@50k, ..., elbo@50k         `FINAL_METRICS` at the last milestone

(NaN where a run has no evaluation at that milestone yet), and `study_summary` the median over
seeds per β. Nothing is loaded but JSON: the table of a shipped study reads in a notebook at once.

>>> import json, tempfile
>>> root = Path(tempfile.mkdtemp())
>>> for beta, seed, mig in ((1.0, 0, 0.05), (4.0, 0, 0.2), (4.0, 1, 0.1)):
...     run = root / f"dsprites_beta{beta:g}_seed{seed}"; run.mkdir()
...     _ = (run / "config.json").write_text(json.dumps({"beta": beta, "seed": seed}))
...     at = {"10000": {"mig": mig, "factor_vae_score": 0.6}}
...     _ = (run / "metrics.json").write_text(json.dumps({"evaluated_steps": 10000, "at_steps": at}))
>>> table = study_table(root, milestones=(10_000,))
>>> print(table[["beta", "seed", "steps", "mig@10k"]].to_string(index=False))
 beta  seed  steps  mig@10k
  1.0     0  10000     0.05
  4.0     0  10000     0.20
  4.0     1  10000     0.10
>>> study_summary(table)["mig@10k"].to_dict()
{1.0: 0.05, 4.0: 0.15000000000000002}
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tfp_vae.errors import RunDirError

if TYPE_CHECKING:
    import pandas as pd

STUDY_PATTERN = "dsprites_beta*_seed*"  # the study's run directories under experiments/results/
MILESTONES = (10_000, 25_000, 50_000)  # optimizer steps at which the study evaluates
MILESTONE_METRICS = ("mig", "factor_vae_score")  # at every milestone
FINAL_METRICS = (  # at the last milestone (ELBO in nats per example, a lower bound on log p(x))
    "dci_disentanglement",
    "dci_completeness",
    "dci_informativeness",
    "sap",
    "modularity",
    "explicitness",
    "beta_vae_score",
    "elbo",
)
_ID_COLUMNS = ("run", "beta", "seed", "steps", "status")


def milestone_label(steps: int) -> str:
    """10000 -> '10k', 2500 -> '2.5k', 64 -> '64': the suffix of a column at that milestone."""
    return f"{steps / 1000:g}k" if steps >= 1000 else str(steps)


def column(metric: str, steps: int) -> str:
    """The table's column of `metric` at milestone `steps`: column('mig', 10000) == 'mig@10k'."""
    return f"{metric}@{milestone_label(steps)}"


def study_table(
    root: str | os.PathLike = "experiments/results",
    pattern: str = STUDY_PATTERN,
    milestones: Sequence[int] | None = MILESTONES,
    milestone_metrics: Sequence[str] = MILESTONE_METRICS,
    final_metrics: Sequence[str] = FINAL_METRICS,
) -> pd.DataFrame:
    """One row per run directory ROOT/`pattern` (those holding config.json), sorted by (beta,
    seed): run (folder name), beta and seed (from config.json), steps (optimizer steps trained:
    status.json's steps_done, else the last evaluation's), status, then `milestone_metrics` at
    every milestone and `final_metrics` at the last (`column`). A figure comes from metrics.json's
    "at_steps" entry of that milestone, or from its top level when that evaluation was of weights
    trained for exactly that many steps; NaN when the run has none. milestones=None: every
    number of steps any of the runs was evaluated at (`evaluated_milestones`), e.g. (10000,)
    for a study shipped at its first milestone.

    Raises `RunDirError` when no run directory matches.
    """
    import pandas as pd  # pandas loads when a table is first made

    root = Path(root)
    dirs = sorted(d for d in root.glob(pattern) if (d / "config.json").is_file())
    if not dirs:
        raise RunDirError(
            f"no run directory {root / pattern} holds config.json; train the study into {root}/ "
            "first (see docs: the β-VAE study's commands)."
        )
    if milestones is None:
        milestones = evaluated_milestones(root, pattern)
    milestones = sorted(int(m) for m in milestones)
    if not milestones:
        raise ValueError("milestones=(): give the optimizer steps of at least one evaluation.")
    wanted = [(m, s) for s in milestones for m in milestone_metrics]
    wanted += [(m, milestones[-1]) for m in final_metrics if (m, milestones[-1]) not in wanted]
    rows = []
    for run_dir in dirs:
        config = _json(run_dir / "config.json") or {}
        metrics = _json(run_dir / "metrics.json") or {}
        status = _json(run_dir / "status.json") or {}
        by_steps = evaluations(metrics)
        steps = status.get("steps_done") or max((int(s) for s in by_steps), default=None)
        row: dict[str, Any] = {
            "run": run_dir.name,
            "beta": float(config.get("beta", 1.0)),
            "seed": int(config.get("seed", 0)),
            "steps": steps,
            "status": status.get("state"),
        }
        for metric, at in wanted:
            row[column(metric, at)] = by_steps.get(str(at), {}).get(metric, math.nan)
        rows.append(row)
    table = pd.DataFrame(rows)
    return table.sort_values(["beta", "seed"], kind="stable").reset_index(drop=True)


def evaluated_milestones(
    root: str | os.PathLike = "experiments/results", pattern: str = STUDY_PATTERN
) -> list[int]:
    """The sorted optimizer steps at which any run directory ROOT/`pattern` was evaluated
    (metrics.json's "at_steps" and "evaluated_steps"); [] when none was."""
    steps = {int(s) for d in Path(root).glob(pattern) for s in evaluations(_json(d / "metrics.json") or {})}
    return sorted(steps)


def study_kl_per_dim(
    root: str | os.PathLike = "experiments/results", pattern: str = STUDY_PATTERN
) -> pd.DataFrame:
    """The rate of each latent coordinate per run: one row per run directory ROOT/`pattern` with
    a metrics.json holding kl_per_dim (`tfp_vae.evaluate`'s, of its latest evaluation), sorted
    by (beta, seed): run, beta, seed, steps (the evaluation's optimizer steps), kl (nats per
    image), then z0 .. z<d-1>: E_x KL(q(z_j|x) || N(0, 1)) in nats per image, summing to kl.
    A coordinate the code does not use (collapsed to the prior) has a KL near 0.

    Raises `RunDirError` when no run directory holds kl_per_dim.
    """
    import pandas as pd  # pandas loads when a table is first made

    rows = []
    for run_dir in sorted(Path(root).glob(pattern)):
        config = _json(run_dir / "config.json") or {}
        metrics = _json(run_dir / "metrics.json") or {}
        if not metrics.get("kl_per_dim"):
            continue
        row: dict[str, Any] = {
            "run": run_dir.name,
            "beta": float(config.get("beta", 1.0)),
            "seed": int(config.get("seed", 0)),
            "steps": metrics.get("evaluated_steps"),
            "kl": metrics.get("kl", math.fsum(metrics["kl_per_dim"])),
        }
        row.update({f"z{j}": float(v) for j, v in enumerate(metrics["kl_per_dim"])})
        rows.append(row)
    if not rows:
        raise RunDirError(
            f"no run directory {Path(root) / pattern} has a metrics.json with kl_per_dim; "
            "run tfp-vae evaluate on it first."
        )
    return pd.DataFrame(rows).sort_values(["beta", "seed"], kind="stable").reset_index(drop=True)


def evaluations(metrics: dict) -> dict[str, dict]:
    """{str(steps): {metric: value}} of a metrics.json record: its "at_steps", and its top level
    under "evaluated_steps" (the latest evaluation; a record of older versions has neither)."""
    by_steps = {str(k): dict(v) for k, v in (metrics.get("at_steps") or {}).items()}
    steps = metrics.get("evaluated_steps")
    if steps is not None:
        top = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        by_steps[str(steps)] = {**top, **by_steps.get(str(steps), {})}
    return by_steps


def study_summary(table: pd.DataFrame) -> pd.DataFrame:
    """The median over seeds of every metric column of `study_table`, one row per beta (sorted),
    with `seeds`: how many runs the β has, and `seeds@<milestone>` (e.g. seeds@50k): how many of
    them were evaluated at that milestone, the runs its medians are over (NaNs are skipped)."""
    metrics = [c for c in table.columns if c not in _ID_COLUMNS]
    grouped = table.groupby("beta")
    summary = grouped[metrics].median()
    labels = dict.fromkeys(c.rsplit("@", 1)[1] for c in metrics if "@" in c)  # in column order
    for i, label in enumerate(labels):
        evaluated = table[[c for c in metrics if c.endswith(f"@{label}")]].notna().any(axis=1)
        summary.insert(i, f"seeds@{label}", evaluated.groupby(table["beta"]).sum())
    summary.insert(0, "seeds", grouped.size())
    return summary.sort_index()


def _json(path: Path):
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except json.JSONDecodeError:  # a file being rewritten by another process: shown as missing
        return None
