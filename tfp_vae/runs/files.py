"""Run directories: config + weights (+ history), written atomically, loaded without running code.

Layout of RUN_DIR:
    config.json         the `VAEConfig`, which rebuilds the architecture
    model.weights.h5    the weights (HDF5 arrays only: nothing is unpickled on load), stamped
                        with the config they belong to
    history.csv / history.json   per-epoch loss, nll, kl and val_ versions (written by `train`)
    latents_before.npz  posterior means of the untrained model on test images (for the
                        before/after latent scatter), with the images' indices
    metrics.json        `tfp-vae evaluate` results; plots/*.png from `tfp-vae plot`
    status.json, checkpoints/    training state and per-epoch checkpoints (`tfp_vae.training.checkpoint`)
    workers/<task>-<i>/ copies written by non-chief workers of a multi-worker run
"""

from __future__ import annotations

import contextlib
import csv
import errno
import json
import math
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np

from tfp_vae.config import VAEConfig
from tfp_vae.errors import ConfigError, RunDirError, RunWriteError
from tfp_vae.model.vae import VAE, build_vae

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
HISTORY_CSV = "history.csv"
HISTORY_JSON = "history.json"
LATENTS_BEFORE = "latents_before.npz"
METRICS_FILE = "metrics.json"
LATENT_EXAMPLES = 2000  # test images whose codes the before/after scatter shows
CONFIG_ATTR = "tfp_vae_config"  # HDF5 attribute of the weights file holding its config JSON
STEPS_ATTR = "tfp_vae_steps"  # HDF5 attribute: the optimizer steps the weights were trained for


# What each file of a run directory is, for the message of a write that fails.
WRITTEN = {
    CONFIG_FILE: "the run's config",
    WEIGHTS_FILE: "the model weights",
    HISTORY_CSV: "the training history",
    HISTORY_JSON: "the training history",
    LATENTS_BEFORE: "the untrained model's latent codes",
    METRICS_FILE: "the evaluation metrics",
    "status.json": "the run's status",
    "data.json": "the data record",
    "latest.json": "the checkpoint record",
}
# errno of the writes that fail for the machine's sake, not the program's: each one's words.
DISK_ERRNOS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large for the file system",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}
# The same failures as the words TensorFlow and HDF5 wrap them in (their errors carry no errno).
DISK_WORDS = {os.strerror(number).lower(): words for number, words in DISK_ERRNOS.items()}


def write_problem(err: BaseException, path) -> str | None:
    """Why a write to `path` failed, if it failed for lack of space or permission (else None).
    A write that failed some other way while the device holds under 1 MiB is also "no space":
    HDF5 does not always say why it could not flush."""
    number = getattr(err, "errno", None)
    if number in DISK_ERRNOS:
        return DISK_ERRNOS[number]
    text = str(err).lower()
    found = next((words for words_in, words in DISK_WORDS.items() if words_in in text), None)
    free = free_bytes(path)
    if found is None and free is not None and free < 1 << 20:
        found = "no space left on the device"
    return found


def free_bytes(path) -> int | None:
    """Bytes free for an ordinary user on the file system holding `path` (or its nearest parent)."""
    for folder in (Path(path), *Path(path).parents):
        if folder.exists():
            try:
                return shutil.disk_usage(folder).free
            except OSError:
                return None
    return None


def _size(n: int | None) -> str:
    if n is None:
        return "unknown"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


@contextlib.contextmanager
def writing(path, what: str | None = None) -> Iterator[None]:
    """Within the block, a write that fails for lack of space or permission raises one
    `RunWriteError` naming `path`, the free space and `what` was being written; other errors
    pass unchanged."""
    try:
        yield
    except RunWriteError:
        raise
    except Exception as err:
        problem = write_problem(err, path)
        if problem is None:
            raise
        free = free_bytes(path)
        what = what or WRITTEN.get(Path(path).name, Path(path).name)
        raise RunWriteError(
            f"could not write {what} to {path}: {problem} ({_size(free)} free there). Files "
            "written before are whole (each write goes to a temporary file, then is renamed); "
            "free some space (or fix the permissions) and rerun the same command.",
            path=Path(path),
            what=what,
            free_bytes=free,
        ) from err


