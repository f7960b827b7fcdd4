"""Resumable evaluation of a run directory: the test images in shards, each kept as it finishes.

Layout added to RUN_DIR:
    evaluation/K<k>/<key>/shard-00000.npz   per-image iwae, nll, kl, kl_per_dim, E_q z (and
                                            log_p_discrete, of the 8-bit or binary images) of the
                                            images [i * S, (i + 1) * S) (plain arrays, no pickle)
    metrics.json                            `evaluate`'s metrics over all images, with
                                            iwae_standard_error, images and num_samples, kept by
                                            the weights' optimizer steps (`record`)
    evaluation/status.json                  "paused" (SIGTERM / SIGINT: the shard under way was
                                            finished and kept; the command that resumes) or
                                            "complete" once a paused evaluation finished

A write that fails for lack of space raises `RunWriteError` naming the shard; the shards kept
before it stay whole.

<key> names the SHA-256 of model.weights.h5 and of the test images, the batch size, the seed and
the shard format (`SHARD_FORMAT`):
shards of other weights or other images are never combined, and starting an evaluation under a new
key deletes the shards of older ones, saying so (a run trained further after an evaluation has
new weights, so a new key). Draws are stateless (seed = config.seed), so the shards
together give exactly the figures of one `evaluate(model, x, seed=config.seed)` call on all images
with the same batch size, however often the evaluation was stopped and rerun.

>>> import tempfile, numpy as np, tfp_vae
>>> run_dir = tfp_vae.save(tfp_vae.build_vae(input_shape=(8, 8, 1), hidden_units=(16,)), tempfile.mkdtemp())
>>> x_test = (np.random.default_rng(0).random([30, 8, 8, 1]) < 0.5).astype("float32")
>>> metrics, path, shards = evaluate_run(tfp_vae.load(run_dir), run_dir, x_test, num_samples=10,
...                                      batch_size=10, verbose=0, shard_images=20)
>>> path.name, sorted(p.name for p in shards.iterdir()), metrics["images"]
('metrics.json', ['shard-00000.npz', 'shard-00001.npz'], 30)
>>> metrics["iwae"] == tfp_vae.evaluate(tfp_vae.load(run_dir), x_test, 10, 10, seed=0)["iwae"]
True
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import tf_keras

from tfp_vae.errors import RunPaused
from tfp_vae.evaluation.elbo import per_example, summarize
from tfp_vae.evaluation.record import update_record
from tfp_vae.runs import files as runs
from tfp_vae.runs.interrupts import stop_requests

if TYPE_CHECKING:
    from tfp_vae.model.vae import VAE

EVALUATION_DIR = "evaluation"
STATUS_FILE = "status.json"  # RUN_DIR/evaluation/status.json: "paused" after a signal, else "complete"
SHARD_IMAGES = 500  # test images per shard (rounded down to a multiple of the batch size)
# Part of every shard folder's key, raised when shards gain a part: "v2" added log_p_discrete
# (bits_per_dim on the 8-bit scale), so shards written before are recomputed, not combined.
SHARD_FORMAT = "v2"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def weights_digest(run_dir) -> str:
    """The first 16 hex digits of the SHA-256 of RUN_DIR/model.weights.h5."""
    return _sha256((Path(run_dir) / runs.WEIGHTS_FILE).read_bytes())


def discard_stale(folder: Path, what: str, verbose: int = 1) -> None:
    """Deletes the siblings of `folder` (the caches of other weights or settings: never to be
    combined with its own), saying so in one line each when verbose."""
    for stale in sorted(folder.parent.glob("*")):
        if stale != folder and stale.is_dir():
            if verbose:
                print(
                    f"discarding the {what} in {stale} (computed from other weights or settings "
                    f"than the current {folder.name})"
                )
            shutil.rmtree(stale, ignore_errors=True)


def shard_folder(run_dir, x, num_samples: int, batch_size: int, seed: int) -> Path:
    """RUN_DIR/evaluation/K<num_samples>/<weights hash>-<images hash>-b<batch_size>-s<seed>-v2."""
    run_dir = Path(run_dir)
    weights = weights_digest(run_dir)
    images = _sha256(np.ascontiguousarray(x, np.float32).tobytes() + repr(np.shape(x)).encode())
    key = f"{weights}-{images}-b{batch_size}-s{seed}-{SHARD_FORMAT}"
    return run_dir / EVALUATION_DIR / f"K{num_samples}" / key


def evaluate_run(
    model: VAE,
    run_dir: str | os.PathLike,
    x: np.ndarray,
    num_samples: int = 1000,
    batch_size: int = 100,
    verbose: int = 1,
    shard_images: int = SHARD_IMAGES,
) -> tuple[dict[str, Any], Path, Path]:
    """Evaluates `model` (the one saved in `run_dir`) on images x [N, H, W, C] in resumable shards
    and writes RUN_DIR/metrics.json.

    Shards already in the shard folder are reused, the others computed and kept atomically one by
    one; verbose=1 shows a progress bar with an ETA over the images still to do.
    Returns (metrics as `evaluate` gives them plus num_samples and test_images, metrics.json path,
    shard folder).
    """
    seed = model.config.seed
    folder = shard_folder(run_dir, x, num_samples, batch_size, seed)
    discard_stale(folder, "evaluation shards", verbose)  # other weights or images: never combined
    size = batch_size * max(1, shard_images // batch_size)  # shards start at batch boundaries
    starts = range(0, len(x), size)
    paths = [folder / f"shard-{i:05d}.npz" for i in range(len(starts))]
    todo = [(start, path) for start, path in zip(starts, paths) if not path.is_file()]
    remaining = sum(len(x[start : start + size]) for start, _ in todo)
    if verbose and len(todo) < len(paths):
        print(f"resuming: {len(paths) - len(todo)} of {len(paths)} shard(s) done in {folder}")
    bar = tf_keras.utils.Progbar(remaining, verbose=verbose, unit_name="image")
    done = 0

    def advance(images):
        nonlocal done
        done += images
        bar.update(done)

    with stop_requests("the current shard") as stop:
        for start, path in todo:
            if stop.received is not None:  # each finished shard is kept: rerunning resumes
                _pause(run_dir, folder, stop.name, paths, num_samples, batch_size)
            shard = per_example(
                model,
                x[start : start + size],
                num_samples,
                batch_size,
                seed,
                first_index=start,
                progress=advance,
            )
            end = min(start + size, len(x)) - 1
            what = f"evaluation shard {paths.index(path) + 1} of {len(paths)} (images {start}-{end})"
            runs.atomic_write(path, lambda tmp, shard=shard: _save_npz(tmp, shard), what=what)
    parts = [_load_npz(path) for path in paths]
    metrics = summarize(model.config, {k: np.concatenate([p[k] for p in parts]) for k in parts[0]})
    record = {k: np.asarray(v).tolist() for k, v in metrics.items()}
    record.update(num_samples=num_samples, test_images=len(x), seed=seed)
    update_record(run_dir, record, runs.weights_steps(run_dir), weights_digest(run_dir))
    path = Path(run_dir) / runs.METRICS_FILE
    if (Path(run_dir) / EVALUATION_DIR / STATUS_FILE).is_file():  # a pause before: now finished
        status = {"state": "complete", "shards_done": len(paths), "shards": len(paths)}
        runs.atomic_write_text(Path(run_dir) / EVALUATION_DIR / STATUS_FILE, json.dumps(status, indent=2))
    return metrics, path, folder


def _pause(run_dir, folder: Path, signal_name: str, paths: list, num_samples: int, batch_size: int):
    """Writes RUN_DIR/evaluation/status.json as paused (the training status.json is left alone)
    and raises `RunPaused`."""
    done = sum(path.is_file() for path in paths)
    reason = f"evaluation stopped by {signal_name} after {done} of {len(paths)} shard(s), kept in {folder}"
    resume = f"tfp-vae evaluate {run_dir} --num-samples {num_samples} --batch-size {batch_size}"
    status = {
        "state": "paused",
        "reason": reason,
        "resume": resume,
        "shards_done": done,
        "shards": len(paths),
    }
    runs.atomic_write_text(Path(run_dir) / EVALUATION_DIR / STATUS_FILE, json.dumps(status, indent=2))
    raise RunPaused(reason, resume, signal_name)


def _save_npz(tmp, parts: dict):
    with open(tmp, "wb") as f:  # a file object: np.savez would append ".npz" to a path
        np.savez(f, **parts)


def _load_npz(path) -> dict:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}
