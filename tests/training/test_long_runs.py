"""Long runs: checkpoints within an epoch, SIGTERM / SIGINT, kill -9 mid-epoch, max_steps and
damaged checkpoints, each with the real `tfp-vae train` in a subprocess or on the real file system.

The subprocess runs train 1,280 real Fashion-MNIST images at batch 2: 640 steps an epoch, ten
blocks of 64 (fit's steps_per_execution), so a stop at a block's end is mid-epoch. With
--checkpoint-minutes 0.0001 every block commits a checkpoint.
"""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import tf_keras
from training.test_resume import _assert_intact, _command, _env, _status, _train_cli, _weights

import tfp_vae
from conftest import grey_images
from tfp_vae import RunDirError, VAEConfig
from tfp_vae.model.vae import STEPS_PER_EXECUTION
from tfp_vae.training.checkpoint import CHECKPOINTS, MANIFEST, RunCheckpoint, damage

REQUEUE = 75
FLAGS = [
    "--train-examples",
    "1480",
    "--validation-examples",
    "200",
    "--batch-size",
    "2",
    "--hidden-units",
    "16",
    "--epochs",
    "2",
    "--seed",
    "7",
    "--verbose",
    "0",
    "--checkpoint-minutes",
    "0.0001",
]
STEPS = 640


