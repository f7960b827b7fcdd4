"""Seconds per epoch of each likelihood family of experiments/families/ on a slice of Fashion-MNIST.

Every family is trained exactly as its config says (gated MLP 300-300, z = 20, batch 100), on the
first `--train` training images for `--epochs` epochs (early stopping off), each run in a fresh
process; the families alternate over `--rounds` rounds so they see the same load. Printed: the
median seconds of the epochs after the first (which traces and compiles), and that scaled to the
configs' 50,000 training images (60,000 less 10,000 for validation), per family and round.

    TFP_VAE_DATA_DIR=../shared/fashion-mnist python bench/families.py            # ~5 min on 2 idle cores
    TFP_VAE_DATA_DIR=../shared/fashion-mnist python bench/families.py --rounds 1 --train 2000
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

FAMILIES = Path(__file__).resolve().parents[1] / "experiments" / "families"
FULL_TRAIN = 50_000


def one(family: str, train: int, epochs: int) -> dict:
    """Trains one family in this process; its epoch seconds."""
    import tf_keras  # TensorFlow only in the child processes

    from tfp_vae.cli import config_file
    from tfp_vae.training.trainer import train as train_run

    config = config_file(FAMILIES / f"{family}.json").replace(
        epochs=epochs,
        train_examples=train,
        validation_examples=min(1000, train // 4),
        early_stopping_patience=0,
    )
    seconds: list[float] = []

    class Clock(tf_keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds.append(time.perf_counter() - self.start)

    _, history = train_run(config, verbose=0, callbacks=[Clock()])
    return {
        "family": family,
        "seconds": seconds,
        "loss": history["loss"][-1],
        "images": train - config.validation_examples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, default=5000, help="training images of the slice (default 5000)")
    parser.add_argument(
        "--epochs", type=int, default=3, help="epochs per run, the first a warm-up (default 3)"
    )
    parser.add_argument("--rounds", type=int, default=2, help="runs of every family, alternating (default 2)")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # a child process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.train, args.epochs)))
        return
    names = sorted(p.stem for p in FAMILIES.glob("*.json"))
    results: dict[str, list[float]] = {n: [] for n in names}
    for round_ in range(args.rounds):
        for name in names:
            out = (
                subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--one",
                        name,
                        "--train",
                        str(args.train),
                        "--epochs",
                        str(args.epochs),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                .stdout.strip()
                .splitlines()[-1]
            )
            run = json.loads(out)
            median = statistics.median(run["seconds"][1:])
            results[name].append(median * FULL_TRAIN / run["images"])
            print(
                f"round {round_}  {name:<22} {median:7.2f} s per epoch of {run['images']} images", flush=True
            )
    print(f"\nseconds per epoch of {FULL_TRAIN} images (median over rounds; each round's figure):")
    for name in names:
        rounds = ", ".join(f"{s:.1f}" for s in results[name])
        print(f"  {name:<22} {statistics.median(results[name]):7.1f}   ({rounds})")


if __name__ == "__main__":
    main()
