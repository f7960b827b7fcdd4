"""Speed benchmark: tfp_vae's default model (A) against the classic plain-tfp.layers model (B) and
the machine's own matmul peak (C), on real Fashion-MNIST, in one process so the ratios hold on a
noisy shared machine.

    TFP_VAE_DATA_DIR=../shared/fashion-mnist python bench/benchmark.py          # ~10 min on 2 cores

A  `tfp_vae.build_vae(VAEConfig())` + `compile(Adam(1e-3))` + `fit(x, batch_size=...)`: exactly how a
   user trains the default model (MLP 256-64, z = 2, Bernoulli, exact KL).
B  `reference_model()` below: the tutorial model written with plain tfp.layers (Sequential MLP
   encoder 256-64 ending in `MultivariateNormalTriL(2)` + `KLDivergenceAddLoss`, decoder 64-256
   ending in `IndependentBernoulli`, loss -log_prob, default compile, fit).
C  GFLOP/s of a large float32 matmul in TensorFlow (best of several timings: the machine's peak).

Seconds per epoch are medians of `--epochs` epochs over all 60,000 training images after one
warm-up epoch (which traces and compiles); A's and B's epochs alternate so both see the same load.
FLOPs count 2 per multiply-add of the Dense layers; a training step costs 3 forward passes.
Evaluation: `tfp_vae.evaluate(A, x_test, num_samples=K)` on the 10,000 test images (binarized once),
whose cost is one encoder pass per image plus K decoder passes. Peak resident memory is the
process's high-water mark (VmHWM), reset before each phase. Prints a table; writes
bench/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_probability as tfp  # noqa: E402
import tf_keras  # noqa: E402

import tfp_vae  # noqa: E402

tfd, tfpl = tfp.distributions, tfp.layers
layers = tf_keras.layers
HERE = Path(__file__).resolve().parent


# ---------------------------------------------------------------------------- B: the reference
def reference_model(latent_dim: int = 2, input_shape=(28, 28, 1)) -> tf_keras.Model:
    """The classic tfp.layers VAE, compiled with defaults (Adam 1e-3), loss -log p(x|z)."""
    prior = tfd.Independent(tfd.Normal(loc=tf.zeros(latent_dim), scale=1.0), reinterpreted_batch_ndims=1)
    encoder = tf_keras.Sequential(
        [
            layers.InputLayer(input_shape=input_shape),
            layers.Flatten(),
            layers.Dense(256, activation="relu"),
            layers.Dense(64, activation="relu"),
            layers.Dense(tfpl.MultivariateNormalTriL.params_size(latent_dim)),
            tfpl.MultivariateNormalTriL(latent_dim),
            tfpl.KLDivergenceAddLoss(prior, weight=1.0),
        ]
    )
    decoder = tf_keras.Sequential(
        [
            layers.InputLayer(input_shape=(latent_dim,)),
            layers.Dense(64, activation="relu"),
            layers.Dense(256, activation="relu"),
            layers.Dense(tfpl.IndependentBernoulli.params_size(input_shape)),
            tfpl.IndependentBernoulli(input_shape),
        ]
    )
    model = tf_keras.Model(encoder.inputs, decoder(encoder.outputs[0]))
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-3), loss=lambda x, p: -p.log_prob(x))
    return model


def toolkit_model(batch_size: int) -> tf_keras.Model:
    """A: the toolkit's default model, built and compiled as the README shows."""
    model = tfp_vae.build_vae(tfp_vae.VAEConfig(batch_size=batch_size))
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-3))
    return model


# ---------------------------------------------------------------------------- measurements
def matmul_gflops(n: int = 4096, repeats: int = 5, per_timing: int = 6) -> float:
    """C: the best GFLOP/s of an [n, n] @ [n, n] float32 matmul over `repeats` timings."""
    a, b = tf.random.normal([n, n], seed=1), tf.random.normal([n, n], seed=2)
    product = tf.function(lambda a, b: tf.reduce_sum(tf.matmul(a, b)))
    product(a, b).numpy()
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(per_timing):
            product(a, b).numpy()
        best = max(best, 2 * n**3 * per_timing / (time.perf_counter() - start) / 1e9)
    return best


