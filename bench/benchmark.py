"""Speed benchmark: tfp_vae's default model (A) against the classic plain-tfp.layers model (B),
tfp_vae's density model against the same model written as a plain XLA-compiled TF step (D), and the
machine's own matmul peak (C), on real Fashion-MNIST, in one process so the ratios hold on a noisy
shared machine; checks the speed targets below.

    TFP_VAE_DATA_DIR=../shared/fashion-mnist python bench/benchmark.py          # ~8 min on 2 idle cores
    TFP_VAE_DATA_DIR=../shared/fashion-mnist python bench/benchmark.py --quick  # smoke test, ~4 min
    TFP_VAE_DATA_DIR=../shared/fashion-mnist python bench/benchmark.py --peers  # + targets 7-12
    TFP_VAE_DATA_DIR=../shared/fashion-mnist python bench/benchmark.py --peers-only [--quick]
    (the peers need `pip install -e ".[bench]"`: torch 2.13.0, CPU build)

A  `tfp_vae.build_vae(VAEConfig())` + `compile(Adam(1e-3))` + `fit(x, batch_size=...)`: exactly how a
   user trains the default model (MLP 256-64, z = 2, Bernoulli, exact KL).
B  `reference_model()` below: the tutorial model written with plain tfp.layers (Sequential MLP
   encoder 256-64 ending in `MultivariateNormalTriL(2)` + `KLDivergenceAddLoss`, decoder 64-256
   ending in `IndependentBernoulli`, loss -log_prob, default compile, fit).
C  GFLOP/s of a large float32 matmul in TensorFlow (best of several timings: the machine's peak).
A density  `build_vae(VAEConfig.from_json(experiments/fashion_mnist_density.json))` +
   `compile(Adam(5e-4))` + `fit(x[:50000], batch_size=100, shuffle=True)`: how a user trains the
   published density setting (gated MLP 300-300, z = 40, full-covariance posterior, exact KL,
   Bernoulli, dynamic binarization). Its config warms the KL up (loss = nll + beta KL, beta < 1 in
   the first 100 epochs), so its negative ELBO nll + KL is what is compared with D's loss.
D  `HandWrittenVAE` below: the same model, data and optimizer as a plain TF program: tf_keras Dense
   layers (no Model), a `tf.function(jit_compile=True)` step (fresh binarization, GradientTape,
   loss mean_B[-log p(x|z) + closed-form KL to N(0, I)], Adam.apply_gradients) called from a Python
   loop over a tf.data pipeline (shuffled every epoch, batch 100).

Seconds per epoch are medians of `--epochs` epochs after one warm-up epoch (which traces and
compiles); the epochs of the models compared (A and B; A density and D) alternate so they see the
same load. A model's compile seconds = its warm-up epoch's seconds - its median epoch's. FLOPs count
2 per multiply-add of the Dense layers (both halves of a gated layer included); a training step
costs 3 forward passes. Evaluation: `tfp_vae.evaluate(A, x_test, num_samples=K)` on the 10,000 test
images (binarized once), whose cost is one encoder pass per image plus K decoder passes; its chunks
are timed, and the first one's extra time over the median chunk is the first call's tracing cost.
Peak resident memory is the high-water mark (VmHWM) of a fresh process doing only that job.

Targets (a table at the end, and results.json["targets"]: name, value, comparison, limit, met):
  1. batch 32: A s/epoch <= 0.35 x B's.
  2. batch 256: A GFLOP/s >= 40% of C.
  3. A density s/epoch <= 0.8 x D's.
  4. evaluate K = 1000 on the 10,000 test images: GFLOP/s >= 30% of C.
  5. evaluate K = 5000: peak resident memory <= 1536 MB, Python and TensorFlow included.
  6. compile seconds < 10 for every trained model (A and B at each batch size, A density, D).
  7-12 (`--peers`, each configuration a fresh process of bench/peers.py, rounds alternating their
     order; medians over rounds of each round's median epoch): conv reference model, toolkit fit
     <= 0.8 x PyTorch's fastest float32 step and <= 1.0 x the fastest hand-written TF float32
     step; density MLP toolkit <= 0.7 x compiled PyTorch; toolkit mixed_bfloat16 <= 0.85 x its
     float32 step; VampPrior (K = 500) step <= 3 x the standard prior's; compile seconds < 10 for
     every toolkit model (conv, conv bf16, MLP, standard, VampPrior).
`--peers-only` runs only 7-12 (the conv and peer comparison, ~15 min on 2 quiet cores).
`--quick` shrinks everything (1 timed epoch, 3,000 training images, a few hundred test images) to
smoke-test the script; only the default run measures the targets as stated. Prints tables; writes
bench/results.json.
"""

