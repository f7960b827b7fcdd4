"""The `tfp-vae` command line.

    tfp-vae train --out runs/default                  # the classic Fashion-MNIST VAE, 5 epochs
    tfp-vae train --config experiments/fashion_mnist_density.json --out runs/d --max-minutes 55
    tfp-vae train --out runs/b4 --beta 4 --latent-dim 10 --encoder conv
    tfp-vae sweep --out runs/beta --latent-dim 10 --grid beta 0.5 1 4 --grid seed 0 1 --shard 1/2
    tfp-vae evaluate runs/default --num-samples 1000  # metrics.json: elbo, nll, kl, iwae, ...
    tfp-vae evaluate runs/dsprites                    # and, on dSprites, the six disentanglement metrics
    tfp-vae plot runs/default                         # PNGs into runs/default/plots/
    tfp-vae show runs/default runs/b4                 # the runs side by side
    tfp-vae export runs/default shipped/default       # without the optimizer's state, metrics kept
    tfp-vae train --out runs/b4 --beta 4 --latent-dim 10 --encoder conv   # again: resumes, or no-op
    tfp-vae train --out runs/gpus --strategy mirrored                 # every GPU of this machine

Every `VAEConfig` field is a flag (`--latent-dim`, `--kl-style`, ...), with the field's help text.
The command line differs from `VAEConfig()` in one default: without `--binarize`, a Bernoulli
likelihood gets dynamically binarized images (`CLI_BINARIZE`); `--binarize none` fits the grey
levels (the classic example); without `--input-shape`, a run on your own images (a folder or an
array file) takes their shape and says so. TensorFlow's C++ log lines are off below `--verbose 2`
(`tfp_vae.quiet`); `train`, `evaluate`, `plot` and `sweep` end with one sentence: what was done,
where it is, why it stopped, and the command to run next.

`--help`, `COMMAND --help` and every argument error answer without importing TensorFlow: this
module imports only TensorFlow-free parts at its top (config, choices, data sources, locks), and
each command imports the sub-package it runs when it starts. A bad value gets one line naming the
flag, the near choices and all of them, not the usage.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from tfp_vae import choices, registry
from tfp_vae.config import BINARIZE, DEQUANTIZE, KL_MODES, KL_STYLES, PRIOR_INITS, VAEConfig
from tfp_vae.data.sources import DSPRITES_NAMES, SOURCES, load_raw, source_for
from tfp_vae.errors import ConfigError, RunPaused, RunWriteError, TfpVaeError
from tfp_vae.quiet import calm

# Exit statuses besides 0 (done) and 2 (bad input, a damaged run directory):
REQUEUE_EXIT = 75  # EX_TEMPFAIL: paused by SIGTERM / SIGINT, committed; rerun to resume
WRITE_FAILED = 74  # EX_IOERR: a write failed for lack of space or permission; free it, rerun
# (A second Ctrl-C: 130 = 128 + SIGINT; a second SIGTERM ends the process as SIGTERM does.)

# `--binarize` when not given, by likelihood: a Bernoulli fits dynamically binarized images (the
# TFP example's choice), so its nats are a log-probability and nothing warns. VAEConfig's own
# default stays None (grey levels), which the Python API and its tests rely on.
CLI_BINARIZE = {"bernoulli": "dynamic"}


# Config fields with a fixed set of values: a registry, or (what a value is, the values).
CHOICES: dict[str, Any] = {
    "encoder": choices.ENCODERS,
    "likelihood": choices.LIKELIHOODS,
    "kl": ("KL mode", list(KL_MODES)),
    "kl_style": ("KL style", list(KL_STYLES)),
    "kl_schedule": choices.SCHEDULES,
    "binarize": ("binarization", [*(b for b in BINARIZE if b), "none"]),
    "prior": choices.PRIORS,
    "prior_init": ("prior start", list(PRIOR_INITS)),
    "hidden_activation": choices.HIDDEN_ACTIVATIONS,
    "lr_schedule": choices.LR_SCHEDULES,
    "dequantize": ("dequantization", [*(d for d in DEQUANTIZE if d), "none"]),
}


def flag(field: str) -> str:
    """The command-line flag of a `VAEConfig` field: latent_dim -> --latent-dim."""
    return "--" + field.replace("_", "-")


def one_of(values) -> Any:
    """(argparse `type`, metavar) for the names of `values` (a registry, or (kind, names)): the
    type's error names the near ones (`gaussian` -> did you mean 'normal' or 'normal_fixed'?)."""
    hint: Callable[[str], str]
    if isinstance(values, registry.Registry):
        names, hint = list(values), values.hint
    else:
        kind, names = values
        hint = functools.partial(registry.hint, kind, names=names)

    def parse(text: str) -> str:
        if text not in names:
            raise argparse.ArgumentTypeError(f"{text!r}: {hint(text)}")
        return text

    return parse, "{" + ",".join(names) + "}"


