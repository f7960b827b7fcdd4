"""Timings of the six disentanglement metrics at disentanglement_lib's sizes on full dSprites.

    python bench/metrics.py                        # a random reference-size conv encoder, ~20 min
    python bench/metrics.py --run-dir runs/b4      # a trained run's encoder (posterior means)
    python bench/metrics.py --only dci factor_vae  # some groups only

The model: a trained run, or else a randomly initialised encoder of the reference architecture
(Locatello et al. 2019: conv 32-32-64-64, 4x4 kernels, stride 2, ReLU; dense 256; 2 x 10 outputs,
the first 10 the means) in one tf.function graph; the metrics' cost does not depend on the weights
(only on the sizes: 10,000 / 5,000 points, 10,000 / 5,000 votes of 64 images, 113 classes).
Prints the wall and CPU seconds of each group (CPU: this process's threads together; measured at
load 2.4, DCI's two threads used 1.16 cores, so the GIL-held parts of scikit-learn's boosting
loop limit them), the encoder's and the renderer's throughput, the load average before and after, and the
two targets: DCI < 120 s, FactorVAE score (rendering + encoding) < 180 s.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from tfp_vae.evaluation import disentanglement as dis
from tfp_vae.evaluation.disentanglement import observations
from tfp_vae.evaluation.disentanglement.suite import CODE_GROUPS, IMAGE_GROUPS

TARGETS = {"dci": 120.0, "factor_vae": 180.0}


def reference_encoder(latent_dim: int = 10, seed: int = 0):
    """uint8 images [n, 64, 64, 1] -> float32 [n, latent_dim]: the reference encoder's means."""
    import tensorflow as tf  # TensorFlow loads once the benchmark runs
    import tf_keras

    tf_keras.utils.set_random_seed(seed)
    conv = dict(kernel_size=4, strides=2, padding="same", activation="relu")
    net = tf_keras.Sequential(
        [tf_keras.layers.InputLayer(input_shape=(64, 64, 1))]
        + [tf_keras.layers.Conv2D(f, **conv) for f in (32, 32, 64, 64)]
        + [tf_keras.layers.Flatten(), tf_keras.layers.Dense(256, activation="relu")]
        + [tf_keras.layers.Dense(2 * latent_dim)]
    )

    @tf.function(input_signature=[tf.TensorSpec([None, 64, 64, 1], tf.float32)])
    def means(x):
        return net(x, training=False)[:, :latent_dim]

    def encode(images):
        x = np.asarray(images, np.float32) / 255.0
        step = observations.MODEL_BATCH
        return np.concatenate([means(x[i : i + step]).numpy() for i in range(0, len(x), step)]) / scale

    # Random weights give codes of sd well below the FactorVAE score's 0.05 pruning threshold, which
    # would end the score after its first 10,000 images: unit sd makes it run its full course.
    scale = 1.0
    sample = dis.factor_data("dsprites").images(np.random.default_rng(seed).integers(737_280, size=2000))
    scale = np.std(encode(sample), axis=0) + 1e-12
    return encode


def load_avg() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run-dir", default=None, help="a trained run (default: a random reference encoder)")
    parser.add_argument("--only", nargs="+", choices=dis.GROUPS, default=list(dis.GROUPS))
    parser.add_argument("--points", type=int, nargs=2, default=[dis.NUM_TRAIN, dis.NUM_TEST])
    parser.add_argument("--votes", type=int, nargs=2, default=[dis.FACTOR_VAE_TRAIN, dis.FACTOR_VAE_EVAL])
    args = parser.parse_args()
    print(f"load average before: {load_avg()}; {os.cpu_count()} cores")
    ds = dis.factor_data("dsprites")
    if args.run_dir:
        from tfp_vae.runs import files as runs  # TensorFlow: only when a run is given

        encode = dis.representation(runs.load(args.run_dir))
        model = f"run {args.run_dir}"
    else:
        encode = reference_encoder()
        model = "random reference encoder (conv 32-32-64-64, 4x4, dense 256, z = 10)"
    rng = np.random.default_rng(0)
    sample = rng.integers(len(ds), size=16_384)
    encode(ds.images(sample[:1024]))  # traces the graph
    start = time.perf_counter()
    images = ds.images(sample)
    render = len(sample) / (time.perf_counter() - start)
    start = time.perf_counter()
    encode(images)
    throughput = len(sample) / (time.perf_counter() - start)
    print(f"{model}: renders {render:,.0f} images/s, encodes {throughput:,.0f} images/s")

    seconds: dict[str, float] = {}
    cpu: dict[str, float] = {}  # this process's CPU seconds (all threads): less load-dependent
    (num_train, num_test), votes = args.points, tuple(args.votes)
    if any(g in CODE_GROUPS for g in args.only):
        start, start_cpu = time.perf_counter(), time.process_time()
        indices = rng.integers(len(ds), size=num_train + num_test)
        codes, factors = observations.encode_indices(encode, ds, indices), ds.factors(indices)
        seconds["points (encode)"] = time.perf_counter() - start
        cpu["points (encode)"] = time.process_time() - start_cpu
    for group in args.only:
        start, start_cpu = time.perf_counter(), time.process_time()
        if group in CODE_GROUPS:
            scores = CODE_GROUPS[group](codes, factors, num_train, num_test, 0)
        else:
            scores = IMAGE_GROUPS[group](encode, ds, votes, 0, None)
        seconds[group] = time.perf_counter() - start
        cpu[group] = time.process_time() - start_cpu
        figures = ", ".join(f"{k} {v:.3f}" for k, v in scores.items())
        print(
            f"{group:<16}{seconds[group]:>8.1f} s {cpu[group]:>8.1f} CPU s  {figures}  (load {load_avg()})",
            flush=True,
        )
    print(f"\nload average after: {load_avg()}")
    print(f"{'group':<16}{'seconds':>8}{'CPU s':>9}  target (wall seconds)")
    for group, spent in seconds.items():
        limit = TARGETS.get(group)
        verdict = "" if limit is None else f"< {limit:.0f} s: {'met' if spent < limit else 'MISSED'}"
        print(f"{group:<16}{spent:>8.1f}{cpu[group]:>9.1f}  {verdict}")


if __name__ == "__main__":
    main()