from __future__ import annotations

import argparse
import json
import operator
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_probability as tfp  # noqa: E402
import tf_keras  # noqa: E402

import tfp_vae  # noqa: E402
from tfp_vae.evaluation.elbo import per_example, summarize  # noqa: E402

tfd, tfpl = tfp.distributions, tfp.layers
layers = tf_keras.layers
HERE = Path(__file__).resolve().parent
DENSITY_CONFIG = HERE.parent / "experiments" / "fashion_mnist_density.json"
DENSITY_IMAGES = 50_000  # the published density setting trains on the first 50,000 images
# --quick: defaults for a smoke test of a few minutes (options given explicitly still win).
QUICK = {
    "epochs": 1,
    "train_images": 3000,
    "eval_images": 200,
    "large_k_images": 100,
    "rounds": 1,
    "conv_steps": 4,
    "mlp_steps": 10,
    "peer_epochs": 1,
}


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


def density_model() -> tfp_vae.VAE:
    """A density: the published density config, built and compiled as a user would."""
    config = tfp_vae.VAEConfig.from_json(DENSITY_CONFIG.read_text())
    model = tfp_vae.build_vae(config)
    model.compile(optimizer=tf_keras.optimizers.Adam(config.learning_rate))
    return model


# ---------------------------------------------------------------------------- D: hand-written
class HandWrittenVAE(tf.Module):
    """D: the density model as a plain TF program, one XLA-compiled training step per batch.

    Encoder: x [B, 784] -> gated 300 -> gated 300 -> Dense(d + d (d + 1) / 2), the parameters of
    q(z|x) = N(mu, L L^T) in tfp's `MultivariateNormalTriL` layout (mu, then `fill_triangular` of
    the rest with its diagonal replaced by softplus(.) + 1e-5). Gated: h = (W x + b) sigmoid(V x + c).
    Decoder: z [B, d] -> gated 300 -> gated 300 -> Dense(784) Bernoulli logits.
    """

    def __init__(self, latent_dim=40, hidden=(300, 300), pixels=784, learning_rate=5e-4, seed=0):
        tf_keras.utils.set_random_seed(seed)
        self.latent_dim = latent_dim
        self.encoder_hidden = [(layers.Dense(u), layers.Dense(u)) for u in hidden]
        self.encoder_params = layers.Dense(latent_dim + latent_dim * (latent_dim + 1) // 2)
        self.decoder_hidden = [(layers.Dense(u), layers.Dense(u)) for u in reversed(hidden)]
        self.decoder_logits = layers.Dense(pixels)
        self.rng = tf.random.Generator.from_seed(seed)  # binarization and posterior draws
        self.negative_elbo(tf.zeros([1, pixels]))  # creates the weights
        self.weights = [v for m in self.submodules if isinstance(m, layers.Dense) for v in m.weights]
        self.optimizer = tf_keras.optimizers.Adam(learning_rate)
        self.optimizer.build(self.weights)  # slots made here, not inside the compiled step
        self.step = tf.function(self.update, jit_compile=True)

    @staticmethod
    def gated(pairs, h):
        for linear, gate in pairs:
            h = linear(h) * tf.sigmoid(gate(h))
        return h

    def negative_elbo(self, x):
        """Binary images x [B, 784] -> (-log p(x|z) [B], KL(q(z|x) || N(0, I)) [B]) in nats, for one
        reparameterized draw z ~ q(z|x)."""
        d = self.latent_dim
        params = self.encoder_params(self.gated(self.encoder_hidden, x))
        mu, tril = params[:, :d], tfp.math.fill_triangular(params[:, d:])
        diagonal = tf.nn.softplus(tf.linalg.diag_part(tril)) + 1e-5
        scale = tril - tf.linalg.diag(tf.linalg.diag_part(tril)) + tf.linalg.diag(diagonal)  # L
        z = mu + tf.linalg.matvec(scale, self.rng.normal(tf.shape(mu)))
        logits = self.decoder_logits(self.gated(self.decoder_hidden, z))
        nll = tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=x, logits=logits), axis=-1)
        # KL(N(mu, L L^T) || N(0, I)) = 0.5 (tr(L L^T) + |mu|^2 - d - log det(L L^T))
        kl = 0.5 * (
            tf.reduce_sum(tf.square(scale), axis=[-2, -1])
            + tf.reduce_sum(tf.square(mu), axis=-1)
            - d
            - 2.0 * tf.reduce_sum(tf.math.log(diagonal), axis=-1)
        )
        return nll, kl

    def update(self, x):
        """One step on grey images x [B, 784]: a fresh binary draw, gradients, Adam; returns the
        batch means of -log p(x|z) and KL."""
        x = tf.cast(self.rng.uniform(tf.shape(x)) < x, x.dtype)
        with tf.GradientTape() as tape:
            nll, kl = self.negative_elbo(x)
            loss = tf.reduce_mean(nll + kl)
        self.optimizer.apply_gradients(zip(tape.gradient(loss, self.weights), self.weights))
        return tf.reduce_mean(nll), tf.reduce_mean(kl)


