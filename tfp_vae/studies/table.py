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


def _json(path: Path):
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except json.JSONDecodeError:  # a file being rewritten by another process: shown as missing
        return None
