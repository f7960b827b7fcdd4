"""Seconds per epoch of each likelihood family of experiments/families/ on a slice of Fashion-MNIST.

Every family is trained as its config says (gated MLP 300-300, z = 20, batch 100, its
dequantization or binarization; no validation), on the first `--train` training images for
`--epochs` epochs, each run in a fresh process; the families alternate over `--rounds` rounds
so they see the same load. Printed: the median seconds of the epochs after the first (which
traces and compiles), and that scaled to the configs' 50,000 training images (60,000 less
10,000 for validation), per family and round.

    TFP_VAE_DATA_DIR=../shared/fashion-mnist python bench/families.py            # ~5 min on 2 idle cores
    TFP_VAE_DATA_DIR=../shared/fashion-mnist python bench/families.py --rounds 1 --train 2000

With `--evaluate K` it times `tfp-vae evaluate`'s work instead: the IWAE with K importance samples
(`tfp_vae.evaluate`, bits per dimension included) of each family's (untrained: the cost does not
depend on the weights) model on the first `--test` test images, after one warm-up call on a
batch, scaled to the 10,000 test images:

    TFP_VAE_DATA_DIR=../shared/fashion-mnist python bench/families.py --evaluate 1000 --test 200 --rounds 1
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
FULL_TEST = 10_000


def one(family: str, train: int, epochs: int) -> dict:
    """Trains one family in this process (its config's model, optimizer and data, `fit` as
    `tfp_vae.train` calls it: blocks of STEPS_PER_EXECUTION steps); its epoch seconds."""
    from tfp_vae.cli import config_file  # TensorFlow only in the child processes
    from tfp_vae.model.vae import build_vae
    from tfp_vae.training.trainer import load_data_for, make_optimizer

    config = config_file(FAMILIES / f"{family}.json").replace(epochs=epochs, early_stopping_patience=0)
    (x, _), _ = load_data_for(config)
    x = x[:train]
    model = build_vae(config)
    model.compile(optimizer=make_optimizer(config))
    # A caller's callback would make `fit` run one step per call (tfp_vae.training.trainer): the
    # epochs are timed from outside instead, one `fit` call each.
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        history = model.fit(x, batch_size=config.batch_size, epochs=1, verbose=0)
        seconds.append(time.perf_counter() - start)
    return {"family": family, "seconds": seconds, "loss": history.history["loss"][-1], "images": len(x)}


def one_evaluation(family: str, test: int, num_samples: int) -> dict:
    """Times `evaluate` of one family's model on `test` test images with K = num_samples."""
    from tfp_vae.cli import config_file  # TensorFlow only in the child processes
    from tfp_vae.evaluation.elbo import evaluate
    from tfp_vae.model.vae import build_vae
    from tfp_vae.training.trainer import load_data_for

    config = config_file(FAMILIES / f"{family}.json")
    _, (x_test, _) = load_data_for(config)
    model = build_vae(config)
    evaluate(model, x_test[:100], num_samples=num_samples, seed=0)  # traces the graphs once
    start = time.perf_counter()
    metrics = evaluate(model, x_test[:test], num_samples=num_samples, seed=0)
    seconds = time.perf_counter() - start
    return {"family": family, "seconds": [0.0, seconds], "images": test, "bits": metrics["bits_per_dim"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, default=5000, help="training images of the slice (default 5000)")
    parser.add_argument(
        "--epochs", type=int, default=3, help="epochs per run, the first a warm-up (default 3)"
    )
    parser.add_argument("--rounds", type=int, default=2, help="runs of every family, alternating (default 2)")
    parser.add_argument(
        "--evaluate", type=int, default=0, help="time evaluate with this many importance samples K instead"
    )
    parser.add_argument(
        "--test", type=int, default=200, help="test images timed with --evaluate (default 200)"
    )
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # a child process
    args = parser.parse_args()
    if args.one:
        run = one_evaluation(args.one, args.test, args.evaluate) if args.evaluate else None
        print(json.dumps(run or one(args.one, args.train, args.epochs)))
        return
    full, what = (FULL_TEST, f"evaluate, K = {args.evaluate}") if args.evaluate else (FULL_TRAIN, "epoch")
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
                        "--evaluate",
                        str(args.evaluate),
                        "--test",
                        str(args.test),
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
            results[name].append(median * full / run["images"])
            print(
                f"round {round_}  {name:<22} {median:7.2f} s per {what} of {run['images']} images", flush=True
            )
    print(f"\nseconds per {what} of {full} images (median over rounds; each round's figure):")
    for name in names:
        rounds = ", ".join(f"{s:.1f}" for s in results[name])
        print(f"  {name:<22} {statistics.median(results[name]):7.1f}   ({rounds})")


if __name__ == "__main__":
    main()