class Parser(argparse.ArgumentParser):
    """An `ArgumentParser` whose errors are one line (and a pointer to --help), not the usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n(see '{self.prog} --help')\n")


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per `VAEConfig` field; defaults left as None so only given flags override."""
    for field in dataclasses.fields(VAEConfig):
        default = field.default
        kwargs: dict[str, Any] = {"default": None, "help": f"{field.metadata['help']} (default: {default})"}
        if field.name == "binarize":
            kwargs["help"] = (
                f"{field.metadata['help']} 'none' fits grey levels (default here: "
                f"{CLI_BINARIZE} by likelihood, else none)"
            )
        if isinstance(default, tuple) or field.metadata.get("int_or_ints"):
            kwargs.update(type=int, nargs="+", metavar="N")
        elif isinstance(default, bool):
            kwargs.update(type=_boolean, metavar="{true,false}")
        elif default is None:
            kwargs.update(type=str)
        else:
            kwargs.update(type=type(default))
        if field.name in CHOICES:
            kwargs["type"], kwargs["metavar"] = one_of(CHOICES[field.name])
        parser.add_argument(flag(field.name), dest=field.name, **kwargs)


def _boolean(text: str) -> bool:
    words = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
    if text.lower() not in words:
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return words[text.lower()]


def config_from_args(args, base: VAEConfig | None = None) -> VAEConfig:
    """The config made of `base` (default `VAEConfig()`) and every config flag that was given."""
    changes = {
        f.name: None if f.default is None and getattr(args, f.name) == "none" else getattr(args, f.name)
        for f in dataclasses.fields(VAEConfig)
        if getattr(args, f.name, None) is not None
    }
    for f in dataclasses.fields(VAEConfig):  # --conv-filters 32: the int form; 32 32 64 64: per layer
        value = changes.get(f.name)
        if f.metadata.get("int_or_ints") and isinstance(value, list) and len(value) == 1:
            changes[f.name] = value[0]
    return (base or VAEConfig()).replace(**changes)


def with_cli_binarize(config: VAEConfig, args, grid=()) -> VAEConfig:
    """`config` with `CLI_BINARIZE`'s binarization when --binarize was not given (and neither the
    likelihood nor the binarization is a sweep axis, where each point's family decides)."""
    if getattr(args, "binarize", None) is not None or {"binarize", "likelihood"} & set(grid):
        return config
    return config.replace(binarize=CLI_BINARIZE.get(config.likelihood, config.binarize))


def config_file(path) -> VAEConfig:
    """The config in a JSON file of `config.json` format; ConfigError naming the file otherwise."""
    return config_file_fields(path)[0]


def config_file_fields(path) -> tuple[VAEConfig, set]:
    """(the config in the JSON file at `path`, the names of the fields the file sets)."""
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise ConfigError(
            f"--config {path}: cannot read it ({err.strerror}); give the path of a "
            "config JSON file, e.g. experiments/fashion_mnist_density.json."
        ) from err
    try:
        config = VAEConfig.from_json(text)
    except ConfigError as err:
        raise ConfigError(
            f"--config {path}: {err} Correct or remove that entry of the file (its "
            "format is a run directory's config.json)."
        ) from err
    return config, set(json.loads(text))


# Each command imports the sub-packages it runs here, after its config is checked: argument and
# config errors answer without TensorFlow.
def _train(args) -> int:
    base, given = config_file_fields(args.config) if args.config else (None, set())
    config = config_from_args(args, base)
    if "binarize" not in given:  # a file's own binarize wins over the command line's default
        config = with_cli_binarize(config, args)
    if args.input_shape is None and "input_shape" not in given:
        config = with_images_shape(config, args.data_dir)
    from tfp_vae.training.trainer import train  # TensorFlow: see above

    _, history = train(
        config,
        out_dir=args.out,
        data_dir=args.data_dir,
        verbose=args.verbose,
        strategy=args.strategy,
        tensorboard=args.tensorboard,
        max_minutes=args.max_minutes,
    )
    print(trained_sentence(args.out, config, history))
    return 0