def hand_written_epoch(model: HandWrittenVAE, x: np.ndarray, batch_size: int) -> Callable:
    """A function running one epoch of D over x [N, 28, 28, 1]: returns (seconds, logs)."""
    dataset = (
        tf.data.Dataset.from_tensor_slices(x.reshape(len(x), -1))
        .shuffle(len(x), seed=0, reshuffle_each_iteration=True)
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )

    def epoch():
        start = time.perf_counter()
        terms = [model.step(batch) for batch in dataset]
        # The epoch's means of the batch means; reading them waits for the last step.
        nll, kl = tf.reduce_mean(tf.convert_to_tensor(terms), axis=0).numpy()
        seconds = time.perf_counter() - start
        return seconds, {"loss": float(nll + kl), "nll": float(nll), "kl": float(kl)}

    return epoch


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


def dense_macs(*modules) -> int:
    """Multiply-adds of one forward pass of one example through every Dense layer inside `modules`
    (nested ones included, e.g. both halves of a gated layer)."""
    return sum(
        int(np.prod(m.kernel.shape))
        for module in modules
        for m in module.submodules
        if isinstance(m, layers.Dense)
    )


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


def fit_epoch(model: tf_keras.Model, x: np.ndarray, batch_size: int) -> Callable:
    """A function running one `fit` epoch of `model` on x: returns (seconds, that epoch's logs)."""
    timer = EpochTimer()
    data = (x,) if isinstance(model, tfp_vae.VAE) else (x, x)

    def epoch():
        history = model.fit(
            *data, epochs=1, batch_size=batch_size, shuffle=True, verbose=0, callbacks=[timer]
        )
        return timer.seconds[-1], {name: float(values[-1]) for name, values in history.history.items()}

    return epoch


def train_epochs(epochs: dict[str, Callable], timed: int, label: str) -> dict:
    """Runs one warm-up epoch, then `timed` epochs, of every model; the models' epochs alternate.

    epochs: {name: function running one epoch, returning (seconds, logs)}. Returns {name:
    {"seconds": median seconds per timed epoch, "compile_seconds": warm-up epoch seconds - that
    median (the warm-up epoch traces and compiles), "final": the last epoch's logs}}.
    """
    seconds = {name: [] for name in epochs}
    final = {}
    for epoch in range(timed + 1):
        for name, run_epoch in epochs.items():
            elapsed, final[name] = run_epoch()
            seconds[name].append(elapsed)
            print(f"  {label}  {name}  epoch {epoch}: {elapsed:.2f} s", flush=True)
    result = {}
    for name, (warm_up, *rest) in seconds.items():
        median = statistics.median(rest)
        result[name] = {"seconds": median, "compile_seconds": warm_up - median, "final": final[name]}
    return result