def fsync_dir(folder) -> None:
    """Makes the renames inside `folder` durable (a crash after them keeps them)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path, write, what: str | None = None) -> Path:
    """Calls `write(tmp_path)` then renames tmp onto `path`: a crash never leaves half a file, and
    a full disk raises `RunWriteError` (`writing`) with the old file untouched.
    what: what the file is, for that error (default: by its name, `WRITTEN`)."""
    path = Path(path)
    tmp = None
    with writing(path, what):
        path.parent.mkdir(parents=True, exist_ok=True)
        # The temporary name ends with the full file name: Keras picks a weights format by suffix.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=f"-{path.name}")
        os.close(fd)
        try:
            write(tmp)
            with open(tmp, "rb+") as f:  # on disk before the rename makes it visible
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)  # mkstemp makes it private; run dirs are shared between machines
            os.replace(tmp, path)
            fsync_dir(path.parent)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)  # a full disk gets its space back at once
    return path


def atomic_write_text(path, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def save_config(config: VAEConfig, run_dir) -> Path:
    return atomic_write_text(Path(run_dir) / CONFIG_FILE, config.to_json())


def load_config(run_dir: str | os.PathLike) -> VAEConfig:
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise RunDirError(
            f"{path} is missing; {run_dir} is not a tfp_vae run directory (train into it first)."
        )
    try:
        return VAEConfig.from_json(path.read_text())
    except ConfigError as err:
        raise RunDirError(f"{path} is not a valid config: {err}") from err


def config_differences(saved: VAEConfig, wanted: VAEConfig) -> str:
    """'field: saved -> wanted' for every field that differs, comma-separated."""
    a, b = saved.to_dict(), wanted.to_dict()
    return ", ".join(f"{k}: {a[k]!r} -> {b[k]!r}" for k in sorted(a) if a[k] != b[k])


# The config fields a run may be trained further with: a larger value continues the run in its
# directory to the new total (the schedules and the protocol are functions of the epoch and the
# history, so the result is that of one run of the larger length). Every other field, and a
# smaller value of one of these, makes another run. Each maps to its value that means "no limit"
# (max_steps 0: epochs alone decide), which is longer than any other.
MAY_GROW = {"epochs": None, "max_steps": 0}


def _length(config: VAEConfig, name: str) -> float:
    value = getattr(config, name)
    return math.inf if value == MAY_GROW[name] else value


def grown_only(saved: VAEConfig, wanted: VAEConfig) -> bool:
    """True if `wanted` is `saved` with some `MAY_GROW` fields larger and nothing else changed
    (True for equal configs too): training `wanted` into saved's run directory continues it."""
    if any(_length(wanted, k) < _length(saved, k) for k in MAY_GROW):
        return False
    return saved.replace(**{k: getattr(wanted, k) for k in MAY_GROW}) == wanted


def same_run(a: VAEConfig, b: VAEConfig) -> bool:
    """True if the two configs describe one run, trained to possibly different lengths."""
    return grown_only(a, b) or grown_only(b, a)


@contextlib.contextmanager
def _no_lambda_warning():
    # tf_keras describes every layer while it walks them to save or load weights, and warns that
    # tfp.layers' configs hold lambdas; weights files store arrays only and no config is ever loaded.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The object being serialized includes a `lambda`")
        yield


def save_weights(model, path, steps: int | None = None) -> Path:
    """Writes the weights as HDF5 arrays, stamped with the config JSON they belong to and, for a
    model with an optimizer, the optimizer steps they were trained for (`weights_steps`).
    steps: the steps to stamp instead (a model without an optimizer, e.g. an export, keeps its
    source's stamp this way); None: the optimizer's, or no stamp without one."""
    optimizer = getattr(model, "optimizer", None)
    if steps is None and optimizer is not None:
        steps = int(optimizer.iterations.numpy())

    def write(tmp):
        with _no_lambda_warning():
            model.save_weights(tmp)
        with h5py.File(tmp, "a") as f:
            f.attrs[CONFIG_ATTR] = model.config.to_json()
            if steps is not None:
                f.attrs[STEPS_ATTR] = steps

    return atomic_write(path, write)


def weights_config(path) -> VAEConfig | None:
    """The config stamped into a weights file by `save_weights` (None if unstamped)."""
    with h5py.File(path, "r") as f:
        stamp = f.attrs.get(CONFIG_ATTR)
    return None if stamp is None else VAEConfig.from_json(stamp)