def with_images_shape(config: VAEConfig, data_dir=None) -> VAEConfig:
    """`config` with the input_shape of its own images (a folder or an array file) when that
    differs and the images are not resized, saying so in one line; other data sets unchanged."""
    if config.resize or source_for(config.dataset) not in {SOURCES["array_file"], SOURCES["image_folder"]}:
        return config
    shape = load_raw(config.dataset, data_dir=data_dir, test_fraction=config.test_fraction).x.shape[1:]
    if tuple(shape) == config.input_shape:
        return config
    print(f"--input-shape not given: using the images' shape, --input-shape {' '.join(map(str, shape))}")
    return config.replace(input_shape=tuple(int(s) for s in shape))


def trained_sentence(out, config: VAEConfig, history: dict) -> str:
    """What `train` did, where, why it stopped and the command to run next, in one sentence."""
    status = _read_json(Path(out) / "status.json")  # training.checkpoint.STATUS_FILE
    done = len(history.get("loss", []))
    if config.max_steps:  # a step budget replaces the epochs as the run's length
        length, longer = f"{status.get('steps_done', 0)} of {config.max_steps} steps", "--max-steps"
    else:
        length, longer = f"{done} of {config.epochs} epochs", "--epochs"
    state, reason = status.get("state"), status.get("reason") or f"{length} done"
    if "val_nll" in history and done:
        split = "validation" if config.validation_examples else "test"
        reached = f" ({split} -ELBO {history['val_nll'][-1] + history['val_kl'][-1]:.2f} nats per example)"
    else:
        reached = ""
    if state == "paused":  # the reason names the command that resumes it
        return f"Trained {length} into {out}{reached}; paused: {reason}."
    return (
        f"Trained {length} into {out}{reached}; stopped: {reason}. "
        f"Next: tfp-vae evaluate {out} (or train further with a larger {longer})"
    )


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):  # a run trained without status.json
        return {}


def _sweep(args) -> int:
    base = config_from_args(args)
    from tfp_vae.studies.grid import (  # TensorFlow
        FACTOR_METRICS,
        TABLE_METRICS,
        grid_points,
        parse_grid,
        parse_shard,
        sweep,
    )

    grid = parse_grid(args.grid)
    table = sweep(
        with_cli_binarize(base, args, grid),
        grid,
        args.out,
        shard=parse_shard(args.shard),
        num_samples=args.num_samples,
        eval_batch_size=args.eval_batch_size,
        train_examples=args.train_examples or None,
        test_examples=args.test_examples,
        data_dir=args.data_dir,
        verbose=1 if args.verbose else 0,
        disentanglement_points=tuple(args.disentanglement_points),
        factor_vae_votes=tuple(args.factor_vae_votes),
    )
    columns = ["run", *(m for m in TABLE_METRICS + FACTOR_METRICS if m in table.columns)]
    if len(table):
        print(table[columns].to_string(index=False))
    points = len(grid_points(base, grid))
    if len(table) < points:
        why, nxt = (
            f"this shard ({args.shard}) is done, the other points are other shards' or still running",
            f"run the other shards with the same command and --shard i/n, then tfp-vae show {args.out}/*/",
        )
    else:
        why, nxt = "every point is done", f"tfp-vae show {args.out}/*/"
    print(
        f"Swept {len(table)} of {points} grid point(s) into {args.out}/ (table: {args.out}/results.csv, "
        f"nats per test image); stopped: {why}. Next: {nxt}"
    )
    return 0