def evaluate_run(model, x, num_samples: int) -> dict:
    """`tfp_vae.evaluate(model, x, num_samples)` timed, chunk by chunk (evaluate is exactly
    summarize(per_example(...)); the progress hook stamps each finished chunk)."""
    stamps = [time.perf_counter()]
    parts = per_example(model, x, num_samples, progress=lambda _: stamps.append(time.perf_counter()))
    metrics = summarize(model.config, parts)
    seconds = time.perf_counter() - stamps[0]
    chunks = np.diff(stamps)
    flops = 2 * (dense_macs(model.encoder) + num_samples * dense_macs(model.decoder)) * len(x)
    return {
        "images": len(x),
        "seconds": seconds,
        "gflops": flops / seconds / 1e9,
        # The first chunk traces the sampling graph: its time over a typical chunk's.
        "first_call_extra_seconds": float(chunks[0] - np.median(chunks[1:])) if len(chunks) > 1 else None,
        "iwae": float(metrics["iwae"]),
        "elbo": float(metrics["elbo"]),
    }


# ---------------------------------------------------------------------------- memory probes
# Peak resident memory is a property of a whole process, so each figure comes from a fresh
# process doing only that job, as a user's would: import, load the data, build, run.
def probe(job: str, batch_size: int, num_samples: int, images: int, train_images: int) -> dict:
    """Runs in a child process: the job, then this process's peak resident memory."""
    model = toolkit_model(batch_size)
    result = {"job": job}
    if job == "train":  # one epoch on the training images (all 60,000 by default)
        (x, _), _ = tfp_vae.load_fashion_mnist("bernoulli")
        x = x[:train_images]
        model.fit(x, epochs=1, batch_size=batch_size, verbose=0)
        result.update(images=len(x), batch_size=batch_size)
    else:  # evaluate the test images only (as `tfp-vae evaluate` does); chunked, so its memory
        # does not grow with the number of images or draws
        _, (x_test, _) = tfp_vae.load_uint8("fashion_mnist")
        x_test = tfp_vae.binarize_images(tfp_vae.scale_images(x_test[:images]), seed=1)
        result.update(evaluate_run(model, x_test, num_samples))
        result["num_samples"] = num_samples
    result["peak_rss_mb"] = peak_memory_mb()
    return result


