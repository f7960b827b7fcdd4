"""`family_table`: likelihood families ranked in bits per dimension of the 8-bit images.

Each run directory is one family trained and evaluated (`tfp-vae evaluate RUN`, which writes
bits_per_dim into metrics.json; `tfp_vae.evaluation.elbo`). The ranking holds the runs whose
figure is of the 8-bit images (exact for a discretized family, the uniform-dequantization bound
for a density), best (fewest bits) first; a run whose figure is of another data set (the
Bernoulli's binarized images) is kept apart, in a second table, never ranked with them.

>>> import json, tempfile
>>> from pathlib import Path
>>> from tfp_vae.config import VAEConfig
>>> from tfp_vae.runs.files import save_config
>>> root = Path(tempfile.mkdtemp())
>>> for family, bits, data in (("beta", 4.1, "8-bit images"), ("discretized_logistic", 3.9, "8-bit images"),
...                            ("bernoulli", 0.4, "binarized images (another data set)")):
...     _ = save_config(VAEConfig(likelihood=family), root / family)
...     _ = (root / family / "metrics.json").write_text(json.dumps({"bits_per_dim": bits,
...         "bits_per_dim_standard_error": 0.01, "bits_per_dim_data": data, "test_images": 10000}))
>>> ranked, apart = family_table([root / f for f in ("beta", "discretized_logistic", "bernoulli")])
>>> ranked.index.tolist(), ranked["rank"].tolist(), apart.index.tolist()
(['discretized_logistic', 'beta'], [1, 2], ['bernoulli'])
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tfp_vae.errors import RunDirError
from tfp_vae.runs import files as runs
from tfp_vae.training.checkpoint import STATUS_FILE, recorded_seconds

if TYPE_CHECKING:
    import pandas as pd  # pandas loads when a table is first made

EIGHT_BIT = "8-bit images"  # metrics.json's bits_per_dim_data of the figures that are ranked
KINDS = {"exact": "exact", "dequantization bound": "bound"}  # bits_per_dim_kind, shortened
COLUMNS = (
    "rank",
    "bits_per_dim",
    "bits_per_dim_se",
    "kind",
    "data",
    "dataset",
    "epochs",
    "best_epoch",
    "seconds_per_epoch",
    "train_seconds",
    "elbo",
    "iwae",
    "iwae_se",
    "num_samples",
    "test_images",
    "run",
)


def family_table(run_dirs: Sequence[str | os.PathLike]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(ranked, apart): two pandas DataFrames indexed by family (`config.likelihood`), columns

      rank              1 = fewest bits per dimension (ranked table only; None apart)
      bits_per_dim, bits_per_dim_se   metrics.json's test-set mean and its standard error (over
                        the test images: the spread a different test set would give)
      kind              "exact" (a probability of the discrete images, e.g. the discretized
                        logistic) or "bound" (the dequantization IWAE bound of a density, an
                        upper bound on the bits); metrics.json's own words for anything else
      data              what the figure is of: "8-bit images", or another data set (apart)
      dataset           `config.dataset`, one for all the ranked runs
      epochs            epochs trained (history); best_epoch the one whose weights were kept
                        (status.json, with early stopping; else the last)
      seconds_per_epoch the median wall seconds of an epoch (training and validation), from
                        status.json's epoch_seconds (else a sweep's train_seconds / epochs);
                        train_seconds their sum. None when the run recorded no timing
      elbo, iwae, iwae_se   test ELBO and IWAE bound in nats per image, on the family's own
                        scale (not comparable across families: bits_per_dim is)
      num_samples, test_images   the evaluation's K and number of test images
      run               the directory as given.

    `ranked` holds the runs whose bits_per_dim is of the 8-bit images, sorted best first; `apart`
    the others (the Bernoulli's binarized images), in the order given. Raises `RunDirError`
    for a directory that is not a run or was not evaluated, naming the command that evaluates
    it, and when the ranked runs are of different data sets or were evaluated on different
    numbers of test images (a ranking compares the same test images).
    """
    import pandas as pd  # pandas loads when a table is first made

    dirs = [Path(d) for d in run_dirs]
    if not dirs:
        raise RunDirError("family_table: give at least one run directory.")
    rows = [_row(d) for d in dirs]
    families = [r["family"] for r in rows]
    twice = sorted({f for f in families if families.count(f) > 1})
    if twice:
        raise RunDirError(
            f"family_table: more than one run of {twice} ({', '.join(str(d) for d in dirs)}); "
            "give one run directory per family."
        )
    table = pd.DataFrame(rows).set_index("family")
    ranked = table[table["data"] == EIGHT_BIT].sort_values("bits_per_dim")
    apart = table[table["data"] != EIGHT_BIT].copy()
    datasets = set(ranked["dataset"])
    if len(datasets) > 1:
        raise RunDirError(
            f"family_table: the 8-bit runs are of different data sets ({dict(ranked['dataset'])}); "
            "rank runs of one data set."
        )
    sizes = set(ranked["test_images"])
    if len(sizes) > 1:
        raise RunDirError(
            "family_table: the 8-bit runs were evaluated on different numbers of test images "
            f"({dict(ranked['test_images'])}); evaluate each on the same test images "
            "(tfp-vae evaluate RUN, without --limit or with the same one) before ranking them."
        )
    ranked["rank"] = range(1, len(ranked) + 1)
    apart["rank"] = None
    return ranked[list(COLUMNS)], apart[list(COLUMNS)]