def _evaluate(args) -> int:
    for name in ("disentanglement_points", "factor_vae_votes"):  # before any work is done
        if min(getattr(args, name)) < 1:
            raise TfpVaeError(f"--{name.replace('_', '-')} {getattr(args, name)}: need two integers >= 1.")
    if args.at_steps is not None and _milestone_done(args):
        return 0
    _check_training_done(args.run_dir)
    from tfp_vae.evaluation.shards import evaluate_run  # TensorFlow: see _train
    from tfp_vae.runs import files as runs
    from tfp_vae.training.trainer import load_data_for

    model = runs.load(args.run_dir)
    _, (x_test, _) = load_data_for(model.config, args.data_dir, run_dir=args.run_dir)
    x_test = x_test[: args.limit] if args.limit else x_test
    metrics, path, shards = evaluate_run(
        model,
        args.run_dir,
        x_test,
        num_samples=args.num_samples,
        batch_size=args.batch_size,
        verbose=args.verbose,
    )
    print(f"{len(x_test)} test images, K = {args.num_samples} importance samples (nats per example)")
    for key in ("elbo", "nll", "kl", "iwae", "iwae_standard_error", "active_units"):
        print(
            f"  {key:<20}{metrics[key]:>12.4f}"
            if key != "active_units"
            else f"  {key:<20}{metrics[key]:>7d} of {model.config.latent_dim}"
        )
    if metrics["bits_per_dim"] is None:
        print(f"  {'bits_per_dim':<20}{'n/a':>12}  (not 8-bit images: no probability of discrete images)")
    else:
        print(
            f"  {'bits_per_dim':<20}{metrics['bits_per_dim']:>12.4f} +- "
            f"{metrics['bits_per_dim_standard_error']:.4f}  ({metrics['bits_per_dim_kind']}, "
            f"{metrics['bits_per_dim_data']})"
        )
    if args.disentanglement:
        _evaluate_factors(model, args)
    print(
        f"Evaluated {len(x_test)} test images of {args.run_dir} (test log p(x) >= "
        f"{metrics['iwae']:.2f} nats per example, IWAE K = {args.num_samples}) into {path}; stopped: "
        f"all images done (per-image shards kept in {shards}). Next: tfp-vae plot {args.run_dir}"
    )
    return 0


def _evaluate_factors(model, args) -> None:
    """The disentanglement metrics of a run on a data set with known factors, group by group."""
    from tfp_vae.evaluation.disentanglement import factor_data  # TensorFlow: see _train
    from tfp_vae.evaluation.disentanglement.resumable import evaluate_factors

    ds = factor_data(model.config.dataset)
    if ds is None:
        return
    print(f"disentanglement metrics on {model.config.dataset} ({len(ds):,} images, known factors)")
    scores, folder = evaluate_factors(
        model,
        args.run_dir,
        ds,
        points=tuple(args.disentanglement_points),
        votes=tuple(args.factor_vae_votes),
        verbose=args.verbose,
        groups=args.disentanglement_metrics,
    )
    for key, value in scores.items():
        if isinstance(value, float) and key != "disentanglement_seconds":
            print(f"  {key:<20}{value:>12.4f}")
    print(f"added to metrics.json ({scores['disentanglement_seconds']:.0f} s); per-metric files in {folder}")


def metric_names(text: str) -> tuple[str, ...]:
    """`--disentanglement-metrics mig,factor_vae`: the metric groups named (each a group or one of
    its metrics), checked against `choices.METRIC_GROUPS` before TensorFlow loads."""
    try:
        return choices.metric_groups([n.strip() for n in text.split(",") if n.strip()])
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{err} (comma-separated)") from err


class MilestoneNotReached(TfpVaeError):
    """`evaluate --at-steps N` on a run whose training has not reached exactly N steps yet
    (exit 75: train it there, then rerun)."""


def _milestone_done(args) -> bool:
    """`evaluate --at-steps N`, before TensorFlow loads: True (nothing to do) when metrics.json
    holds the chosen metrics at N steps already; raises `MilestoneNotReached` when the run is not
    trained to exactly N steps (not complete, or complete at another budget)."""
    run_dir, steps = Path(args.run_dir), args.at_steps
    status = _read_json(run_dir / "status.json")  # training.checkpoint.STATUS_FILE
    config = _read_json(run_dir / "config.json")
    wanted = ["iwae"]
    if args.disentanglement and config.get("dataset") in DSPRITES_NAMES:  # its factors are known
        groups = args.disentanglement_metrics or tuple(choices.METRIC_GROUPS)
        wanted += [m for g in groups for m in choices.METRIC_GROUPS[g]]
    entry = (_read_json(run_dir / "metrics.json").get("at_steps") or {}).get(str(steps), {})
    if all(m in entry for m in wanted):
        print(
            f"{run_dir} is evaluated at {steps} steps already ({', '.join(wanted)} in metrics.json's "
            f"at_steps); nothing to do. Next: tfp-vae study {run_dir.parent}"
        )
        return True
    done, state = status.get("steps_done"), status.get("state")
    if state == "complete" and done == steps:
        return False
    if done is not None and done > steps:
        raise TfpVaeError(
            f"{run_dir} is trained for {done} optimizer steps, past the milestone --at-steps {steps}, "
            f"which was not evaluated; evaluate it at its own steps (--at-steps {done}) instead."
        )
    raise MilestoneNotReached(
        f"{run_dir} is not trained to {steps} steps yet (state {state or 'not started'}, "
        f"{done or 0} steps done): train it with --max-steps {steps}, then rerun this command."
    )


