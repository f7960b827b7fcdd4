"""Full disks, for real: each test mounts a tmpfs of a few MB (as root), fills it to leave just
so many 4 KiB pages free, and runs the real `tfp-vae` command in a subprocess. The write that
does not fit stops with one error naming the path, the free space and what was written; every
file committed before stays whole; after the space is freed the same command resumes.

tmpfs counts space in whole pages and directories cost none, so "F pages free" decides exactly
which write fails: history (1 page) < weights (W pages) < a checkpoint (about 3 W: the weights
and Adam's two moments). `train` rewrites the history first, then the weights, then, after an
epoch, commits a checkpoint.
"""

import json
import math
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from training.test_resume import _env, _status, _weights

import tfp_vae
from tfp_vae.training.checkpoint import CHECKPOINTS, damage

PAGE = 4096
WRITE_FAILED = 74
FLAGS = [
    "--train-examples",
    "240",
    "--validation-examples",
    "40",
    "--batch-size",
    "20",
    "--hidden-units",
    "64",
    "--epochs",
    "2",
    "--seed",
    "3",
    "--verbose",
    "0",
]


def _tfp_vae(*args, data_dir):
    return subprocess.run(
        [sys.executable, "-m", "tfp_vae.cli", *args, "--data-dir", str(data_dir)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _train(out, data_dir, *flags):
    return _tfp_vae("train", "--out", str(out), *FLAGS, *flags, data_dir=data_dir)


@pytest.fixture
def small_disk(tmp_path):
    """A fresh 8 MB tmpfs mounted at tmp_path/disk; skipped where mounting is not permitted."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (these tests run as root in CI)")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"mount -t tmpfs not permitted here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _pages(path) -> int:
    path = Path(path)
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(math.ceil(p.stat().st_size / PAGE) for p in files)


def _fill(mount, pages_free: int) -> Path:
    """Leaves exactly `pages_free` pages free on `mount`."""
    filler = mount / f"filler-{uuid.uuid4().hex}"
    free = os.statvfs(mount).f_bavail
    with open(filler, "wb") as f:
        f.write(b"\0" * (free - pages_free) * PAGE)
    assert os.statvfs(mount).f_bavail == pages_free
    return filler


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_dir):
    """(a run paused after epoch 1 of 2, the same run never stopped), on an ordinary disk."""
    root = tmp_path_factory.mktemp("disk")
    paused = _train(root / "paused", data_dir, "--max-minutes", "0")
    assert paused.returncode == 0 and _status(root / "paused")["state"] == "paused", paused.stderr[-2000:]
    whole = _train(root / "whole", data_dir)
    assert whole.returncode == 0, whole.stderr[-2000:]
    return root / "paused", root / "whole"


def _committed(run_dir) -> dict:
    """Everything a resume trusts: history, weights, status and the checkpoints."""
    return {
        "history": tfp_vae.load_history(run_dir),
        "weights": {name: array.tobytes() for name, array in _weights(run_dir).items()},
        "checkpoints": sorted(p.name for p in (Path(run_dir) / CHECKPOINTS).glob("epoch-*")),
    }


@pytest.mark.parametrize(
    "kind, what",
    [
        ("history", r"the training history to \S+/history.csv"),
        ("weights", r"the model weights to \S+/model.weights.h5"),
        ("checkpoint", r"the checkpoint after epoch 2 to \S+/checkpoints/\.tmp-epoch-0002-\d+"),
    ],
)
def test_a_full_disk_loses_nothing_committed_and_the_rerun_resumes(small_disk, runs, data_dir, kind, what):
    paused, whole = runs
    out = small_disk / "run"
    shutil.copytree(paused, out)
    before = _committed(out)
    weights = _pages(out / "model.weights.h5")
    checkpoint = _pages(out / CHECKPOINTS / "epoch-0001")
    assert checkpoint + 5 < weights  # HDF5 keeps more than the tensors' bytes
    # The run directory's lock record takes the first page; the resume rewrites the history (its
    # weights file holds the resumed state already); epoch 2 ends with a checkpoint (the oldest of
    # the three is deleted after it), then the history and the weights.
    free = {"history": 1, "checkpoint": 2, "weights": checkpoint + 4}[kind]
    filler = _fill(small_disk, free)

    failed = _train(out, data_dir)
    assert failed.returncode == WRITE_FAILED, failed.stderr[-3000:]
    line = failed.stderr.strip().splitlines()[-1]
    assert re.search(
        rf"error: could not write {what}: no space left on the device \([\d.]+ (bytes|kB|MB) free there\)",
        line,
    ), line
    assert "rerun" in line and "Traceback" not in failed.stderr
    # Nothing committed before is lost, and no temporary is left taking space. (When the weights
    # do not fit, epoch 2's checkpoint and history were committed just before: they stay too.)
    after = _committed(out)
    if kind == "weights":
        assert after["weights"] == before["weights"] and after["checkpoints"] == ["epoch-0001", "epoch-0002"]
        assert len(after["history"]["loss"]) == 2
    else:
        assert after == before
    assert all(damage(folder) is None for folder in (out / CHECKPOINTS).glob("epoch-*"))
    assert not [p for p in out.rglob(".tmp-*")]
    assert tfp_vae.load(out).config == tfp_vae.load_config(whole)

    filler.unlink()  # space freed: the same command resumes and finishes the run
    again = _train(out, data_dir)
    assert again.returncode == 0, again.stderr[-3000:]
    assert _status(out)["state"] == "complete"
    got, want = _weights(out), _weights(whole)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


def test_a_full_disk_during_evaluation_keeps_the_shards_before_it(small_disk, runs, data_dir, tmp_path):
    _, whole = runs
    plain = tmp_path / "plain"
    shutil.copytree(whole, plain)
    args = ["--num-samples", "5", "--batch-size", "100", "--limit", "1000"]
    reference = _tfp_vae("evaluate", str(plain), *args, data_dir=data_dir)
    assert reference.returncode == 0, reference.stderr[-2000:]
    shards = sorted((plain / "evaluation").rglob("shard-*.npz"))
    assert len(shards) == 2

    out = small_disk / "run"
    shutil.copytree(whole, out)
    filler = _fill(small_disk, 1 + _pages(shards[0]))  # the lock's record and the first shard
    failed = _tfp_vae("evaluate", str(out), *args, data_dir=data_dir)
    assert failed.returncode == WRITE_FAILED, failed.stderr[-3000:]
    assert "could not write evaluation shard 2 of 2 (images 500-999) to " in failed.stderr
    assert "no space left on the device" in failed.stderr
    kept = sorted((out / "evaluation").rglob("shard-*.npz"))
    assert [p.name for p in kept] == ["shard-00000.npz"] and not (out / "metrics.json").exists()
    assert kept[0].read_bytes() == shards[0].read_bytes()

    filler.unlink()
    again = _tfp_vae("evaluate", str(out), *args, data_dir=data_dir)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "resuming: 1 of 2 shard(s) done" in again.stdout
    assert json.loads((out / "metrics.json").read_text()) == json.loads((plain / "metrics.json").read_text())
