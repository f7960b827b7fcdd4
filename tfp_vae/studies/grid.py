"""Sweeps: a grid of configs (beta x seeds x any other field), trained and evaluated one run
directory per point, summarised in one CSV table.

    OUT/
      sweep.json              the sweep's settings (base config, grid, evaluation settings)
      results.csv             one row per finished point: run, config fields, metrics
      beta=0.5,seed=0/        a run directory (config.json, weights, history) + metrics.json
      ...

Metrics come from `tfp_vae.evaluation.elbo` on the test split: per-example means in nats, elbo/nll/kl at
beta = 1 whatever the training beta, iwae with `num_samples` importance samples, active units.
On a data set with known factors (`tfp_vae.evaluation.disentanglement.FACTOR_DATASETS`: dSprites) also mig,
dci_disentanglement, dci_completeness, dci_informativeness, sap and factor_vae_score
(`disentanglement.model_metrics` on `disentanglement_points` images drawn from the whole grid).

A point is finished when its run directory holds metrics.json for its config; rerunning the same
sweep skips finished points, so an interrupted sweep picks up where it stopped. `shard=(i, n)` runs
only the i-th of n disjoint, deterministic slices of the points (1 <= i <= n): n machines sharing
OUT need no other coordination. Every write is atomic (`runs.atomic_write`).

>>> base = VAEConfig(latent_dim=8, epochs=10)
>>> [p.name for p in grid_points(base, {"beta": [0.5, 4], "seed": [0, 1]})]
['beta=0.5,seed=0', 'beta=0.5,seed=1', 'beta=4,seed=0', 'beta=4,seed=1']
>>> import tempfile, numpy as np
>>> x = (np.random.default_rng(0).random([64, 8, 8, 1]) < 0.5).astype("float32")
>>> tiny = VAEConfig(input_shape=(8, 8, 1), hidden_units=(16,), epochs=1, deterministic=True)
>>> table = sweep(tiny, {"beta": [0.5, 4]}, tempfile.mkdtemp(), data=((x, None), (x[:16], None)),
...               num_samples=5, verbose=0)
>>> table["run"].tolist(), bool((table["kl"] >= 0).all())
(['beta=0.5', 'beta=4'], True)
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import tf_keras

from tfp_vae.config import VAEConfig
from tfp_vae.errors import ConfigError
from tfp_vae.evaluation import disentanglement
from tfp_vae.evaluation.elbo import active_directions, evaluate, posterior_means
from tfp_vae.evaluation.record import DIGEST_KEY, read_record, update_record
from tfp_vae.evaluation.shards import weights_digest
from tfp_vae.runs import files as runs
from tfp_vae.runs.locks import RunDirBusyError, run_lock
from tfp_vae.training.trainer import load_data_for, train

if TYPE_CHECKING:
    import pandas as pd  # pandas loads when a table is first made

    from tfp_vae.data.idx import Splits

SWEEP_FILE = "sweep.json"
RESULTS_CSV = "results.csv"
METRICS_FILE = runs.METRICS_FILE  # the file `tfp-vae evaluate` writes too
# Scalar metrics copied into the results table (per-example means in nats; active_units a count).
TABLE_METRICS = ("elbo", "nll", "kl", "iwae", "bits_per_dim", "active_units", "active_directions")
# Disentanglement columns, on data sets with known factors only.
FACTOR_METRICS = disentanglement.TABLE_METRICS


def config_column(field: str) -> str:
    """The results-table column of config field `field`: its name, or "config.<name>" where a
    metric has that name (the config's `kl`, the KL estimator, is "config.kl"; `kl` is the rate)."""
    return f"config.{field}" if field in TABLE_METRICS + FACTOR_METRICS else field


_FIELDS = {f.name: f for f in dataclasses.fields(VAEConfig)}


@dataclasses.dataclass(frozen=True)
class SweepPoint:
    """One grid point: `name` (its run directory's name), its full `config`, its grid `values`."""

    name: str
    config: VAEConfig
    values: dict


# ---------------------------------------------------------------------------- the grid
def _fmt(value) -> str:
    if isinstance(value, (tuple, list)):
        return "x".join(_fmt(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def grid_points(base: VAEConfig, grid: dict[str, Sequence]) -> list[SweepPoint]:
    """The Cartesian product of `grid` ({config field: [values]}) applied to `base`.

    Fields are taken in name order and values in the order given; each point's name is
    "field=value,..." over the grid's fields. Raises `ConfigError` for an unknown field, an empty
    value list, or a value the config rejects (naming the point).
    """
    if not grid:
        raise ConfigError("the sweep grid is empty; give at least one field, e.g. {'beta': [0.5, 1, 4]}.")
    for field, values in grid.items():
        if field not in _FIELDS:
            raise ConfigError(
                f"sweep grid field {field!r} is not a VAEConfig field; choose from {sorted(_FIELDS)}."
            )
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__") or len(list(values)) == 0:
            raise ConfigError(f"sweep grid field {field!r} needs a non-empty list of values, got {values!r}.")
    fields = sorted(grid)
    points = []
    for combo in itertools.product(*(list(grid[f]) for f in fields)):
        chosen = dict(zip(fields, combo))
        name = ",".join(f"{f}={_fmt(v)}" for f, v in chosen.items())
        try:
            config = base.replace(**chosen)
        except ConfigError as err:
            raise ConfigError(f"sweep point {name}: {err}") from err
        points.append(SweepPoint(name, config, chosen))
    names = [p.name for p in points]
    if len(set(names)) != len(names):
        raise ConfigError(f"the sweep grid repeats a value: points {names}.")
    return points


def parse_shard(text: str) -> tuple[int, int]:
    """ "i/n" -> (i, n) with 1 <= i <= n; `ConfigError` otherwise."""
    try:
        i, n = (int(part) for part in str(text).split("/"))
    except ValueError:
        raise ConfigError(f"shard {text!r} must look like i/n, e.g. 1/4 (the first of four).") from None
    if not 1 <= i <= n:
        raise ConfigError(f"shard {text!r}: need 1 <= i <= n, e.g. 1/4 ... 4/4.")
    return i, n


def shard_points(points: list[SweepPoint], shard: tuple[int, int] = (1, 1)) -> list[SweepPoint]:
    """The points shard i of n runs: ranks i-1, i-1+n, ... of the points sorted by name.

    Sorting by name makes the split independent of the order fields and values were given in, so
    every machine given the same grid agrees on it; the n shards are disjoint, cover the grid and
    differ in size by at most one.
    """
    i, n = shard
    if not (isinstance(i, int) and isinstance(n, int) and 1 <= i <= n):
        raise ConfigError(f"shard {shard!r}: need integers 1 <= i <= n.")
    ranked = sorted(points, key=lambda p: p.name)
    mine = {p.name for p in ranked[i - 1 :: n]}
    return [p for p in points if p.name in mine]


def parse_grid(items) -> dict:
    """CLI grid items [[field, value, value, ...], ...] -> {field: [typed values]}.

    Values take the type of the field's default: numbers, strings, "none" for an optional field,
    and comma-separated integers for tuple fields (e.g. hidden_units 512,256 128).
    """
    grid = {}
    for item in items:
        field, *texts = item
        field = field.replace("-", "_")
        if field not in _FIELDS:
            raise ConfigError(f"--grid {field}: not a VAEConfig field; choose from {sorted(_FIELDS)}.")
        if not texts:
            raise ConfigError(f"--grid {field}: give at least one value.")
        grid[field] = [_parse_value(field, t) for t in texts]
    return grid


def _parse_value(field: str, text: str):
    default: Any = _FIELDS[field].default
    try:
        if isinstance(default, tuple):
            return tuple(int(t) for t in text.split(","))
        if _FIELDS[field].metadata.get("int_or_ints") and "," in text:  # an int, or one per layer
            return tuple(int(t) for t in text.split(","))
        if default is None:
            return None if text.lower() in ("none", "null") else text
        return type(default)(text)
    except ValueError:
        raise ConfigError(f"--grid {field}: cannot read {text!r} as {type(default).__name__}.") from None


# ---------------------------------------------------------------------------- running it
def _settings(base, grid, num_samples, train_examples, test_examples, factor_settings=None) -> dict:
    settings = {
        "base": base.to_dict(),
        "grid": {f: [list(v) if isinstance(v, tuple) else v for v in grid[f]] for f in sorted(grid)},
        "num_samples": num_samples,
        "train_examples": train_examples,
        "test_examples": test_examples,
    }
    if factor_settings:  # only sweeps on data with known factors record them
        settings.update(factor_settings)
    return settings


def _record_settings(out_dir: Path, settings: dict) -> None:
    """Writes sweep.json; refuses an OUT that holds a sweep with other base or evaluation settings
    (a grid may grow: its finished points are kept)."""
    path = out_dir / SWEEP_FILE
    if path.is_file():
        old = json.loads(path.read_text())
        differ = sorted(k for k in settings if k != "grid" and old.get(k) != settings[k])
        if differ:
            raise ConfigError(
                f"{out_dir} holds a sweep with different {differ} (see {path}); "
                "use a new output folder, or repeat that sweep's settings to resume it."
            )
    runs.atomic_write_text(path, json.dumps(settings, indent=2, sort_keys=True))


def is_finished(run_dir, config: VAEConfig) -> bool:
    """True when `run_dir` holds metrics for exactly `config`, of the weights it holds now (a
    metrics.json of older weights, from before the run was trained further, does not count)."""
    run_dir = Path(run_dir)
    if not (run_dir / METRICS_FILE).is_file() or not (run_dir / runs.CONFIG_FILE).is_file():
        return False
    try:
        digest = read_record(run_dir).get(DIGEST_KEY)
        if digest is not None and digest != weights_digest(run_dir):
            return False
        return runs.load_config(run_dir) == config
    except Exception:  # an unreadable config is an unfinished point: it is redone
        return False


def _jsonable_metrics(metrics: dict) -> dict:
    return {k: np.asarray(v).tolist() for k, v in metrics.items()}


def run_point(
    point: SweepPoint,
    out_dir,
    data,
    num_samples=1000,
    eval_batch_size=None,
    train_verbose=0,
    factor_settings=None,
) -> dict:
    """Trains `point` into OUT/point.name, evaluates it on the test images of `data` and writes
    metrics.json (metrics + training seconds). Returns the metrics.

    factor_settings: {"disentanglement_points": (train, test), "factor_vae_votes": (train, eval)}
    for the disentanglement metrics, computed when the point's data set has known factors."""
    run_dir = Path(out_dir) / point.name
    start = time.perf_counter()
    model, _ = train(point.config, out_dir=run_dir, data=data, verbose=train_verbose)
    seconds = time.perf_counter() - start
    (_, _), (x_test, _) = data
    kwargs = {} if eval_batch_size is None else {"batch_size": eval_batch_size}
    metrics = _jsonable_metrics(evaluate(model, x_test, num_samples=num_samples, **kwargs))
    metrics.update(
        train_seconds=seconds,
        num_samples=num_samples,
        test_images=len(x_test),
        active_directions=active_directions(posterior_means(model, x_test)),
    )
    ds = disentanglement.factor_data(point.config.dataset)
    if ds is not None:
        settings = factor_settings or _factor_settings()
        (num_train, num_test), votes = settings["disentanglement_points"], settings["factor_vae_votes"]
        start = time.perf_counter()
        metrics.update(
            disentanglement.model_metrics(
                model, ds, num_train, num_test, factor_vae_votes=tuple(votes), seed=point.config.seed
            )
        )
        metrics.update(disentanglement_seconds=time.perf_counter() - start, **settings)
    metrics = dict(sorted(metrics.items()))
    update_record(run_dir, metrics, runs.weights_steps(run_dir), weights_digest(run_dir))
    return metrics


def _factor_settings(
    disentanglement_points=(disentanglement.NUM_TRAIN, disentanglement.NUM_TEST),
    factor_vae_votes=(disentanglement.FACTOR_VAE_TRAIN, disentanglement.FACTOR_VAE_EVAL),
):
    settings = {"disentanglement_points": disentanglement_points, "factor_vae_votes": factor_vae_votes}
    for name, pair in settings.items():
        if len(tuple(pair)) != 2 or not all(isinstance(n, int) and n >= 1 for n in pair):
            raise ConfigError(f"{name}={pair!r}: need two integers >= 1 (train, test).")
    return {name: list(pair) for name, pair in settings.items()}


def _subset(data, train_examples, test_examples):
    (x, y), (xt, yt) = data

    def cut(a, n):  # own images may come without labels
        return None if a is None else a[:n]

    return (x[:train_examples], cut(y, train_examples)), (xt[:test_examples], cut(yt, test_examples))


def sweep(
    base: VAEConfig,
    grid: dict[str, Sequence],
    out_dir: str | os.PathLike,
    *,
    shard: tuple[int, int] = (1, 1),
    num_samples: int = 1000,
    eval_batch_size: int | None = None,
    train_examples: int | None = None,
    test_examples: int | None = None,
    data: Splits | None = None,
    data_dir: str | os.PathLike | None = None,
    verbose: int = 1,
    disentanglement_points: tuple[int, int] = (disentanglement.NUM_TRAIN, disentanglement.NUM_TEST),
    factor_vae_votes: tuple[int, int] = (disentanglement.FACTOR_VAE_TRAIN, disentanglement.FACTOR_VAE_EVAL),
) -> pd.DataFrame:
    """Runs every unfinished point of this shard of the grid; returns the results table.

    Args:
      base: the config every point starts from; grid: {config field: [values]}.
      out_dir: the sweep folder (shared by all shards).
      shard: (i, n), run only the i-th of n slices (see `shard_points`).
      num_samples: importance samples K of the iwae estimate.
      train_examples: use only the first N training images (None: all).
      test_examples: use only the first N test images (None: all).
      data: ((x, y), (x_test, y_test)) used for every point instead of loading each point's
        `config.dataset` scaled for its likelihood.
      verbose: 1 shows a progress bar over this shard's points, 0 is silent.
      disentanglement_points: (train, test) images for mig / dci / sap, and factor_vae_votes:
        (train, eval) votes of the FactorVAE score; used only on data sets with known factors
        (disentanglement_lib's defaults: 10,000 / 5,000 both).

    Returns `load_results(out_dir)`: a pandas DataFrame of every finished point in `out_dir` (all
    shards so far), as written to OUT/results.csv.
    """
    if not (isinstance(num_samples, int) and num_samples >= 1):
        raise ConfigError(f"num_samples={num_samples!r}: must be an integer >= 1.")
    out_dir = Path(out_dir)
    points = grid_points(base, grid)
    mine = shard_points(points, shard)
    factor_settings = _factor_settings(disentanglement_points, factor_vae_votes)
    if not any(p.config.dataset in disentanglement.FACTOR_DATASETS for p in points):
        factor_settings = None
    settings = _settings(base, grid, num_samples, train_examples, test_examples, factor_settings)
    _record_settings(out_dir, settings)
    todo = [p for p in mine if not is_finished(out_dir / p.name, p.config)]
    bar = tf_keras.utils.Progbar(len(mine), stateful_metrics=["kl", "nll"], verbose=verbose)
    bar.update(len(mine) - len(todo))
    for done, point in enumerate(todo, start=len(mine) - len(todo) + 1):
        try:
            # A point another shard has claimed is left to it (and counted as done here).
            with run_lock(out_dir / point.name, "running this sweep point"):
                if is_finished(out_dir / point.name, point.config):  # another shard finished it meanwhile
                    continue
                point_data = data if data is not None else load_data_for(point.config, data_dir)
                metrics = run_point(
                    point,
                    out_dir,
                    _subset(point_data, train_examples, test_examples),
                    num_samples=num_samples,
                    eval_batch_size=eval_batch_size,
                    factor_settings=factor_settings,
                )
        except RunDirBusyError as busy:
            if verbose:
                print(f"\nskipping {point.name}: {busy}", file=sys.stderr)
            continue
        write_results(out_dir)  # after every point, so an interruption keeps the table current
        bar.update(done, values=[("kl", metrics["kl"]), ("nll", metrics["nll"])])
    write_results(out_dir)  # also when nothing ran: other shards may have finished points
    return load_results(out_dir)


# ---------------------------------------------------------------------------- the table
def collect_results(out_dir):
    """A DataFrame with one row per finished run directory in `out_dir`: run, config fields
    (tuples as "256x64"; see `config_column`), the scalar metrics and train_seconds; sorted by
    the grid's fields."""
    import pandas as pd  # pandas loads when a table is first made

    out_dir = Path(out_dir)
    rows = []
    for metrics_path in sorted(out_dir.glob(f"*/{METRICS_FILE}")):
        run_dir = metrics_path.parent
        try:
            config = runs.load_config(run_dir)
            metrics = json.loads(metrics_path.read_text())
        except Exception:  # a half-made point of another shard: not finished, not a row
            continue
        row = {"run": run_dir.name}
        row.update(
            {config_column(k): _fmt(v) if isinstance(v, list) else v for k, v in config.to_dict().items()}
        )
        columns = (*TABLE_METRICS, "train_seconds", *FACTOR_METRICS, "disentanglement_seconds")
        row.update({k: metrics[k] for k in columns if k in metrics})
        rows.append(row)
    table = pd.DataFrame(rows)
    settings = out_dir / SWEEP_FILE
    grid_fields = sorted(json.loads(settings.read_text())["grid"]) if settings.is_file() else []
    keys = [config_column(f) for f in grid_fields if config_column(f) in table.columns]
    if keys and len(table):
        table = table.sort_values(keys, kind="stable").reset_index(drop=True)
    return table


def write_results(out_dir):
    """Rebuilds OUT/results.csv from the finished run directories (atomically); returns it."""
    table = collect_results(out_dir)
    runs.atomic_write(Path(out_dir) / RESULTS_CSV, lambda tmp: table.to_csv(tmp, index=False))
    return table


def load_results(out_dir: str | os.PathLike) -> pd.DataFrame:
    """OUT/results.csv as a DataFrame (rebuilt from the run directories if missing)."""
    import pandas as pd  # pandas loads when a table is first made

    path = Path(out_dir) / RESULTS_CSV
    return pd.read_csv(path) if path.is_file() else collect_results(out_dir)
