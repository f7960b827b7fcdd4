"""The `tfp-vae` command line.

    tfp-vae train --out runs/default                  # the classic Fashion-MNIST VAE, 5 epochs
    tfp-vae train --out runs/b4 --beta 4 --latent-dim 10 --encoder conv
    tfp-vae train --out runs/b4 --beta 4 --latent-dim 10 --encoder conv   # again: resumes, or no-op
    tfp-vae train --out runs/gpus --strategy mirrored                 # every GPU of this machine

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
        elif isinstance(default, bool):
            kwargs.update(type=_boolean, metavar="{true,false}")
        elif default is None:
            kwargs.update(type=str)
        else:
            kwargs.update(type=type(default))
        if field.name in choices:
            kwargs["choices"] = choices[field.name]
        parser.add_argument("--" + field.name.replace("_", "-"), dest=field.name, **kwargs)


def _boolean(text: str) -> bool:
    words = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
    if text.lower() not in words:
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return words[text.lower()]


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
    _, history = train(config, out_dir=args.out, data_dir=args.data_dir, verbose=args.verbose,
                       strategy=args.strategy)
    last = {k: round(v[-1], 3) for k, v in history.items()}
    print(f"trained {config.epochs} epoch(s) into {args.out}; last epoch (nats per example): {last}")
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
        description="Train a VAE; writes config.json, model.weights.h5, history.csv, "
        "history.json, status.json and a checkpoint per epoch into --out. Validates on the test "
        "split every epoch. Rerunning the same command resumes after the last completed epoch.",
    )
    train.add_argument("--out", required=True, help="run directory to write (created if missing)")
    train.add_argument("--data-dir", default=None,
                       help="folder with the four IDX .gz files (default: $TFP_VAE_DATA_DIR, "
                       "then ~/.keras/datasets/<data set>/, then download)")
    train.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2],
                       help="Keras progress output: 0 silent, 1 progress bar, 2 one line per epoch")
    from tfp_vae.distribute import STRATEGIES

    train.add_argument("--strategy", default="default", choices=sorted(STRATEGIES),
                       help="tf.distribute strategy: 'mirrored' uses every GPU of this machine, "
                       "'multiworker' several machines described by $TF_CONFIG (default: one device)")
    add_config_flags(train)
    train.set_defaults(run=_train)
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
