"""Timings of the six disentanglement metrics at disentanglement_lib's sizes on full dSprites.

    python bench/metrics.py                        # the reference model, untrained; ~6 min quiet
    python bench/metrics.py --only dci factor_vae  # the two groups with targets
    python bench/metrics.py --run-dir runs/b4      # a trained run's encoder (posterior means)
    python bench/metrics.py --quick                # a smoke test at small sizes (~1 min)

The model: a trained run, or else the reference β-VAE (experiments/dsprites_beta_vae.json: conv
32-32-64-64, 4x4 kernels, stride 2, ReLU; dense 256; z = 10; Locatello et al. 2019) at its initial
weights, encoded exactly as `tfp-vae evaluate` does (`observations.compiled_means`: the float32
encoder in one plain tf.function graph, 1,024 images per call; each distinct image once). The
encoder's cost does not depend on the weights; the trees of DCI depend on the codes a little (a
collapsed latent still sorts like any other), so quote a trained run's figure beside this one.
Untrained codes have sd well below the FactorVAE score's 0.05 pruning threshold, which would end
the score after its first 10,000 images, so the means are scaled to unit sd over 2,000 images
(in the last layer's weights): the score then runs its full course.

Prints, per group, the wall and CPU seconds (this process's threads together; CPU seconds are
less disturbed by other jobs), the cores used (CPU / wall), the CPU seconds divided by the
cores, the quickest a quiet machine can run it (DCI's trees and the encoder keep every core busy),
and whether the targets are met: DCI < 120 s, FactorVAE score (rendering + encoding) < 180 s. The
load average before and after each group says how busy the machine was.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from tfp_vae.evaluation import disentanglement as dis
from tfp_vae.evaluation.disentanglement import observations
from tfp_vae.evaluation.disentanglement.beta_vae import beta_vae_images
from tfp_vae.evaluation.disentanglement.factor_vae import factor_vae_images
from tfp_vae.evaluation.disentanglement.suite import CODE_GROUPS, IMAGE_GROUPS

TARGETS = {"dci": 120.0, "factor_vae": 180.0}  # wall seconds (issue 24)
REFERENCE = "experiments/dsprites_beta_vae.json"
QUICK = {"points": (1000, 500), "votes": (300, 150)}


def reference_model(seed: int = 0):
    """The reference model (REFERENCE) at its initial weights, its posterior means scaled to unit
    sd over 2,000 random images (the loc columns of its last layer divided by their sd; see the
    module doc)."""
    from pathlib import Path  # the model loads only once the benchmark runs

    from tfp_vae.config import VAEConfig
    from tfp_vae.model.vae import build_vae

    config = VAEConfig.from_json((Path(__file__).parent.parent / REFERENCE).read_text())
    model = build_vae(config.replace(seed=seed))
    sample = dis.factor_data("dsprites").images(np.random.default_rng(seed).integers(737_280, size=2000))
    sd = np.std(observations.compiled_means(model)(sample), axis=0) + 1e-12
    last = model.encoder.get_layer("posterior_params")  # [loc (latent_dim), scale_tril] parameters
    kernel, bias = last.get_weights()
    kernel[:, : len(sd)] /= sd
    bias[: len(sd)] /= sd
    last.set_weights([kernel, bias])
    return model


def load_avg() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--run-dir", default=None, help="a trained run (default: the reference model, untrained)"
    )
    parser.add_argument("--only", nargs="+", choices=dis.GROUPS, default=list(dis.GROUPS))
    parser.add_argument("--points", type=int, nargs=2, default=None, help="train test (default 10000 5000)")
    parser.add_argument("--votes", type=int, nargs=2, default=None, help="train eval (default 10000 5000)")
    parser.add_argument("--quick", action="store_true", help="small sizes: points 1000 500, votes 300 150")
    args = parser.parse_args()
    sizes = QUICK if args.quick else {"points": (dis.NUM_TRAIN, dis.NUM_TEST), "votes": (10_000, 5_000)}
    (num_train, num_test) = tuple(args.points or sizes["points"])
    votes = tuple(args.votes or sizes["votes"])
    print(
        f"load average before: {load_avg()}; {cores()} cores; points {num_train} / {num_test}, votes {votes}"
    )
    ds = dis.factor_data("dsprites")
    if args.run_dir:
        from tfp_vae.runs import files as runs  # TensorFlow: only when a run is given

        vae = runs.load(args.run_dir)
        model = f"run {args.run_dir}"
    else:
        vae = reference_model()
        model = f"{REFERENCE} at its initial weights"
    # A fresh representation per group: each group's figure is its cost alone (as after a
    # resume). In one evaluation the groups share the codes of the grid images (`CompiledMeans`).
    encode = dis.representation(vae)

    # Throughputs of the two stages of encoding, on 16,384 distinct images.
    sample = np.random.default_rng(0).choice(len(ds), size=16_384, replace=False)
    encode(ds.images(sample[:1024]))  # traces the graph
    start, start_cpu = time.perf_counter(), time.process_time()
    images = ds.images(sample)
    render, render_cpu = time.perf_counter() - start, time.process_time() - start_cpu
    start, start_cpu = time.perf_counter(), time.process_time()
    encode(images)
    spent, spent_cpu = time.perf_counter() - start, time.process_time() - start_cpu
    print(
        f"{model}: renders {len(sample) / render:,.0f} images/s "
        f"({1e6 * render_cpu / len(sample):.1f} CPU us an image); scales and encodes "
        f"{len(sample) / spent:,.0f} images/s ({1e6 * spent_cpu / len(sample):.0f} CPU us an image, "
        f"{spent_cpu / spent:.2f} cores)"
    )

    rng = np.random.default_rng(0)
    seconds: dict[str, float] = {}
    cpu: dict[str, float] = {}
    if any(g in CODE_GROUPS for g in args.only):
        start, start_cpu = time.perf_counter(), time.process_time()
        indices = rng.integers(len(ds), size=num_train + num_test)
        codes = observations.encode_indices(dis.representation(vae), ds, indices)
        factors = ds.factors(indices)
        seconds["points (encode)"] = time.perf_counter() - start
        cpu["points (encode)"] = time.process_time() - start_cpu
    for group in args.only:
        before = load_avg()
        start, start_cpu = time.perf_counter(), time.process_time()
        if group in CODE_GROUPS:
            scores = CODE_GROUPS[group](codes, factors, num_train, num_test, 0)
        else:
            scores = IMAGE_GROUPS[group](dis.representation(vae), ds, votes, 0, None)
        seconds[group] = time.perf_counter() - start
        cpu[group] = time.process_time() - start_cpu
        figures = ", ".join(f"{k} {v:.3f}" for k, v in scores.items())
        drawn = {"factor_vae": factor_vae_images(*votes), "beta_vae": beta_vae_images(*votes)}.get(group)
        images_note = f"; {drawn:,} images drawn" if drawn else ""
        print(
            f"{group:<16}{seconds[group]:>8.1f} s {cpu[group]:>8.1f} CPU s  {figures}{images_note}  "
            f"(load {before} -> {load_avg()})",
            flush=True,
        )
    print(f"\nload average after: {load_avg()}")
    n = cores()
    full = (num_train, num_test, *votes) == (dis.NUM_TRAIN, dis.NUM_TEST, 10_000, 5_000)
    if not full:
        print("(the targets are for the full sizes: points 10000 5000, votes 10000 5000)")
    print(f"{'group':<16}{'wall s':>8}{'CPU s':>9}{'cores':>7}{f'CPU/{n}':>8}  target (wall seconds)")
    for group, wall in seconds.items():
        limit = TARGETS.get(group) if full else None
        verdict = "" if limit is None else f"< {limit:.0f} s: {'met' if wall < limit else 'not met'}"
        if limit is not None and wall >= limit and cpu[group] / n < limit:
            verdict += f" here; CPU s / {n} cores = {cpu[group] / n:.0f} s: met on a quiet machine"
        elif limit is not None and wall >= limit:
            verdict += f"; CPU s / {n} cores = {cpu[group] / n:.0f} s: not met even on a quiet machine"
        used = cpu[group] / wall
        print(f"{group:<16}{wall:>8.1f}{cpu[group]:>9.1f}{used:>7.2f}{cpu[group] / n:>8.1f}  {verdict}")


if __name__ == "__main__":
    main()