@pytest.fixture(scope="module")
def whole(tmp_path_factory, data_dir):
    out = tmp_path_factory.mktemp("long") / "whole"
    done = _train_cli(out, data_dir, *FLAGS)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def _start(out, data_dir, *flags):
    return subprocess.Popen(
        _command(out, data_dir, *FLAGS, *flags),
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(proc, out, ready, timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        try:
            status = _status(out)
        except ValueError:  # caught between the rename of two files: read again
            status = None
        if status and ready(status):
            return status
        time.sleep(0.01)
    raise AssertionError(f"not ready before the run ended: {proc.communicate()[1][-2000:]}")


def _same_weights(a, b):
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys() and len(wa) >= 8
    for name in wa:
        np.testing.assert_array_equal(wa[name], wb[name], err_msg=name)


def test_sigterm_mid_epoch_pauses_and_resumes_bit_for_bit(whole, tmp_path, data_dir):
    out = tmp_path / "run"
    proc = _start(out, data_dir)
    _wait_for(proc, out, lambda s: s.get("step_in_epoch", 0) >= 64)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == REQUEUE, stderr[-3000:]
    status = _status(out)
    assert status["state"] == "paused" and status["epochs_done"] == 0
    step = status["step_in_epoch"]
    # the end of a block (the one under way, or the one just done if the signal came as it committed)
    assert 64 <= step < STEPS and step % 64 == 0 and status["steps_done"] == step
    assert status["reason"].startswith(f"stopped by SIGTERM at step {step} of {STEPS} of epoch 1")
    assert f"resume with: tfp-vae train --config {out}/config.json --out {out}" in status["reason"]
    assert "paused: stopped by SIGTERM" in stderr
    latest = json.loads((out / CHECKPOINTS / "latest.json").read_text())
    assert (latest["epoch"], latest["step"]) == (0, step)
    _assert_intact(out)

    resumed = _train_cli(out, data_dir, *FLAGS, "--verbose", "1")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming at step {step} of {STEPS} of epoch 1" in resumed.stdout
    assert _status(out)["state"] == "complete"
    _same_weights(out, whole)
    assert tfp_vae.load_history(out) == tfp_vae.load_history(whole)


def test_kill_9_mid_epoch_loses_only_the_work_since_the_last_checkpoint(whole, tmp_path, data_dir):
    out = tmp_path / "run"
    proc = _start(out, data_dir)
    # inside epoch 2, a timed checkpoint or two past its start
    status = _wait_for(proc, out, lambda s: s["epochs_done"] == 1 and s.get("step_in_epoch", 0) >= 128)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    latest = json.loads((out / CHECKPOINTS / "latest.json").read_text())
    assert latest["epoch"] == 1 and latest["step"] >= status["step_in_epoch"]  # at most one block lost
    assert latest["step"] < STEPS
    _assert_intact(out)
    resumed = _train_cli(out, data_dir, *FLAGS, "--verbose", "1")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming at step {latest['step']} of {STEPS} of epoch 2" in resumed.stdout
    _same_weights(out, whole)


def test_a_second_ctrl_c_stops_at_once_and_the_last_checkpoint_is_whole(whole, tmp_path, data_dir):
    out = tmp_path / "run"
    proc = _start(out, data_dir)
    _wait_for(proc, out, lambda s: s.get("step_in_epoch", 0) >= 64)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    # Either the second came while the block ran (stopped at once, 130), or the first had already
    # paused the run (75); both leave a whole checkpoint that resumes bit for bit.
    assert proc.returncode in (130, REQUEUE), stderr[-3000:]
    if proc.returncode == 130:
        assert "stopped at once" in stderr
    _assert_intact(out)
    assert _train_cli(out, data_dir, *FLAGS).returncode == 0
    _same_weights(out, whole)


def test_max_steps_stops_mid_epoch_and_resumes_to_exactly_that_many(tmp_path, data_dir):
    flags = [*FLAGS[: FLAGS.index("--checkpoint-minutes")], "--checkpoint-minutes", "0", "--max-steps", "700"]
    straight = _train_cli(tmp_path / "straight", data_dir, *flags)
    assert straight.returncode == 0, straight.stderr[-3000:]
    status = _status(tmp_path / "straight")
    assert status["state"] == "complete" and status["steps_done"] == 700
    assert status["epochs_done"] == 1 and status["step_in_epoch"] == 60
    assert status["reason"] == "completed max_steps = 700 optimizer steps (1 whole epoch(s))"
    assert "Trained 700 of 700 steps into" in straight.stdout and "a larger --max-steps" in straight.stdout
    assert len(tfp_vae.load_history(tmp_path / "straight")["loss"]) == 1
    # Stopped by its time budget at the end of the first block (the budget is checked at every
    # block's end, not only at epoch ends), then resumed: the same 700 steps, bit for bit.
    out = tmp_path / "sliced"
    sliced = _train_cli(out, data_dir, *flags, "--max-minutes", "0")
    assert sliced.returncode == 0, sliced.stderr[-3000:]
    status = _status(out)
    assert status["state"] == "paused" and status["steps_done"] == STEPS_PER_EXECUTION
    assert status["step_in_epoch"] == STEPS_PER_EXECUTION and status["epochs_done"] == 0
    assert status["reason"].startswith(
        f"time budget of 0.0 minute(s) reached at step {STEPS_PER_EXECUTION} of {STEPS} of epoch 1 "
        f"({STEPS_PER_EXECUTION} steps done); resume with: tfp-vae train --config {out}/config.json"
    )
    again = _train_cli(out, data_dir, *flags)
    assert again.returncode == 0, again.stderr[-3000:]
    assert _status(out)["steps_done"] == 700
    _same_weights(out, tmp_path / "straight")
    model = tfp_vae.load(out)
    ckpt = RunCheckpoint(out, model.config)
    model.compile(optimizer=tf_keras.optimizers.Adam())
    assert ckpt.resume(model).position.steps_done == 700 == int(model.optimizer.iterations)


# ---------------------------------------------------------------------- damaged checkpoints
TINY = dict(hidden_units=(8,), batch_size=10, seed=4, binarize="dynamic")


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """(data, config, an uninterrupted run dir, a run paused after epoch 1 of 3)."""
    data = ((grey_images(60), None), (grey_images(20, seed=1), None))
    cfg = VAEConfig(**TINY, epochs=3)
    root = tmp_path_factory.mktemp("damaged")
    tfp_vae.train(cfg, root / "whole", data=data, verbose=0)
    tfp_vae.train(cfg, root / "paused", data=data, verbose=0, max_minutes=0)
    return data, cfg, root / "whole", root / "paused"


def _copy(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("harm", [_truncate, _flip], ids=["truncated", "byte_flipped"])
def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(tiny_runs, tmp_path, harm):
    data, cfg, whole, paused = tiny_runs
    out = _copy(paused, tmp_path / "run")
    folders = sorted(p.name for p in (out / CHECKPOINTS).iterdir() if p.is_dir())
    assert folders == ["epoch-0000", "epoch-0001"]  # two kept
    newest = out / CHECKPOINTS / "epoch-0001"
    target = next(newest.glob("state.data-*"))
    harm(target)
    assert damage(newest) is not None
    notes = []
    ckpt = RunCheckpoint(out, cfg, message=notes.append)
    model = tfp_vae.build_vae(cfg)
    model.compile(optimizer=tfp_vae.make_optimizer(cfg))
    assert ckpt.resume(model).position.epoch == 0
    assert str(target) in notes[0] and "damaged" in notes[0]
    assert "resuming from epoch-0000" in notes[1]
    # and training continues from there to the very weights of a run never stopped
    model, history = tfp_vae.train(cfg, out, data=data, verbose=0)
    assert history == tfp_vae.load_history(whole) and _status(out)["state"] == "complete"
    _same_weights(out, whole)


def test_no_whole_checkpoint_is_an_error_naming_the_files_before_anything_is_written(tiny_runs, tmp_path):
    data, cfg, _, paused = tiny_runs
    out = _copy(paused, tmp_path / "run")
    for folder in (out / CHECKPOINTS).glob("epoch-*"):
        _flip(next(folder.glob("state.data-*")))
        (folder / MANIFEST).write_text((folder / MANIFEST).read_text()[:-5])  # and an unreadable one
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.rglob("*") if p.is_file()}
    with pytest.raises(
        RunDirError, match=r"no whole checkpoint to resume from in .*checkpoints: .*epoch-0001"
    ) as err:
        tfp_vae.train(cfg, out, data=data, verbose=0)
    assert "manifest.json is unreadable" in str(err.value) and "Nothing was written" in str(err.value)
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.rglob("*") if p.is_file()}
    assert after.keys() - before.keys() <= {out / ".lock"} and all(
        after[p] == before[p] for p in before if p.name != ".lock"
    )


def test_checkpoints_record_sha256_and_size_of_every_file(tiny_runs):
    _, _, whole, _ = tiny_runs
    folder = whole / CHECKPOINTS / "epoch-0003"
    manifest = json.loads((folder / MANIFEST).read_text())
    assert (manifest["epoch"], manifest["step"], manifest["steps_done"]) == (3, 0, 18)
    names = {p.name for p in folder.iterdir()} - {MANIFEST}
    assert set(manifest["files"]) == names and {"state.index", "history.json"} <= names
    import hashlib

    for name, entry in manifest["files"].items():
        data = (folder / name).read_bytes()
        assert entry == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def test_sigint_in_python_commits_then_raises_keyboard_interrupt(tiny_runs, tmp_path):
    data, cfg, whole, _ = tiny_runs

    class CtrlC(tf_keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if (self.epoch, batch) == (1, 2):
                os.kill(os.getpid(), signal.SIGINT)

    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    # A caller's callback makes fit run one step per block: the stop comes after step 3 of epoch 2.
    with pytest.raises(KeyboardInterrupt) as err:
        tfp_vae.train(cfg, tmp_path / "run", data=data, verbose=0, callbacks=[CtrlC()])
    assert isinstance(err.value, tfp_vae.RunPaused) and err.value.signal == "SIGINT"
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    status = _status(tmp_path / "run")
    assert status["state"] == "paused" and (status["epochs_done"], status["step_in_epoch"]) == (1, 3)
    assert "resume with: tfp-vae train --config" in status["reason"]
    plain = [tf_keras.callbacks.Callback()]  # the same one step per block as before the stop
    tfp_vae.train(cfg, tmp_path / "run", data=data, verbose=0, callbacks=plain)
    tfp_vae.train(cfg, tmp_path / "straight", data=data, verbose=0, callbacks=plain)
    _same_weights(tmp_path / "run", tmp_path / "straight")
    assert Path(tmp_path / "run" / CHECKPOINTS / "epoch-0003").is_dir()