def weights_steps(run_dir) -> int | None:
    """The optimizer steps the weights in RUN_DIR/model.weights.h5 were trained for: the file's
    stamp (`save_weights`), else status.json's steps_done when the file holds the latest weights
    (no best epoch recorded), else None (unknown)."""
    run_dir = Path(run_dir)
    with h5py.File(run_dir / WEIGHTS_FILE, "r") as f:
        stamp = f.attrs.get(STEPS_ATTR)
    if stamp is not None:
        return int(stamp)
    try:  # status.json is `tfp_vae.training.checkpoint`'s: read here as plain JSON
        status = json.loads((run_dir / "status.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(status, dict) or "best_epoch" in status or not status.get("steps_done"):
        return None
    return int(status["steps_done"])


def save(model: VAE, run_dir: str | os.PathLike) -> Path:
    """Writes `model.config` and its weights into `run_dir`; returns the folder."""
    run_dir = Path(run_dir)
    save_config(model.config, run_dir)
    save_weights(model, run_dir / WEIGHTS_FILE)
    return run_dir


def load(run_dir: str | os.PathLike) -> VAE:
    """Rebuilds the model saved in `run_dir` (config + weights); identical distributions."""
    run_dir = Path(run_dir)
    config = load_config(run_dir)
    weights = run_dir / WEIGHTS_FILE
    if not weights.is_file():
        raise RunDirError(
            f"{weights} is missing; the run in {run_dir} never saved its weights (train it again)."
        )
    try:
        stamped = weights_config(weights)
    except Exception as err:  # not HDF5 at all, or truncated: h5py refuses it
        raise RunDirError(
            f"{weights} is not a readable HDF5 weights file ({type(err).__name__}: {err}); it is "
            "truncated or corrupt. Retrain into a fresh run directory."
        ) from err
    if stamped is not None and not same_run(stamped, config):  # best weights of a run trained further
        raise RunDirError(
            f"{weights} was written for another config than {run_dir / CONFIG_FILE} "
            f"({config_differences(stamped, config)}); the two files do not belong together. "
            "Restore the matching config.json or retrain into a fresh run directory."
        )
    model = build_vae(config)
    try:
        with _no_lambda_warning():
            model.load_weights(str(weights))
    except Exception as err:  # weights of another architecture
        raise RunDirError(
            f"{weights} cannot be loaded into the model described by {run_dir / CONFIG_FILE} "
            f"({type(err).__name__}: {err}). The file is truncated or belongs to another config; "
            "retrain into a fresh run directory."
        ) from err
    return model


def save_history(history: dict, run_dir) -> Path:
    """history: {metric: [value per epoch]} -> history.json and history.csv (one row per epoch)."""
    clean = {k: [float(v) for v in vals] for k, vals in history.items()}
    keys = sorted(clean)
    rows = [",".join(["epoch", *keys])] + [
        ",".join([str(epoch), *(repr(clean[k][epoch]) for k in keys)])
        for epoch in range(len(clean[keys[0]]) if keys else 0)
    ]
    atomic_write_text(Path(run_dir) / HISTORY_CSV, "\n".join(rows) + "\n")
    return atomic_write_text(Path(run_dir) / HISTORY_JSON, json.dumps(clean, indent=2))


def load_history(run_dir: str | os.PathLike) -> dict[str, list[float]]:
    """{metric: [value per epoch]} from history.json, or from history.csv alone (what a shipped run
    in experiments/results/ keeps)."""
    path, table = Path(run_dir) / HISTORY_JSON, Path(run_dir) / HISTORY_CSV
    if path.is_file():
        return json.loads(path.read_text())
    if not table.is_file():
        raise RunDirError(f"{path} is missing; train into {run_dir} first.")
    with table.open(newline="") as f:
        rows = list(csv.DictReader(f))  # one row per epoch, as save_history writes it
    keys = [key for key in rows[0] if key != "epoch"] if rows else []
    return {key: [float(row[key]) for row in rows] for key in keys}


def save_latents(codes, index, run_dir) -> Path:
    """codes [n, d] (posterior means of the untrained model) of test images `index` [n]."""
    return atomic_write(Path(run_dir) / LATENTS_BEFORE, lambda tmp: np.savez(tmp, codes=codes, index=index))


def load_latents(run_dir) -> dict:
    """{"codes": [n, d], "index": [n]} as saved by `save_latents` (plain arrays, no pickle)."""
    path = Path(run_dir) / LATENTS_BEFORE
    if not path.is_file():
        raise RunDirError(f"{path} is missing; runs trained with this version of `train` record it.")
    with np.load(path, allow_pickle=False) as data:
        return {"codes": data["codes"], "index": data["index"]}