def run_probe(*args: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--probe", *args], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


# ---------------------------------------------------------------------------- the run
def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per model and batch size")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 256])
    parser.add_argument(
        "--train-images",
        type=int,
        default=60_000,
        help=f"training images for A and B (A density and D: the first {DENSITY_IMAGES:,} of them)",
    )
    parser.add_argument("--eval-samples", type=int, default=1000, help="K of the timed evaluate()")
    parser.add_argument("--eval-images", type=int, default=10_000, help="test images evaluated")
    parser.add_argument("--large-k", type=int, default=5000, help="K of the memory-bound evaluate()")
    parser.add_argument(
        "--large-k-images",
        type=int,
        default=1000,
        help="test images for --large-k (chunked: peak memory does not depend on it)",
    )
    parser.add_argument("--skip-density", action="store_true", help="leave out A density and D")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: " + ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in QUICK.items()),
    )
    parser.add_argument("--peers", action="store_true", help="also run targets 7-12 (bench/peers.py)")
    parser.add_argument("--peers-only", action="store_true", help="run only targets 7-12")
    parser.add_argument("--rounds", type=int, default=2, help="--peers: rounds over the configurations")
    parser.add_argument("--conv-steps", type=int, default=64, help="--peers: steps per conv epoch")
    parser.add_argument("--mlp-steps", type=int, default=500, help="--peers: steps per MLP epoch (<= 500)")
    parser.add_argument("--peer-epochs", type=int, default=2, help="--peers: timed epochs per job")
    parser.add_argument("--probe", choices=["train", "evaluate"], help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(HERE / "results.json"))
    args = parser.parse_args(argv)
    if args.quick:  # parse again with the quick defaults, so explicit options still win
        parser.set_defaults(**QUICK)
        args = parser.parse_args(argv)
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", message="Bernoulli likelihood on non-binary")
    if args.probe:
        result = probe(
            args.probe, args.batch_sizes[0], args.eval_samples, args.eval_images, args.train_images
        )
        print(json.dumps(result))
        return {}
    if args.peers_only:
        results = {"machine": {"load_average_start": os.getloadavg()}, "settings": vars(args)}
        results["peers"] = peer_rounds(args)
        results["targets"] = peer_targets(results["peers"])
        results["machine"]["load_average_end"] = os.getloadavg()
        Path(args.out).write_text(json.dumps(results, indent=2))
        print_peers(results)
        return results

    load_start = os.getloadavg()
    (x, _), (x_test, _) = tfp_vae.load_fashion_mnist("bernoulli")
    x = x[: args.train_images]
    x_test_binary = tfp_vae.binarize_images(x_test, seed=1)
    settings = {k: v for k, v in vars(args).items() if k not in ("probe", "out")}
    results = {
        "machine": {
            "cpus": os.cpu_count(),
            "cpus_usable": len(os.sched_getaffinity(0)),
            "processor": platform.processor() or platform.machine(),
            "tensorflow": tf.__version__,
            "load_average_start": load_start,
        },
        "settings": settings,
        "train": {},
    }
    matmul_timings = {"repeats": 2, "per_timing": 2} if args.quick else {}
    peak = matmul_gflops(**matmul_timings)
    print(f"C: matmul peak {peak:.1f} GFLOP/s", flush=True)

    for batch_size in args.batch_sizes:
        models = {"A": toolkit_model(batch_size), "B": reference_model()}
        timed = train_epochs(
            {name: fit_epoch(model, x, batch_size) for name, model in models.items()},
            args.epochs,
            f"batch {batch_size:4d}",
        )
        train_flops = 3 * 2 * dense_macs(models["A"].encoder, models["A"].decoder) * len(x)
        results["train"][str(batch_size)] = {
            "A_seconds_per_epoch": timed["A"]["seconds"],
            "B_seconds_per_epoch": timed["B"]["seconds"],
            "A_over_B": timed["A"]["seconds"] / timed["B"]["seconds"],
            "A_gflops": train_flops / timed["A"]["seconds"] / 1e9,
            "A_compile_seconds": timed["A"]["compile_seconds"],
            "B_compile_seconds": timed["B"]["compile_seconds"],
        }

    model = models["A"]  # trained for epochs + 1 epochs at the last batch size
    results["forward_macs_per_image"] = dense_macs(model.encoder, model.decoder)

    if not args.skip_density:
        results["density"] = density_run(x[:DENSITY_IMAGES], args.epochs)

    k = args.eval_samples
    results["evaluate"] = {str(k): evaluate_run(model, x_test_binary[: args.eval_images], k)}
    print(f"  evaluate K={k}: {results['evaluate'][str(k)]['seconds']:.1f} s", flush=True)

    batch = str(args.batch_sizes[0])
    results["memory"] = {
        "train": run_probe("train", "--batch-sizes", batch, "--train-images", str(args.train_images)),
        "evaluate_large_k": run_probe(
            "evaluate", "--eval-samples", str(args.large_k), "--eval-images", str(args.large_k_images)
        ),
    }
    # C again at the end; the higher of the two is the peak (so fractions are not flattered).
    results["C_gflops"] = max(peak, matmul_gflops(**matmul_timings))
    rows = [*results["train"].values(), *results["evaluate"].values()]
    if "density" in results:
        rows += [results["density"]["A"], results["density"]["D"]]
    for row in rows:
        row["fraction_of_C"] = row.get("A_gflops", row.get("gflops")) / results["C_gflops"]
    results["targets"] = check_targets(results)
    if args.peers:
        results["peers"] = peer_rounds(args)
        results["targets"] += peer_targets(results["peers"])
    results["machine"]["load_average_end"] = os.getloadavg()
    Path(args.out).write_text(json.dumps(results, indent=2))
    print_table(results)
    return results


