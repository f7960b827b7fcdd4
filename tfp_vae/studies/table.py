"""`runs_table`: finished or running runs side by side (what `tfp-vae show` prints).

For two trained and evaluated runs, `runs_table(["runs/a", "runs/b"])` gives (tests/cli/test_cli.py
checks it on a trained run):

      run  beta    status  epochs  best_epoch  val_neg_elbo  best_val_neg_elbo    elbo    iwae
0  runs/a   1.0  complete     5/5           5        251.32             251.32  -251.2  -247.9
1  runs/b   4.0  complete     5/5           4        263.10             262.95  -262.9  -259.1

Two saved, never trained models:

>>> import tempfile, tfp_vae
>>> root = tempfile.mkdtemp()
>>> for beta in (1.0, 4.0):
...     _ = tfp_vae.save(tfp_vae.build_vae(beta=beta, input_shape=(8, 8, 1), hidden_units=(16,)),
...                      f"{root}/beta{beta:g}")
>>> table = runs_table([f"{root}/beta1", f"{root}/beta4"])
>>> table.columns.tolist(), table["beta"].tolist(), table["epochs"].tolist()
(['run', 'beta', 'epochs'], [1.0, 4.0], ['0/5', '0/5'])
"""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tfp_vae.config import VAEConfig
from tfp_vae.errors import RunDirError
from tfp_vae.runs import files as runs
from tfp_vae.training.checkpoint import STATUS_FILE
from tfp_vae.training.protocol import best_epoch, criterion

if TYPE_CHECKING:
    import pandas as pd  # pandas loads when a table is first made

SHOW_WIDTH = 100  # characters: `tfp-vae show` fits a terminal of this width
MAX_CELL = 28  # longer values are listed under the table and shown as [1], [2], ...
MAX_RUN = 48  # the same for run names, which name the rows
# Short headers for long column names; a legend under the table spells out the ones it uses.
SHORT_NAMES = {
    "best_val_neg_elbo": "best -elbo",
    "val_neg_elbo": "last -elbo",
    "best_epoch": "best ep",
    "iwae_standard_error": "iwae se",
    "bits_per_dim": "bits/dim",
    "active_units": "active",
    "num_samples": "K",
    "test_images": "images",
    "hidden_activation": "activation",
    "early_stopping_patience": "patience",
    "validation_examples": "val images",
    "kl_schedule_epochs": "ramp epochs",
    "prior_components": "components",
    "learning_rate": "lr",
    "train_examples": "train images",
}