def _check_training_done(run_dir) -> None:
    """One line when the run's training is not complete (its weights are those of the last slice)."""
    status = _read_json(Path(run_dir) / "status.json")  # training.checkpoint.STATUS_FILE
    if status.get("state") in ("training", "paused"):
        print(
            f"note: {run_dir} is {status['state']} at {status.get('steps_done', '?')} optimizer steps: "
            "evaluating the weights of that point (metrics.json records them under those steps)"
        )


def _plot(args) -> int:
    from tfp_vae.plots.run import save_run_plots  # TensorFlow and matplotlib: see _train

    paths = save_run_plots(args.run_dir, data_dir=args.data_dir, verbose=args.verbose)
    folder = paths[0].parent if paths else args.run_dir
    print(
        f"Drew {len(paths)} figures of {args.run_dir} into {folder}/ ({', '.join(p.name for p in paths)}); "
        f"stopped: every figure of this run is drawn. Next: open {folder}/latent_space.png, or "
        f"tfp-vae show {args.run_dir} to compare it with other runs"
    )
    return 0


def _export(args) -> int:
    from tfp_vae.evaluation.record import DIGEST_KEY, read_record  # TensorFlow: see _train
    from tfp_vae.evaluation.shards import weights_digest
    from tfp_vae.runs.files import WEIGHTS_FILE
    from tfp_vae.studies.export import export_run

    dest = export_run(args.run_dir, args.dest, overwrite=args.overwrite)
    source = (Path(args.run_dir) / WEIGHTS_FILE).stat().st_size  # left as it was
    files = [p for p in dest.iterdir() if p.is_file()]
    size = sum(p.stat().st_size for p in files) / 1e6
    weights = (dest / WEIGHTS_FILE).stat().st_size / 1e6
    record = read_record(dest)
    if not record:
        metrics, after = "no metrics.json yet", f"tfp-vae evaluate {dest}"
    elif record.get(DIGEST_KEY) == weights_digest(dest):
        metrics, after = "metrics of these weights kept", f"tfp-vae show {dest}"
    else:
        metrics, after = "metrics.json of other weights copied as it was", f"tfp-vae evaluate {dest}"
    print(
        f"Exported {args.run_dir} into {dest} ({size:.2f} MB in {len(files)} files: "
        f"{', '.join(sorted(p.name for p in files))}; {WEIGHTS_FILE} {weights:.2f} MB without the "
        f"optimizer's state, was {source / 1e6:.2f} MB; {metrics}). Next: {after}"
    )
    return 0


def _show(args) -> int:
    import pandas as pd  # loads with the command, as the run table does (see _train)

    from tfp_vae.studies.table import SHOW_WIDTH, fit_table, runs_table

    table = runs_table(args.run_dirs)
    with pd.option_context("display.max_columns", None):
        print(fit_table(table, SHOW_WIDTH))
    print(f"{len(table)} run(s) side by side (nats per example); nothing written")
    return 0