def density_run(x: np.ndarray, epochs: int, batch_size: int = 100) -> dict:
    """A density against D on images x, epochs alternating: seconds, GFLOP/s, compile seconds and
    the last epoch's loss terms of each."""
    toolkit, hand_written = density_model(), HandWrittenVAE()
    macs = dense_macs(toolkit.encoder, toolkit.decoder)
    if dense_macs(hand_written) != macs:  # the same network, or the comparison means nothing
        raise AssertionError(f"D has {dense_macs(hand_written)} multiply-adds per image, A density {macs}")
    timed = train_epochs(
        {
            "A density": fit_epoch(toolkit, x, batch_size),
            "D": hand_written_epoch(hand_written, x, batch_size),
        },
        epochs,
        f"batch {batch_size:4d}",
    )
    result = {"images": len(x), "batch_size": batch_size, "forward_macs_per_image": macs}
    for key, name in (("A", "A density"), ("D", "D")):
        final = timed[name]["final"]
        result[key] = {
            "seconds_per_epoch": timed[name]["seconds"],
            "gflops": 3 * 2 * macs * len(x) / timed[name]["seconds"] / 1e9,
            "compile_seconds": timed[name]["compile_seconds"],
            "final_loss": final["loss"],  # A's is nll + beta KL, beta still warming up
            "final_negative_elbo": final["nll"] + final["kl"],
            "final_nll": final["nll"],
            "final_kl": final["kl"],
        }
    result["A_over_D"] = result["A"]["seconds_per_epoch"] / result["D"]["seconds_per_epoch"]
    return result


# ---------------------------------------------------------------------------- targets
COMPARISONS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt}


def target(name: str, value: float | None, comparison: str, limit: float) -> dict:
    """One target: met is None when the run did not measure it (e.g. a batch size left out)."""
    met = None if value is None else bool(COMPARISONS[comparison](value, limit))
    return {"name": name, "value": value, "comparison": comparison, "limit": limit, "met": met}


def check_targets(results: dict) -> list[dict]:
    train, density = results["train"], results.get("density")
    (k, evaluation), memory = next(iter(results["evaluate"].items())), results["memory"]["evaluate_large_k"]
    targets = [
        target("batch 32: A / B seconds per epoch", train.get("32", {}).get("A_over_B"), "<=", 0.35),
        target("batch 256: A GFLOP/s / C", train.get("256", {}).get("fraction_of_C"), ">=", 0.40),
        target("batch 100: A density / D seconds per epoch", density and density["A_over_D"], "<=", 0.8),
        target(
            f"evaluate K={k}, {evaluation['images']} images: GFLOP/s / C",
            evaluation["fraction_of_C"],
            ">=",
            0.30,
        ),
        target(f"evaluate K={memory['num_samples']}: peak RSS, MB", memory["peak_rss_mb"], "<=", 1536),
    ]
    compile_seconds = [
        (f"{name} batch {batch_size}", row[f"{name}_compile_seconds"])
        for batch_size, row in train.items()
        for name in ("A", "B")
    ]
    if density:
        compile_seconds += [
            ("A density", density["A"]["compile_seconds"]),
            ("D", density["D"]["compile_seconds"]),
        ]
    return targets + [target(f"compile seconds: {name}", s, "<", 10.0) for name, s in compile_seconds]


# ---------------------------------------------------------------------------- 7-12: peers
PEER_JOBS = {  # job: its kind of epoch (conv or MLP steps)
    "toolkit_conv": "conv",
    "toolkit_conv_bf16": "conv",
    "tf_conv_xla": "conv",
    "tf_conv_graph": "conv",
    "torch_conv_eager": "conv",
    "torch_conv_compile": "conv",
    "torch_conv_bf16": "conv",
    "toolkit_mlp": "mlp",
    "torch_mlp_eager": "mlp",
    "torch_mlp_compile": "mlp",
    "toolkit_standard": "mlp",
    "toolkit_vamp": "mlp",
}


