"""The `tfp-vae` command line.

    tfp-vae train --out runs/default                  # the classic Fashion-MNIST VAE, 5 epochs
    tfp-vae train --out runs/b4 --beta 4 --latent-dim 10 --encoder conv
    tfp-vae evaluate runs/default --num-samples 1000  # metrics.json: elbo, nll, kl, iwae, ...
    tfp-vae plot runs/default                         # PNGs into runs/default/plots/

Every `VAEConfig` field is a flag (`--latent-dim`, `--kl-style`, ...), with the field's help text.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from tfp_vae.config import BINARIZE, KL_MODES, KL_STYLES, VAEConfig


def _choices():
    from tfp_vae.data import DATASETS
    from tfp_vae.encoders import ENCODERS
    from tfp_vae.likelihoods import LIKELIHOODS

    return {
        "encoder": sorted(ENCODERS),
        "likelihood": sorted(LIKELIHOODS),
        "kl": list(KL_MODES),
        "kl_style": list(KL_STYLES),
        "dataset": sorted(DATASETS),
        "binarize": [b for b in BINARIZE if b],
    }


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per `VAEConfig` field; defaults left as None so only given flags override."""
    choices = _choices()
    for field in dataclasses.fields(VAEConfig):
        default = field.default
        kwargs = {"default": None, "help": f"{field.metadata['help']} (default: {default})"}
        if isinstance(default, tuple):
            kwargs.update(type=int, nargs="+", metavar="N")
        elif isinstance(default, bool) or default is None:
            kwargs.update(type=str)
        else:
            kwargs.update(type=type(default))
        if field.name in choices:
            kwargs["choices"] = choices[field.name]
        parser.add_argument("--" + field.name.replace("_", "-"), dest=field.name, **kwargs)


def config_from_args(args, base: VAEConfig | None = None) -> VAEConfig:
    """The config made of `base` (default `VAEConfig()`) and every config flag that was given."""
    changes = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(VAEConfig)
        if getattr(args, f.name, None) is not None
    }
    return (base or VAEConfig()).replace(**changes)


def _train(args) -> int:
    from tfp_vae.train import train

    config = config_from_args(args)
    _, history = train(config, out_dir=args.out, data_dir=args.data_dir, verbose=args.verbose)
    last = {k: round(v[-1], 3) for k, v in history.items()}
    print(f"trained {config.epochs} epoch(s) into {args.out}; last epoch (nats per example): {last}")
    return 0


def _evaluate(args) -> int:
    import json

    import numpy as np

    from tfp_vae import runs
    from tfp_vae.evaluate import evaluate
    from tfp_vae.train import load_data_for

    model = runs.load(args.run_dir)
    _, (x_test, _) = load_data_for(model.config, args.data_dir)
    x_test = x_test[:args.limit] if args.limit else x_test
    metrics = evaluate(model, x_test, num_samples=args.num_samples, batch_size=args.batch_size)
    record = {k: np.asarray(v).tolist() for k, v in metrics.items()}
    record.update(num_samples=args.num_samples, test_images=len(x_test))
    path = runs.atomic_write_text(f"{args.run_dir}/{runs.METRICS_FILE}", json.dumps(record, indent=2))
    print(f"{len(x_test)} test images, K = {args.num_samples} importance samples (nats per example)")
    for key in ("elbo", "nll", "kl", "iwae", "bits_per_dim", "active_units"):
        print(f"  {key:<13}{metrics[key]:>12.4f}" if key != "active_units"
              else f"  {key:<13}{metrics[key]:>7d} of {model.config.latent_dim}")
    print(f"written to {path}")
    return 0


def _plot(args) -> int:
    from tfp_vae.plots import save_run_plots

    for path in save_run_plots(args.run_dir, data_dir=args.data_dir):
        print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfp-vae",
        description="Variational autoencoders from TensorFlow Probability layers. "
        "Losses and metrics are in nats per example.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser(
        "train",
        help="train a VAE into a run directory",
        description="Train a VAE; writes config.json, model.weights.h5, history.csv and "
        "history.json into --out. Validates on the test split every epoch.",
    )
    train.add_argument("--out", required=True, help="run directory to write (created if missing)")
    data_help = ("folder with the four IDX .gz files (default: $TFP_VAE_DATA_DIR, "
                 "then ~/.keras/datasets/<data set>/, then download)")
    train.add_argument("--data-dir", default=None, help=data_help)
    train.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2],
                       help="Keras progress output: 0 silent, 1 progress bar, 2 one line per epoch")
    add_config_flags(train)
    train.set_defaults(run=_train)

    evaluate = sub.add_parser(
        "evaluate",
        help="test-set ELBO, IWAE log-likelihood and latent diagnostics of a trained run",
        description="Evaluate the run's model on its test split; writes RUN_DIR/metrics.json.",
    )
    evaluate.add_argument("run_dir", metavar="RUN_DIR")
    evaluate.add_argument("--num-samples", type=int, default=1000,
                          help="importance samples K per image for the IWAE estimate (default: 1000)")
    evaluate.add_argument("--batch-size", type=int, default=100, help="test images per chunk (default: 100)")
    evaluate.add_argument("--limit", type=int, default=None, help="evaluate only the first N test images")
    evaluate.add_argument("--data-dir", default=None, help=data_help)
    evaluate.set_defaults(run=_evaluate)

    plot = sub.add_parser(
        "plot", help="draw every picture of a trained run into RUN_DIR/plots/",
        description="Examples, latent space before/after training, reconstructions, prior "
        "samples, latent traversals, the 2-D manifold (z = 2) and training curves, as PNGs.",
    )
    plot.add_argument("run_dir", metavar="RUN_DIR")
    plot.add_argument("--data-dir", default=None, help=data_help)
    plot.set_defaults(run=_plot)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from tfp_vae.errors import TfpVaeError

    try:
        return args.run(args)
    except TfpVaeError as err:
        print(f"tfp-vae {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