def _study(args) -> int:
    import pandas as pd  # loads with the command, as the run table does (see _train)

    from tfp_vae.studies.beta_study import study_summary, study_table
    from tfp_vae.studies.table import SHOW_WIDTH, fit_table

    table = study_table(args.root, args.pattern, milestones=args.milestones)
    with pd.option_context("display.max_columns", None):
        print(fit_table(table, SHOW_WIDTH))
        print("\nmedian over seeds per beta:")
        print(fit_table(study_summary(table).reset_index(), SHOW_WIDTH))
    print(
        f"{len(table)} run(s) of {args.root}/{args.pattern} at milestones {args.milestones} steps "
        "(metrics from metrics.json's at_steps; NaN: not evaluated there yet); nothing written"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="tfp-vae",
        description="Variational autoencoders from TensorFlow Probability layers. "
        "Losses and metrics are in nats per example.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    train = sub.add_parser(
        "train",
        help="train a VAE into a run directory",
        description="Train a VAE; writes config.json, model.weights.h5, history.csv, "
        "history.json, status.json and checkpoints (every epoch and every --checkpoint-minutes) "
        "into --out. Validates every epoch on the last --validation-examples training images, or "
        "on the test split if 0. Rerunning the same command resumes from the newest whole "
        "checkpoint, mid-epoch if need be. SIGTERM or Ctrl-C: finishes the block of steps under "
        "way, commits a checkpoint, writes status.json as paused and exits with 75 (EX_TEMPFAIL: "
        "requeue me); a second Ctrl-C stops at once (130). A full disk exits with 74 (EX_IOERR).",
    )
    train.add_argument(
        "--config",
        default=None,
        metavar="FILE.json",
        help="start from this config file (a run directory's config.json format, "
        "e.g. experiments/fashion_mnist_density.json); flags override single fields",
    )
    train.add_argument(
        "--max-minutes",
        type=float,
        default=None,
        metavar="M",
        help="stop cleanly at the end of the first block of steps that ends after M minutes, "
        "with a checkpoint (mid-epoch if need be); rerun the same command to resume "
        "(default: no limit)",
    )
    train.add_argument("--out", required=True, help="run directory to write (created if missing)")
    data_help = (
        "folder with the four IDX .gz files (default: $TFP_VAE_DATA_DIR, "
        "then ~/.keras/datasets/<data set>/, then download)"
    )
    train.add_argument("--data-dir", default=None, help=data_help)
    train.add_argument(
        "--verbose",
        type=int,
        default=1,
        choices=[0, 1, 2],
        help="Keras progress output: 0 silent, 1 progress bar, 2 one line per epoch "
        "and TensorFlow's own log lines",
    )
    train.add_argument(
        "--tensorboard",
        action="store_true",
        help="write TensorBoard logs (loss, nll, kl, beta per epoch; reconstructions "
        "and prior samples) into OUT/tensorboard/",
    )
    strategy_type, strategy_names = one_of(choices.STRATEGIES)
    train.add_argument(
        "--strategy",
        default="default",
        type=strategy_type,
        metavar=strategy_names,
        help="tf.distribute strategy: 'mirrored' uses every GPU of this machine, "
        "'multiworker' several machines described by $TF_CONFIG (default: one device)",
    )
    add_config_flags(train)
    train.set_defaults(run=_train)

    sweep = sub.add_parser(
        "sweep",
        help="train and evaluate a grid of configs (beta x seeds x any field)",
        description="Train and evaluate one run directory per grid point under --out, and write "
        "--out/results.csv (config fields + elbo, nll, kl at beta = 1, iwae, active_units). "
        "Rerunning skips finished points. Config flags set the base config of every point.",
    )
    sweep.add_argument("--out", required=True, help="sweep folder (shared by all shards)")
    sweep.add_argument(
        "--grid",
        action="append",
        nargs="+",
        required=True,
        metavar="FIELD VALUE",
        help="a config field and its values, e.g. --grid beta 0.5 1 4 --grid seed 0 1 "
        "(tuple fields take comma-separated integers: --grid hidden_units 256,64 512)",
    )
    sweep.add_argument(
        "--shard",
        default="1/1",
        help="run only shard i of n (e.g. 2/4): splits the points across machines "
        "sharing --out (default: 1/1, all points)",
    )
    sweep.add_argument(
        "--num-samples",
        type=int,
        default=1000,
        help="importance samples K for the iwae estimate (default: 1000)",
    )
    sweep.add_argument(
        "--eval-batch-size",
        type=int,
        default=None,
        help="test images per evaluation chunk (default: evaluate's own)",
    )
    # --train-examples comes with the config flags (VAEConfig.train_examples).
    sweep.add_argument(
        "--test-examples",
        type=int,
        default=None,
        help="evaluate on the first N test images only (default: all)",
    )
    sweep.add_argument("--data-dir", default=None, help=data_help)
    # disentanglement metrics (data sets with known factors: dsprites, dsprites_small)
    sweep.add_argument(
        "--disentanglement-points",
        type=int,
        nargs=2,
        default=[10_000, 5_000],
        metavar=("TRAIN", "TEST"),
        help="images for mig / dci / sap, drawn from the whole factor grid "
        "(default: 10000 5000, as disentanglement_lib)",
    )
    sweep.add_argument(
        "--factor-vae-votes",
        type=int,
        nargs=2,
        default=[10_000, 5_000],
        metavar=("TRAIN", "EVAL"),
        help="votes of 64 images each for the FactorVAE and BetaVAE scores (default: 10000 5000)",
    )
    sweep.add_argument(
        "--verbose",
        type=int,
        default=1,
        choices=[0, 1, 2],
        help="1 shows a progress bar over the points, 0 is silent, 2 also shows TensorFlow's own log lines",
    )
    add_config_flags(sweep)
    sweep.set_defaults(run=_sweep)

    evaluate = sub.add_parser(
        "evaluate",
        help="test-set ELBO, IWAE log-likelihood and latent diagnostics of a trained run",
        description="Evaluate the run's model on its test split; writes RUN_DIR/metrics.json. "
        "Finished shards of images are kept in RUN_DIR/evaluation/, so a stopped evaluation "
        "resumes when rerun (as long as the weights and the test images are the same). SIGTERM "
        "or Ctrl-C finishes the shard under way, writes RUN_DIR/evaluation/status.json as paused "
        "and exits with 75.",
    )
    evaluate.add_argument("run_dir", metavar="RUN_DIR")
    evaluate.add_argument(
        "--num-samples",
        type=int,
        default=1000,
        help="importance samples K per image for the IWAE estimate (default: 1000)",
    )
    evaluate.add_argument("--batch-size", type=int, default=100, help="test images per chunk (default: 100)")
    evaluate.add_argument("--limit", type=int, default=None, help="evaluate only the first N test images")
    evaluate.add_argument(
        "--verbose",
        type=int,
        default=1,
        choices=[0, 1],
        help="1 shows a progress bar with an ETA over the test images, 0 is silent",
    )
    evaluate.add_argument("--data-dir", default=None, help=data_help)
    # disentanglement metrics (data sets with known factors: dsprites, dsprites_small)
    evaluate.add_argument(
        "--disentanglement",
        type=_boolean,
        default=True,
        metavar="{true,false}",
        help="on a data set with known factors, also compute MIG, DCI, SAP, modularity / "
        "explicitness, the FactorVAE and BetaVAE scores into metrics.json, one metric group at a "
        "time (kept in RUN_DIR/evaluation/disentanglement/, so a stopped run resumes) (default: true)",
    )
    evaluate.add_argument(
        "--at-steps",
        type=int,
        default=None,
        metavar="N",
        help="a milestone: evaluate only weights trained for exactly N optimizer steps (a complete "
        "run of --max-steps N); does nothing when metrics.json holds the chosen metrics at N "
        "already, exits with 75 when the run is not there yet (train it, then rerun)",
    )
    evaluate.add_argument(
        "--disentanglement-metrics",
        type=metric_names,
        default=None,
        metavar="NAMES",
        help="only these disentanglement metrics, comma-separated groups "
        f"({','.join(choices.METRIC_GROUPS)}) or their metrics (e.g. factor_vae_score), e.g. "
        "mig,factor_vae at a milestone; metrics.json keeps each evaluation under the weights' "
        "optimizer steps (at_steps) (default: all, the six)",
    )
    evaluate.add_argument(
        "--disentanglement-points",
        type=int,
        nargs=2,
        default=[10_000, 5_000],
        metavar=("TRAIN", "TEST"),
        help="images for mig / dci / sap / modularity, drawn from the whole factor grid "
        "(default: 10000 5000, as disentanglement_lib)",
    )
    evaluate.add_argument(
        "--factor-vae-votes",
        type=int,
        nargs=2,
        default=[10_000, 5_000],
        metavar=("TRAIN", "EVAL"),
        help="votes (batches of 64 images) for the FactorVAE and BetaVAE scores (default: 10000 5000)",
    )
    evaluate.set_defaults(run=_evaluate, lock="evaluating")

    plot = sub.add_parser(
        "plot",
        help="draw every picture of a trained run into RUN_DIR/plots/",
        description="Examples, latent space before/after training, reconstructions, prior "
        "samples, latent traversals, the 2-D manifold (z = 2) and training curves, as PNGs.",
    )
    plot.add_argument("run_dir", metavar="RUN_DIR")
    plot.add_argument("--data-dir", default=None, help=data_help)
    plot.add_argument(
        "--verbose",
        type=int,
        default=1,
        choices=[0, 1, 2],
        help="1 shows a progress bar over the figures, 0 is silent, 2 also shows TensorFlow's own log lines",
    )
    plot.set_defaults(run=_plot)

    export = sub.add_parser(
        "export",
        help="copy a run without the optimizer's state into a new folder, to ship it; metrics kept",
        description="Writes DEST: model.weights.h5 without the optimizer's state (about a third "
        "of the size), checked against RUN's bit for bit and stamped with its optimizer steps; "
        "config.json, data.json, status.json, history.csv and latents_before.npz as they are; "
        "metrics.json with weights_sha256 set to the exported file's, so the metrics stay those "
        "of these weights. Never copies checkpoints/ or evaluation/: RUN keeps its resume state.",
    )
    export.add_argument("run_dir", metavar="RUN", help="the trained run directory (left as it is)")
    export.add_argument("dest", metavar="DEST", help="a new (or empty) folder to export into")
    export.add_argument("--overwrite", action="store_true", help="replace DEST if it exists and is not empty")
    export.set_defaults(run=_export)

    show = sub.add_parser(
        "show",
        help="runs side by side: differing config fields, epochs, final nats, metrics",
        description="A table of run directories: the config fields that differ, status, epochs "
        "done and best epoch, last and best validation negative ELBO, and metrics.json figures.",
    )
    show.add_argument("run_dirs", metavar="RUN_DIR", nargs="+")
    show.set_defaults(run=_show)

    study = sub.add_parser(
        "study",
        help="the beta-VAE study's table: metrics per (beta, seed) at each milestone, medians per beta",
        description="One row per run directory ROOT/PATTERN: beta, seed, steps trained, MIG and "
        "the FactorVAE score at every milestone, the other disentanglement metrics and the ELBO at "
        "the last; then the median over seeds per beta. Reads metrics.json's at_steps (written by "
        "tfp-vae evaluate after each milestone).",
    )
    study.add_argument("root", metavar="ROOT", nargs="?", default="experiments/results")
    study.add_argument(
        "--pattern",
        default="dsprites_beta*_seed*",
        help="run folders under ROOT (default: dsprites_beta*_seed*)",
    )
    study.add_argument(
        "--milestones",
        type=int,
        nargs="+",
        default=[10_000, 25_000, 50_000],
        metavar="STEPS",
        help="optimizer steps of the evaluations (default: 10000 25000 50000)",
    )
    study.set_defaults(run=_study)
    return parser


