"""The cost of timed checkpoints: seconds per commit, and per hour of training at the default
`checkpoint_minutes` = 10 (six commits an hour).

    python bench/checkpoint_cost.py [--repeats 5]

One commit is what `train` does at a block's end: the tf.train.Checkpoint (weights, Adam's
moments, the random generator, the running metrics), its SHA-256 manifest, fsyncs and renames,
latest.json, then model.weights.h5, history.csv/json and status.json. Prints one line per model:
parameters, bytes committed, median seconds per commit, seconds per hour at 10 minutes.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import tfp_vae
from tfp_vae import VAEConfig
from tfp_vae.training.checkpoint import CHECKPOINTS, Position, RunCheckpoint

MODELS = {
    "default MLP 256-64, z=2 (28x28)": VAEConfig(),
    "conv 4 layers 32-256 filters, dense 256, z=10 (64x64)": VAEConfig(
        encoder="conv",
        input_shape=(64, 64, 1),
        latent_dim=10,
        conv_filters=32,
        conv_layers=4,
        conv_kernel=4,
        conv_dense=256,
        dataset="dsprites",
        test_fraction=0.1,
    ),
}


def commit_seconds(config: VAEConfig, repeats: int) -> tuple[int, int, float]:
    model = tfp_vae.build_vae(config)
    model.compile(optimizer=tfp_vae.make_optimizer(config))
    model.optimizer.build(model.trainable_variables)
    history = {"loss": [1.0] * 50, "val_loss": [1.0] * 50}
    with tempfile.TemporaryDirectory() as out:
        checkpoint = RunCheckpoint(out, config, message=lambda line: None)
        checkpoint.steps_per_epoch = 10_000
        times = []
        for i in range(repeats + 1):  # the first one also creates the folders
            start = time.perf_counter()
            checkpoint.commit(model, Position(50, 64 * (i + 1), 64 * (i + 1)), history)
            times.append(time.perf_counter() - start)
        assert checkpoint.committed is not None
        newest = Path(out) / CHECKPOINTS / checkpoint.committed.folder
        size = sum(p.stat().st_size for p in newest.iterdir())
        size += (Path(out) / "model.weights.h5").stat().st_size
    return model.count_params(), size, statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    for name, config in MODELS.items():
        params, size, seconds = commit_seconds(config, args.repeats)
        print(
            f"{name}: {params:,} parameters, {size / 1e6:.2f} MB per commit, "
            f"{seconds * 1000:.0f} ms per commit, {6 * seconds:.2f} s per hour at checkpoint_minutes=10 "
            f"({6 * seconds / 3600:.4%})"
        )


if __name__ == "__main__":
    main()