def dense_macs(*models) -> int:
    """Multiply-adds of one forward pass of one example through the Dense layers of `models`."""
    total = 0
    for model in models:
        for layer in model.layers:
            if isinstance(layer, layers.Dense):
                total += int(np.prod(layer.kernel.shape))
    return total


def peak_memory_mb() -> float:
    """This process's peak resident memory, in MB (VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class EpochTimer(tf_keras.callbacks.Callback):
    """Records the wall-clock seconds of every epoch (fit's set-up and teardown excluded)."""

    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def train_epochs(models: dict, x, batch_size: int, epochs: int) -> dict:
    """{name: median seconds per epoch} after one warm-up epoch; epochs alternate between models."""
    timers = {name: EpochTimer() for name in models}
    fit_args = {name: (x,) if isinstance(model, tfp_vae.VAE) else (x, x) for name, model in models.items()}
    for epoch in range(epochs + 1):
        for name, model in models.items():
            if epoch == 1:
                timers[name].seconds.clear()  # drop the warm-up epoch
            model.fit(
                *fit_args[name],
                epochs=1,
                batch_size=batch_size,
                shuffle=True,
                verbose=0,
                callbacks=[timers[name]],
            )
            print(
                f"  batch {batch_size:4d}  {name}  epoch {epoch}: {timers[name].seconds[-1]:.2f} s",
                flush=True,
            )
    return {name: statistics.median(t.seconds) for name, t in timers.items()}


def evaluate_run(model, x, num_samples: int) -> dict:
    start = time.perf_counter()
    metrics = tfp_vae.evaluate(model, x, num_samples=num_samples)
    seconds = time.perf_counter() - start
    flops = 2 * (dense_macs(model.encoder) + num_samples * dense_macs(model.decoder)) * len(x)
    return {
        "images": len(x),
        "seconds": seconds,
        "gflops": flops / seconds / 1e9,
        "iwae": float(metrics["iwae"]),
        "elbo": float(metrics["elbo"]),
    }


# ---------------------------------------------------------------------------- memory probes
# Peak resident memory is a property of a whole process, so each figure comes from a fresh
# process doing only that job, as a user's would: import, load the data, build, run.
def probe(job: str, batch_size: int, num_samples: int, images: int) -> dict:
    """Runs in a child process: the job, then this process's peak resident memory."""
    (x, _), (x_test, _) = tfp_vae.load_fashion_mnist("bernoulli")
    model = toolkit_model(batch_size)
    result = {"job": job}
    if job == "train":  # one epoch on all 60,000 training images
        model.fit(x, epochs=1, batch_size=batch_size, verbose=0)
        result.update(images=len(x), batch_size=batch_size)
    else:  # evaluate: chunked, so its memory does not grow with the number of images
        result.update(evaluate_run(model, tfp_vae.binarize_images(x_test[:images], seed=1), num_samples))
        result["num_samples"] = num_samples
    result["peak_rss_mb"] = peak_memory_mb()
    return result


def run_probe(*args: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--probe", *args], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


# ---------------------------------------------------------------------------- the run
def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per model and batch size")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 256])
    parser.add_argument("--eval-samples", type=int, default=1000, help="K of the timed evaluate()")
    parser.add_argument("--eval-images", type=int, default=10_000, help="test images evaluated")
    parser.add_argument("--large-k", type=int, default=5000, help="K of the memory-bound evaluate()")
    parser.add_argument(
        "--large-k-images",
        type=int,
        default=1000,
        help="test images for --large-k (chunked: peak memory does not depend on it)",
    )
    parser.add_argument("--probe", choices=["train", "evaluate"], help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(HERE / "results.json"))
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message="Bernoulli likelihood on non-binary")
    if args.probe:
        print(json.dumps(probe(args.probe, args.batch_sizes[0], args.eval_samples, args.eval_images)))
        return {}

    (x, _), (x_test, _) = tfp_vae.load_fashion_mnist("bernoulli")
    x_test_binary = tfp_vae.binarize_images(x_test, seed=1)
    results = {
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "tensorflow": tf.__version__,
            "load_average_start": os.getloadavg(),
        },
        "train": {},
    }
    peak = matmul_gflops()
    print(f"C: matmul peak {peak:.1f} GFLOP/s", flush=True)

    for batch_size in args.batch_sizes:
        models = {"A": toolkit_model(batch_size), "B": reference_model()}
        seconds = train_epochs(models, x, batch_size, args.epochs)
        train_flops = 3 * 2 * dense_macs(models["A"].encoder, models["A"].decoder) * len(x)
        gflops = train_flops / seconds["A"] / 1e9
        results["train"][str(batch_size)] = {
            "A_seconds_per_epoch": seconds["A"],
            "B_seconds_per_epoch": seconds["B"],
            "A_over_B": seconds["A"] / seconds["B"],
            "A_gflops": gflops,
        }

    model = models["A"]  # trained for epochs + 1 epochs at the last batch size
    results["forward_macs_per_image"] = dense_macs(model.encoder, model.decoder)
    k = args.eval_samples
    results["evaluate"] = {str(k): evaluate_run(model, x_test_binary[: args.eval_images], k)}
    print(f"  evaluate K={k}: {results['evaluate'][str(k)]['seconds']:.1f} s", flush=True)

    results["memory"] = {
        "train": run_probe("train", "--batch-sizes", "32"),
        "evaluate_large_k": run_probe(
            "evaluate", "--eval-samples", str(args.large_k), "--eval-images", str(args.large_k_images)
        ),
    }
    # C again at the end; the higher of the two is the peak (so fractions are not flattered).
    results["C_gflops"] = max(peak, matmul_gflops())
    for row in list(results["train"].values()) + list(results["evaluate"].values()):
        row["fraction_of_C"] = row.get("A_gflops", row.get("gflops")) / results["C_gflops"]
    results["machine"]["load_average_end"] = os.getloadavg()
    Path(args.out).write_text(json.dumps(results, indent=2))
    print_table(results)
    return results


