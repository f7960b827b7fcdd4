"""RUN_DIR/data.json: which data a run was trained on, so later commands refuse other data.

`train` writes the record of the data it loaded (`tfp_vae.data.sources.load_raw`: source, resolved
path, SHA-256 of the contents, image counts, shape, class names); `tfp-vae evaluate` / `plot` and a
resumed `train` load the data again and compare. Contents are hashed (file names, sizes and bytes
of every image of a folder; the bytes of an .npz/.npy file), so copying the data elsewhere keeps
its fingerprint and touching a file does not change it. Hashing costs one pass over bytes that
loading reads anyway.

Relative paths in `VAEConfig.dataset` are resolved against the current directory; when that finds
nothing, the absolute path recorded at training time is used, so a run can be evaluated from any
directory while its data stays where it was.
"""

from __future__ import annotations

import json
from pathlib import Path

from tfp_vae.data.sources import load_raw
from tfp_vae.errors import DataError, RunDirError
from tfp_vae.runs.files import atomic_write_text

DATA_FILE = "data.json"
COMPARED = ("source", "variant", "sha256", "train_images", "test_images", "shape", "class_names")


def read_record(run_dir) -> dict | None:
    """The data record of `run_dir`, or None for runs trained without one."""
    path = Path(run_dir) / DATA_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise RunDirError(f"{path} is not valid JSON ({err}); delete it to skip the data check.") from err


def write_record(run_dir, record: dict) -> Path:
    return atomic_write_text(Path(run_dir) / DATA_FILE, json.dumps(record, indent=2, sort_keys=True))


def dataset_location(dataset: str, record: dict | None) -> str:
    """Where to load `dataset` from: itself if it exists here, else the recorded absolute path."""
    if (
        record
        and record.get("path")
        and not Path(dataset).expanduser().exists()
        and Path(record["path"]).exists()
    ):
        return record["path"]
    return dataset


def check_record(run_dir, recorded: dict, now: dict) -> None:
    """Raises `DataError` naming every difference between the recorded and the current data."""
    changed = [
        f"{key}: {recorded.get(key)!r} -> {now.get(key)!r}"
        for key in COMPARED
        if recorded.get(key) != now.get(key)
    ]
    if changed:
        raise DataError(
            f"the data set {now.get('path') or now.get('dataset')!r} is not the data the run in "
            f"{run_dir} was trained on (recorded in {Path(run_dir) / DATA_FILE}): "
            f"{'; '.join(changed)}. Restore the original data, or train a new run on this data."
        )


def load_checked(config, data_dir=None, run_dir=None):
    """The raw data of `config` (`tfp_vae.data.sources.Loaded`); with `run_dir`, found through and
    checked against its data.json when there is one (`DataError` if the data changed)."""
    recorded = read_record(run_dir) if run_dir is not None else None
    loaded = load_raw(
        dataset_location(config.dataset, recorded),
        data_dir=data_dir,
        test_fraction=config.test_fraction,
        input_shape=config.input_shape,
        resize=config.resize,
        train_examples=config.train_examples,
    )
    if recorded is not None:
        check_record(run_dir, recorded, loaded.record)
    return loaded