def peer_rounds(args) -> dict:
    """Every job of `PEER_JOBS` in a fresh process, `args.rounds` rounds, each round in the reverse
    order of the one before (so no job always follows the same one); {job: {"ms_per_step": median
    over rounds, "compile_seconds": median, "rounds": each round's figures}}. A job that fails (e.g.
    torch not installed) is recorded with its error and left out of the targets."""
    runs: dict[str, list] = {job: [] for job in PEER_JOBS}
    order = list(PEER_JOBS)
    for round_ in range(args.rounds):
        for job in order if round_ % 2 == 0 else order[::-1]:
            steps = args.conv_steps if PEER_JOBS[job] == "conv" else args.mlp_steps
            command = [sys.executable, str(HERE / "peers.py"), "--job", job, "--steps", str(steps)]
            done = subprocess.run(
                [*command, "--epochs", str(args.peer_epochs)], capture_output=True, text=True
            )
            if done.returncode:
                runs[job].append({"error": done.stderr.strip().splitlines()[-1:]})
            else:
                runs[job].append(json.loads(done.stdout.strip().splitlines()[-1]))
            last = runs[job][-1]
            print(f"  peers round {round_}  {job}: {last.get('ms_per_step', last.get('error'))}", flush=True)
    result = {}
    for job, rounds in runs.items():
        good = [r for r in rounds if "ms_per_step" in r]
        result[job] = {
            "ms_per_step": statistics.median(r["ms_per_step"] for r in good) if good else None,
            "compile_seconds": statistics.median(r["compile_seconds"] for r in good) if good else None,
            "rounds": rounds,
        }
    return result


def peer_targets(peers: dict) -> list[dict]:
    ms = {job: row["ms_per_step"] for job, row in peers.items()}

    def ratio(job, *others):
        values = [ms[o] for o in others if ms.get(o) is not None]
        return ms[job] / min(values) if ms.get(job) is not None and values else None

    torch_f32, tf_f32 = ("torch_conv_eager", "torch_conv_compile"), ("tf_conv_xla", "tf_conv_graph")
    targets = [
        target("conv: toolkit / fastest PyTorch float32", ratio("toolkit_conv", *torch_f32), "<=", 0.8),
        target("conv: toolkit / fastest hand-written TF", ratio("toolkit_conv", *tf_f32), "<=", 1.0),
        target(
            "conv: toolkit bf16 / toolkit float32", ratio("toolkit_conv_bf16", "toolkit_conv"), "<=", 0.85
        ),
        target(
            "density MLP: toolkit / compiled PyTorch", ratio("toolkit_mlp", "torch_mlp_compile"), "<=", 0.7
        ),
        target("VampPrior K=500 / standard step", ratio("toolkit_vamp", "toolkit_standard"), "<=", 3.0),
    ]
    return targets + [
        target(f"compile seconds: {job}", row["compile_seconds"], "<", 10.0)
        for job, row in peers.items()
        if job.startswith("toolkit_")
    ]


def print_peers(results: dict) -> None:
    print(f"\n{'job':<22}{'ms/step':>10}{'compile s':>11}   per round (ms/step)")
    for job, row in results["peers"].items():
        rounds = " ".join(
            f"{r['ms_per_step']:.1f}" if "ms_per_step" in r else "failed" for r in row["rounds"]
        )
        ms, compile_s = row["ms_per_step"], row["compile_seconds"]
        print(
            f"{job:<22}{'-' if ms is None else f'{ms:.1f}':>10}"
            f"{'-' if compile_s is None else f'{compile_s:.1f}':>11}   {rounds}"
        )
    print_targets(results)