def runs_table(run_dirs: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """A pandas DataFrame, one row per run directory, in the order given:

      run            the directory as given
      <fields>       the `VAEConfig` fields whose values differ between the runs (tuples as text)
      status         status.json's state ("training", "complete", "paused", "stopped"), if recorded
      epochs         "done/total" epochs in history.json
      best_epoch     1-based best epoch by the training protocol's criterion (`tfp_vae.training.protocol`:
                     the lowest validation negative ELBO at beta = 1, KL-ramp epochs excluded)
      val_neg_elbo, best_val_neg_elbo   that criterion at the last and at the best epoch (nats
                     per example)
      then every scalar of metrics.json (`tfp-vae evaluate`: elbo, nll, kl, iwae, ... at beta = 1).
    Raises `RunDirError` for a directory that is not a run.
    """
    import pandas as pd  # pandas loads when a table is first made

    dirs = [Path(d) for d in run_dirs]
    if not dirs:
        raise RunDirError("give at least one run directory to show.")
    configs = [runs.load_config(d).to_dict() for d in dirs]
    differ = [k for k in configs[0] if any(c[k] != configs[0][k] for c in configs)]
    metrics_of = [_json(d / runs.METRICS_FILE) or {} for d in dirs]
    # A config field named like a metric (`kl`, the KL estimator, beside `kl`, the rate) is shown
    # as config.<name>, as in a sweep's results table, so neither overwrites the other.
    clashes = {k for metrics in metrics_of for k in metrics}
    rows = []
    for run_dir, config, metrics in zip(dirs, configs, metrics_of):
        row: dict[str, Any] = {"run": str(run_dir)}
        row.update(
            {
                f"config.{k}" if k in clashes else k: (
                    "x".join(map(str, v)) if isinstance(v, list) else "none" if v is None else v
                )
                for k, v in config.items()
                if k in differ
            }
        )
        status = _json(run_dir / STATUS_FILE)
        if status:
            row["status"] = status.get("state")
        history = _json(run_dir / runs.HISTORY_JSON) or {}
        done = len(next(iter(history.values()), []))
        row["epochs"] = f"{done}/{config['epochs']}"
        values = criterion(history)
        best = best_epoch(VAEConfig.from_dict(config), history) if len(values) else None
        if best is not None:
            row.update(best_epoch=best + 1, val_neg_elbo=values[-1], best_val_neg_elbo=values[best])
        row.update(
            {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        )
        rows.append(row)
    return pd.DataFrame(rows)


def fit_table(table: pd.DataFrame, width: int = SHOW_WIDTH) -> str:
    """`table` (a `runs_table`) as text no line of which is wider than `width`: long column names
    get the short names of `SHORT_NAMES`, the runs' common parent folder and values longer than
    `MAX_CELL` characters (`MAX_RUN` for run names) are written once below, and the columns wrap
    into blocks, each starting with the run column, as many as fit side by side.

    >>> import pandas as pd
    >>> t = pd.DataFrame({"run": ["/data/runs/a", "/data/runs/b"], "best_val_neg_elbo": [251.3, 250.0],
    ...                   "dataset": ["./my_images/holidays_2025_and_before", "fashion_mnist"]})
    >>> print(fit_table(t, width=60))
    run best -elbo       dataset
      a    251.300           [1]
      b    250.000 fashion_mnist
    runs in /data/runs/
    best -elbo = best_val_neg_elbo
    [1] = ./my_images/holidays_2025_and_before
    """
    table = table.copy()
    notes: list[str] = []
    long_values: dict[str, int] = {}
    runs_ = [Path(r) for r in table["run"]] if "run" in table else []
    parent = os.path.commonpath([str(r.parent) for r in runs_]) if runs_ else ""
    if parent and parent != "." and len(runs_) == len(set(runs_)):
        table["run"] = [os.path.relpath(r, parent) for r in runs_]
        notes.append(f"runs in {parent.rstrip('/')}/")

    def cell(value, limit=MAX_CELL) -> str:
        text = f"{value:.3f}" if isinstance(value, float) else str(value)
        if len(text) <= limit:
            return text
        return f"[{long_values.setdefault(text, len(long_values) + 1)}]"

    # The run names the rows: shortened only beyond MAX_RUN characters.
    columns = {
        SHORT_NAMES.get(c, c): [cell(v, MAX_RUN if c == "run" else MAX_CELL) for v in table[c]]
        for c in table.columns
    }
    used = [f"{short} = {name}" for name, short in SHORT_NAMES.items() if short in columns and name in table]
    if used:
        notes.append(", ".join(used))
    notes += [f"[{i}] = {text}" for text, i in long_values.items()]
    widths = {c: max(len(c), *(len(v) for v in values)) for c, values in columns.items()}
    first, *rest = columns
    blocks, block = [], [first]
    for c in rest:  # greedy: as many columns beside the run column as fit the width
        if block != [first] and sum(widths[b] + 1 for b in block) + widths[c] + 1 > width:
            blocks.append(block)
            block = [first]
        block.append(c)
    blocks.append(block)
    lines = []
    for i, block in enumerate(blocks):
        if i:
            lines.append("")
        lines.append(" ".join(c.rjust(widths[c]) for c in block))
        lines += [" ".join(columns[c][r].rjust(widths[c]) for c in block) for r in range(len(table))]
    wrapped = [textwrap.fill(note, width, subsequent_indent="    ") for note in notes]
    return "\n".join(lines + wrapped)


def _json(path: Path):
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except json.JSONDecodeError:  # a file being rewritten by another process: shown as missing
        return None