def _row(run_dir: Path) -> dict[str, Any]:
    config = runs.load_config(run_dir)  # RunDirError for a directory that is not a run
    metrics = _json(run_dir / runs.METRICS_FILE)
    evaluate = f"tfp-vae evaluate {run_dir} --num-samples 1000"
    if not metrics:
        raise RunDirError(f"{run_dir} has no {runs.METRICS_FILE}: evaluate it first ({evaluate}).")
    if metrics.get("bits_per_dim") is None:
        raise RunDirError(
            f"{run_dir / runs.METRICS_FILE} has no bits_per_dim (its test images were not 8-bit, or it "
            f"was evaluated by an older version); evaluate it again ({evaluate})."
        )
    history = _json(run_dir / runs.HISTORY_JSON) or (
        runs.load_history(run_dir) if (run_dir / runs.HISTORY_CSV).is_file() else {}
    )
    epochs = len(next(iter(history.values()), []))
    status = _json(run_dir / STATUS_FILE) or {}
    seconds = recorded_seconds(run_dir)
    per_epoch: float | None
    total: float | None
    if seconds:
        per_epoch, total = statistics.median(seconds), sum(seconds)
    elif metrics.get("train_seconds") and epochs:  # a sweep's run: its training seconds in all
        total = float(metrics["train_seconds"])
        per_epoch = total / epochs
    else:
        per_epoch = total = None
    kind = metrics.get("bits_per_dim_kind")
    return {
        "family": config.likelihood,
        "dataset": config.dataset,
        "bits_per_dim": float(metrics["bits_per_dim"]),
        "bits_per_dim_se": metrics.get("bits_per_dim_standard_error"),
        "kind": KINDS.get(kind, kind),
        "data": metrics.get("bits_per_dim_data"),
        "epochs": epochs,
        "best_epoch": status.get("best_epoch", epochs),
        "seconds_per_epoch": per_epoch,
        "train_seconds": total,
        "elbo": metrics.get("elbo"),
        "iwae": metrics.get("iwae"),
        "iwae_se": metrics.get("iwae_standard_error"),
        "num_samples": metrics.get("num_samples"),
        "test_images": metrics.get("test_images", metrics.get("images")),
        "run": str(run_dir),
    }


def _json(path: Path):
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except json.JSONDecodeError:  # a file being rewritten by another process: shown as missing
        return None