def print_table(results: dict) -> None:
    c = results["C_gflops"]
    machine = results["machine"]
    print(
        f"\nC  matmul peak: {c:.1f} GFLOP/s   (load average {machine['load_average_start'][0]:.2f}"
        f" -> {machine['load_average_end'][0]:.2f}, {machine['cpus']} CPUs)"
    )
    print(f"forward pass: {results['forward_macs_per_image'] / 1e6:.3f} M multiply-adds per image\n")
    print(f"{'training':<12}{'A s/epoch':>11}{'B s/epoch':>11}{'A/B':>7}{'A GFLOP/s':>11}{'of C':>7}")
    for batch_size, row in results["train"].items():
        print(
            f"{'batch ' + batch_size:<12}{row['A_seconds_per_epoch']:>11.2f}"
            f"{row['B_seconds_per_epoch']:>11.2f}{row['A_over_B']:>7.2f}{row['A_gflops']:>11.1f}{row['fraction_of_C']:>7.0%}"
        )
    memory = results["memory"]
    print(f"\n{'evaluate':<22}{'seconds':>9}{'GFLOP/s':>9}{'of C':>7}{'iwae':>10}")
    for k, row in results["evaluate"].items():
        label = f"K={k}, {row['images']} images"
        print(
            f"{label:<22}{row['seconds']:>9.1f}{row['gflops']:>9.1f}{row['fraction_of_C']:>7.0%}{row['iwae']:>10.2f}"
        )
    print("\npeak resident memory, each job alone in a fresh process (Python + TensorFlow included):")
    train = memory["train"]
    print(f"  training, {train['images']} images, batch {train['batch_size']}: {train['peak_rss_mb']:.0f} MB")
    for key in ("evaluate_large_k",):
        row = memory[key]
        print(
            f"  evaluate K={row['num_samples']}, {row['images']} images: {row['peak_rss_mb']:.0f} MB"
            f" ({row['seconds']:.0f} s)"
        )


if __name__ == "__main__":
    main()