def _stopped_at_once(command: str) -> str:
    return (
        f"tfp-vae {command}: stopped at once; the last committed checkpoint (or shard) "
        "is whole: rerun the same command to resume from it."
    )


@contextlib.contextmanager
def _ctrl_c_exits(command: str):
    """Within the block, SIGINT (outside `stop_requests`, or a second one inside it) ends the
    process at once with exit 130, without unwinding: a `KeyboardInterrupt` raised through `fit`
    while TensorFlow's threads still ran the block once crashed the process under load (glibc's
    "free(): invalid next size") before it could say why. Every commit is a rename, so nothing
    whole is lost. Only in the main thread (elsewhere nothing changes); restored afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def exit_now(number, frame):
        print(_stopped_at_once(command), file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(128 + signal.SIGINT)

    previous = signal.signal(signal.SIGINT, exit_now)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    calm(getattr(args, "verbose", 1))
    try:
        # Commands writing into a run directory hold its lock (`train` takes its own); a missing
        # directory is left to the command's own error, not created.
        lock = getattr(args, "lock", None)
        if lock:  # its sub-package holds models too (TensorFlow): only for a command that locks
            from tfp_vae.runs.locks import run_lock
        held: contextlib.AbstractContextManager = contextlib.nullcontext()
        if lock and os.path.isdir(args.run_dir):
            held = run_lock(args.run_dir, lock)
        with _ctrl_c_exits(args.command), held:
            return args.run(args)
    except MilestoneNotReached as err:  # not an error: not yet (a loop trains, then reruns)
        print(f"tfp-vae {args.command}: not yet: {err}", file=sys.stderr)
        return REQUEUE_EXIT
    except TfpVaeError as err:
        message = str(err)
        if isinstance(err, ConfigError) and err.field:  # the flag the user typed, not the field
            message = message.replace(f"VAEConfig.{err.field}=", f"{flag(err.field)} ", 1)
        print(f"tfp-vae {args.command}: error: {message}", file=sys.stderr)
        return WRITE_FAILED if isinstance(err, RunWriteError) else 2
    except RunPaused as paused:  # a signal: the work is committed; a scheduler may requeue us
        print(f"tfp-vae {args.command}: paused: {paused}", file=sys.stderr)
        return REQUEUE_EXIT
    except KeyboardInterrupt:  # raised by a Ctrl-C outside the main thread's handler
        print(_stopped_at_once(args.command), file=sys.stderr)
        return 128 + signal.SIGINT


if __name__ == "__main__":
    sys.exit(main())
