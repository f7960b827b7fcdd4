"""Run directories: config + weights (+ history), written atomically, loaded without running code.

Layout of RUN_DIR:
    config.json         the `VAEConfig`, which rebuilds the architecture
    model.weights.h5    the weights (HDF5 arrays only: nothing is unpickled on load)
    history.csv / history.json   per-epoch loss, nll, kl and val_ versions (written by `train`)
    latents_before.npz  posterior means of the untrained model on test images (for the
                        before/after latent scatter), with the images' indices
    metrics.json        `tfp-vae evaluate` results; plots/*.png from `tfp-vae plot`
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from tfp_vae.config import VAEConfig
from tfp_vae.errors import ConfigError, RunDirError

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
HISTORY_CSV = "history.csv"
HISTORY_JSON = "history.json"
LATENTS_BEFORE = "latents_before.npz"
METRICS_FILE = "metrics.json"
LATENT_EXAMPLES = 2000  # test images whose codes the before/after scatter shows


def atomic_write(path, write) -> Path:
    """Calls `write(tmp_path)` then renames tmp onto `path`: a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The temporary name ends with the full file name: Keras picks a weights format by suffix.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=f"-{path.name}")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def atomic_write_text(path, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def save_config(config: VAEConfig, run_dir) -> Path:
    return atomic_write_text(Path(run_dir) / CONFIG_FILE, config.to_json())


def load_config(run_dir) -> VAEConfig:
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise RunDirError(f"{path} is missing; {run_dir} is not a tfp_vae run directory (train into it first).")
    try:
        return VAEConfig.from_json(path.read_text())
    except ConfigError as err:
        raise RunDirError(f"{path} is not a valid config: {err}") from err


def save(model, run_dir) -> Path:
    """Writes `model.config` and its weights into `run_dir`; returns the folder."""
    run_dir = Path(run_dir)
    save_config(model.config, run_dir)
    atomic_write(run_dir / WEIGHTS_FILE, lambda tmp: model.save_weights(tmp))
    return run_dir


def load(run_dir):
    """Rebuilds the model saved in `run_dir` (config + weights); identical distributions."""
    from tfp_vae.model import build_vae

    run_dir = Path(run_dir)
    config = load_config(run_dir)
    weights = run_dir / WEIGHTS_FILE
    if not weights.is_file():
        raise RunDirError(f"{weights} is missing; the run in {run_dir} never saved its weights (train it again).")
    model = build_vae(config)
    try:
        model.load_weights(str(weights))
    except Exception as err:  # truncated HDF5, or weights of another architecture
        raise RunDirError(
            f"{weights} cannot be loaded into the model described by {run_dir / CONFIG_FILE} "
            f"({type(err).__name__}: {err}). The file is truncated or belongs to another config; "
            "retrain into a fresh run directory."
        ) from err
    return model


def save_history(history: dict, run_dir) -> Path:
    """history: {metric: [value per epoch]} -> history.json."""
    clean = {k: [float(v) for v in vals] for k, vals in history.items()}
    return atomic_write_text(Path(run_dir) / HISTORY_JSON, json.dumps(clean, indent=2))


def load_history(run_dir) -> dict:
    path = Path(run_dir) / HISTORY_JSON
    if not path.is_file():
        raise RunDirError(f"{path} is missing; train into {run_dir} first.")
    return json.loads(path.read_text())


def save_latents(codes, index, run_dir) -> Path:
    """codes [n, d] (posterior means of the untrained model) of test images `index` [n]."""
    import numpy as np

    return atomic_write(Path(run_dir) / LATENTS_BEFORE,
                        lambda tmp: np.savez(tmp, codes=codes, index=index))


def load_latents(run_dir) -> dict:
    """{"codes": [n, d], "index": [n]} as saved by `save_latents` (plain arrays, no pickle)."""
    import numpy as np

    path = Path(run_dir) / LATENTS_BEFORE
    if not path.is_file():
        raise RunDirError(f"{path} is missing; runs trained with this version of `train` record it.")
    with np.load(path, allow_pickle=False) as data:
        return {"codes": data["codes"], "index": data["index"]}