def print_targets(results: dict) -> None:
    print(f"\n{'targets':<46}{'measured':>10}{'limit':>12}  met")
    for t in results["targets"]:
        value = "-" if t["value"] is None else f"{t['value']:.2f}"
        met = {True: "met", False: "not met", None: "not measured"}[t["met"]]
        print(f"{t['name']:<46}{value:>10}{t['comparison'] + ' ' + format(t['limit'], 'g'):>12}  {met}")
    machine = results["machine"]
    start, end = (
        " / ".join(f"{v:.2f}" for v in machine[k]) for k in ("load_average_start", "load_average_end")
    )
    print(f"\nload average (1 / 5 / 15 min): start {start}, end {end}")
    if results["settings"]["quick"]:
        print("--quick: smoke-test sizes, not the targets' measurement conditions")


# ---------------------------------------------------------------------------- printout
def print_table(results: dict) -> None:
    c = results["C_gflops"]
    machine = results["machine"]
    print(f"\nC  matmul peak: {c:.1f} GFLOP/s   ({machine['cpus_usable']} of {machine['cpus']} CPUs usable)")
    print(f"forward pass: {results['forward_macs_per_image'] / 1e6:.3f} M multiply-adds per image\n")
    print(
        f"{'training':<12}{'A s/epoch':>11}{'B s/epoch':>11}{'A/B':>7}{'A GFLOP/s':>11}{'of C':>7}"
        f"{'A compile s':>13}{'B compile s':>13}"
    )
    for batch_size, row in results["train"].items():
        print(
            f"{'batch ' + batch_size:<12}{row['A_seconds_per_epoch']:>11.2f}"
            f"{row['B_seconds_per_epoch']:>11.2f}{row['A_over_B']:>7.2f}{row['A_gflops']:>11.1f}"
            f"{row['fraction_of_C']:>7.0%}{row['A_compile_seconds']:>13.1f}{row['B_compile_seconds']:>13.1f}"
        )
    density = results.get("density")
    if density:
        print(
            f"\ndensity, batch {density['batch_size']}, {density['images']} images,"
            f" {density['forward_macs_per_image'] / 1e6:.3f} M multiply-adds per image forward"
            f"   (A/D = {density['A_over_D']:.2f})"
        )
        print(
            f"{'':<12}{'s/epoch':>9}{'GFLOP/s':>9}{'of C':>7}{'compile s':>11}"
            f"{'loss':>9}{'nll+kl':>9}{'kl':>8}"
        )
        for key, label in (("A", "A density"), ("D", "D")):
            row = density[key]
            print(
                f"{label:<12}{row['seconds_per_epoch']:>9.2f}{row['gflops']:>9.1f}{row['fraction_of_C']:>7.0%}"
                f"{row['compile_seconds']:>11.1f}{row['final_loss']:>9.1f}{row['final_negative_elbo']:>9.1f}"
                f"{row['final_kl']:>8.1f}"
            )
        print("  (last epoch's means, nats; A's loss weighs the KL by its warm-up beta < 1)")
    memory = results["memory"]
    print(f"\n{'evaluate':<22}{'seconds':>9}{'GFLOP/s':>9}{'of C':>7}{'iwae':>10}{'1st call +s':>13}")
    for k, row in results["evaluate"].items():
        label = f"K={k}, {row['images']} images"
        extra = row["first_call_extra_seconds"]
        print(
            f"{label:<22}{row['seconds']:>9.1f}{row['gflops']:>9.1f}{row['fraction_of_C']:>7.0%}"
            f"{row['iwae']:>10.2f}{'' if extra is None else f'{extra:.1f}':>13}"
        )
    print("\npeak resident memory, each job alone in a fresh process (Python + TensorFlow included):")
    train = memory["train"]
    print(f"  training, {train['images']} images, batch {train['batch_size']}: {train['peak_rss_mb']:.0f} MB")
    row = memory["evaluate_large_k"]
    print(
        f"  evaluate K={row['num_samples']}, {row['images']} images: {row['peak_rss_mb']:.0f} MB"
        f" ({row['seconds']:.0f} s)"
    )

    if "peers" in results:
        print_peers(results)  # its table ends with every target's
    else:
        print_targets(results)


if __name__ == "__main__":
    main()
