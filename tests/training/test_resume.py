"""Nothing lost: kill -9 and resume, atomic writes, NaN stop, clipping, bit-identical reruns.

The crash, NaN and determinism tests run the real `tfp-vae train` command in subprocesses on a
small subset of real Fashion-MNIST.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import tfp_vae
from conftest import REPO, grey_images
from tfp_vae import NonFiniteLossError, RunDirError, VAEConfig
from tfp_vae.runs.files import atomic_write_text

# 2 epochs of 20 steps on 1,000 real images, validated on the 10,000 test images every epoch.
FLAGS = [
    "--train-examples",
    "1000",
    "--batch-size",
    "50",
    "--hidden-units",
    "32",
    "--epochs",
    "2",
    "--binarize",
    "dynamic",
    "--seed",
    "5",
    "--verbose",
    "0",
]


def _command(out, data_dir, *flags):
    return [
        sys.executable,
        "-m",
        "tfp_vae.cli",
        "train",
        "--out",
        str(out),
        "--data-dir",
        str(data_dir),
        *flags,
    ]


def _env():
    return {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}


def _train_cli(out, data_dir, *flags, timeout=300):
    return subprocess.run(
        _command(out, data_dir, *flags), env=_env(), capture_output=True, text=True, timeout=timeout
    )


def _weights(run_dir) -> dict:
    """Every array of the weights file, by HDF5 path."""
    arrays = {}
    with h5py.File(Path(run_dir) / "model.weights.h5", "r") as f:
        f.visititems(
            lambda name, obj: arrays.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None
        )
    return arrays


def _status(run_dir):
    path = Path(run_dir) / "status.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _assert_intact(run_dir):
    """Every file a later load trusts parses and loads: no half-written file anywhere."""
    run_dir = Path(run_dir)
    if (run_dir / "model.weights.h5").exists():
        model = tfp_vae.load(run_dir)
        assert all(np.all(np.isfinite(w)) for w in model.get_weights())
    for name in ("history.json", "status.json", "checkpoints/latest.json"):
        if (run_dir / name).exists():
            json.loads((run_dir / name).read_text())
    if (run_dir / "checkpoints/latest.json").exists():
        from tfp_vae.training.checkpoint import RunCheckpoint

        ckpt = RunCheckpoint(run_dir, tfp_vae.load_config(run_dir))
        model = tfp_vae.build_vae(ckpt.config)
        model.compile(optimizer=tf_keras.optimizers.Adam())
        done, history = ckpt.restore(model)
        assert all(len(v) == done for v in history.values())


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, data_dir):
    out = tmp_path_factory.mktemp("cli") / "uninterrupted"
    done = _train_cli(out, data_dir, *FLAGS)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_kill_and_resume_equals_uninterrupted(uninterrupted, tmp_path, data_dir):
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        _command(out, data_dir, *FLAGS),
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        status = _status(out)
        if status and status["epochs_done"] >= 1:  # epoch 1 committed: now inside epoch 2
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"finished before it could be killed: {proc.stderr.read()[-2000:]}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    status = _status(out)
    seconds = status.pop("epoch_seconds")  # the wall seconds of epoch 1, kept for the resume
    assert len(seconds) == 1 and seconds[0] > 0
    assert status == {
        "state": "training",
        "epochs_done": 1,
        "steps_done": 20,
        "note": "model.weights.h5 holds the weights after 1 of 2 epoch(s).",
    }
    _assert_intact(out)
    assert len(json.loads((out / "history.json").read_text())["loss"]) == 1

    resumed = _train_cli(out, data_dir, *FLAGS)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert _status(out)["state"] == "complete"
    carried = _status(out)["epoch_seconds"]  # epoch 1's seconds carried over, epoch 2's added
    assert len(carried) == 2 and carried[0] == seconds[0] and carried[1] > 0

    expected, got = _weights(uninterrupted), _weights(out)
    assert expected.keys() == got.keys() and len(got) >= 8
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    assert json.loads((out / "history.json").read_text()) == json.loads(
        (uninterrupted / "history.json").read_text()
    )
    rows = (out / "history.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows] == ["epoch", "0", "1"]  # no gaps, no duplicates
    _assert_intact(out)


def test_same_config_and_seed_give_bit_identical_weights(uninterrupted, tmp_path, data_dir):
    again = _train_cli(tmp_path / "again", data_dir, *FLAGS)
    assert again.returncode == 0, again.stderr[-3000:]
    first, second = _weights(uninterrupted), _weights(tmp_path / "again")
    for name in first:
        np.testing.assert_array_equal(second[name], first[name], err_msg=name)
    # and training moved them: identical because reproducible, not because untouched
    init = tfp_vae.build_vae(tfp_vae.load_config(uninterrupted)).get_weights()
    trained = tfp_vae.load(uninterrupted).get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(init, trained))


class _InterruptAfter(tf_keras.callbacks.Callback):
    """Raises KeyboardInterrupt at the start of epoch `epoch` (0-based), as if killed there."""

    def __init__(self, epoch):
        super().__init__()
        self.at = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at:
            raise KeyboardInterrupt


def test_deterministic_run_resumes_bit_for_bit(tmp_path):
    """deterministic=True (op determinism, steps outside XLA) resumes bit for bit too; the
    default path's kill -9 test is above. Sampled KL and dynamic binarization draw in every step."""
    data = ((grey_images(40), None), (grey_images(10, seed=1), None))
    cfg = VAEConfig(
        epochs=2,
        batch_size=10,
        hidden_units=(8,),
        binarize="dynamic",
        kl="sampled",
        deterministic=True,
        seed=3,
    )
    whole, _ = tfp_vae.train(cfg, tmp_path / "whole", data=data, verbose=0)
    with pytest.raises(KeyboardInterrupt):
        tfp_vae.train(cfg, tmp_path / "cut", data=data, verbose=0, callbacks=[_InterruptAfter(1)])
    assert _status(tmp_path / "cut")["epochs_done"] == 1
    resumed, _ = tfp_vae.train(cfg, tmp_path / "cut", data=data, verbose=0)
    for a, b in zip(resumed.get_weights(), whole.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_finished_run_trains_further_with_more_epochs_as_one_longer_run(tmp_path):
    """2 epochs, then the same config with epochs=3 into the same directory, gives the weights and
    history of 3 epochs at once, bit for bit: the KL warm-up, the plateau schedule and the data
    order continue. config.json records the new total; fewer epochs, or another field, is an error."""
    data = ((grey_images(60), None), (grey_images(10, seed=1), None))
    cfg = VAEConfig(
        epochs=3,
        batch_size=10,
        hidden_units=(8,),
        binarize="dynamic",
        kl_schedule="warmup",
        kl_schedule_epochs=3,
        validation_examples=20,
        lr_schedule="plateau",
        lr_patience=1,
        early_stopping_patience=5,
        seed=4,
    )
    whole, whole_history = tfp_vae.train(cfg, tmp_path / "whole", data=data, verbose=0)
    tfp_vae.train(cfg.replace(epochs=2), tmp_path / "grown", data=data, verbose=0)
    assert _status(tmp_path / "grown")["state"] == "complete"
    grown, grown_history = tfp_vae.train(cfg, tmp_path / "grown", data=data, verbose=0)
    assert tfp_vae.load_config(tmp_path / "grown").epochs == 3
    assert _status(tmp_path / "grown")["state"] == "complete"
    assert grown_history == whole_history and len(grown_history["loss"]) == 3
    for a, b in zip(grown.get_weights(), whole.get_weights()):
        np.testing.assert_array_equal(a, b)
    saved, expected = _weights(tmp_path / "grown"), _weights(tmp_path / "whole")
    for name in expected:
        np.testing.assert_array_equal(saved[name], expected[name], err_msg=name)
    tfp_vae.load(tmp_path / "grown")  # its weights file and config.json still belong together
    with pytest.raises(RunDirError, match=r"epochs: 3 -> 2\).*only epochs or max_steps may change"):
        tfp_vae.train(cfg.replace(epochs=2), tmp_path / "grown", data=data, verbose=0)
    with pytest.raises(RunDirError, match=r"\(beta: 1\.0 -> 2\.0, epochs: 3 -> 4\)"):
        tfp_vae.train(cfg.replace(epochs=4, beta=2.0), tmp_path / "grown", data=data, verbose=0)


def test_a_finished_run_trains_further_with_a_larger_step_budget_as_one_longer_run(tmp_path):
    """max_steps=12 (two epochs of 6 steps), then max_steps=18 into the same directory, gives the
    weights and history of 18 steps at once, bit for bit, and config.json records the new budget.
    (The budgets end on block boundaries: an epoch here is one block.)"""
    data = ((grey_images(60), None), (grey_images(10, seed=1), None))
    cfg = VAEConfig(epochs=10, max_steps=18, batch_size=10, hidden_units=(8,), binarize="dynamic", seed=5)
    whole, whole_history = tfp_vae.train(cfg, tmp_path / "whole", data=data, verbose=0)
    tfp_vae.train(cfg.replace(max_steps=12), tmp_path / "grown", data=data, verbose=0)
    assert _status(tmp_path / "grown")["state"] == "complete"
    grown, grown_history = tfp_vae.train(cfg, tmp_path / "grown", data=data, verbose=0)
    assert tfp_vae.load_config(tmp_path / "grown").max_steps == 18
    assert grown_history == whole_history and len(grown_history["loss"]) == 3
    for a, b in zip(grown.get_weights(), whole.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_rerun_with_another_config_is_an_error(uninterrupted):
    config = tfp_vae.load_config(uninterrupted).replace(hidden_units=(64,))
    data = ((grey_images(4), None), (grey_images(4, seed=1), None))
    with pytest.raises(
        RunDirError,
        match=r"holds a run with another config \(hidden_units: \[32\] "
        r"-> \[64\]\)\. Rerun with the flags it was trained with .* new --out",
    ):
        tfp_vae.train(config, uninterrupted, data=data, verbose=0)
    assert _status(uninterrupted)["state"] == "complete"  # untouched


def test_non_finite_loss_stops_with_epoch_and_step(tmp_path, data_dir):
    out = tmp_path / "diverged"
    flags = [*FLAGS[: FLAGS.index("--binarize")], "--learning-rate", "1e8", "--seed", "5", "--verbose", "0"]
    run = _train_cli(out, data_dir, *flags)
    assert run.returncode == 2, run.stderr[-3000:]
    message = re.search(
        r"error: training stopped: the loss became (nan|inf) at epoch 1, "
        r"(step \d+|one of steps \d+-\d+) of 20; "
        r".* keeps the last good weights, those after 0 epoch",
        run.stderr,
    )
    assert message, run.stderr[-3000:]
    status = _status(out)
    assert status["state"] == "stopped" and f"{message.group(2)} of 20" in status["reason"]
    kept = tfp_vae.load(out)  # the initial weights: finite, and exactly those before any step
    initial = tfp_vae.build_vae(kept.config).get_weights()
    for a, b in zip(kept.get_weights(), initial):
        np.testing.assert_array_equal(a, b)


class _PoisonAt(tf_keras.callbacks.Callback):
    """Sets the decoder's weights to NaN before step `step` of epoch `epoch` (0-based), like a
    blow-up; keeps a copy of the weights at the end of each epoch before that."""

    def __init__(self, epoch, step):
        super().__init__()
        self.at, self.epoch, self.good = (epoch, step), None, None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            for weight in self.model.decoder.trainable_variables:
                weight.assign(tf.fill(weight.shape, np.nan))

    def on_epoch_end(self, epoch, logs=None):
        if epoch < self.at[0]:
            self.good = [w.copy() for w in self.model.get_weights()]


def test_nan_keeps_the_last_good_epoch(tmp_path):
    data = ((grey_images(60), None), (grey_images(20, seed=1), None))
    cfg = VAEConfig(epochs=3, batch_size=10, hidden_units=(8,), seed=2)
    poison = _PoisonAt(1, 2)
    with pytest.raises(
        NonFiniteLossError,
        match=r"loss became nan at epoch 2, step 3 of 6; .* those "
        r"after 1 epoch\(s\)",
    ):
        tfp_vae.train(cfg, tmp_path, data=data, verbose=0, callbacks=[poison])
    kept = tfp_vae.load(tmp_path)
    for a, b in zip(kept.get_weights(), poison.good):
        assert np.all(np.isfinite(a))
        np.testing.assert_array_equal(a, b)
    assert _status(tmp_path)["state"] == "stopped" and _status(tmp_path)["epochs_done"] == 1
    assert len(json.loads((tmp_path / "history.json").read_text())["loss"]) == 1


def test_completed_run_is_not_retrained_and_config_is_checked(tmp_path):
    data = ((grey_images(30), None), (grey_images(10, seed=1), None))
    cfg = VAEConfig(epochs=1, batch_size=10, hidden_units=(8,))
    model, history = tfp_vae.train(cfg, tmp_path, data=data, verbose=0)
    again, history2 = tfp_vae.train(cfg, tmp_path, data=data, verbose=0)
    assert history2 == history and int(again.optimizer.iterations) == 3
    for a, b in zip(again.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(RunDirError, match=r"another config \(beta: 1.0 -> 2.0\)"):
        tfp_vae.train(cfg.replace(beta=2.0), tmp_path, data=data, verbose=0)


def test_clip_norm_bounds_each_gradient():
    x = tf.constant(grey_images(16))
    for clip in (0.5, 0.0):
        cfg = VAEConfig(hidden_units=(8,), clip_norm=clip)
        model = tfp_vae.build_vae(cfg)
        model.compile(optimizer=tfp_vae.make_optimizer(cfg))
        model.train_step(x)  # one eager step
        # After one Adam step the first moment is (1 - beta_1) g: 10 times its norm is |g|.
        grad_norm = 10 * float(tf.linalg.global_norm(model.optimizer._momentums))
        if clip:
            np.testing.assert_allclose(grad_norm, clip, rtol=1e-4)
        else:
            assert grad_norm > 4 * 0.5  # unclipped, the gradient is far larger (about 10 here)


def test_atomic_write_never_leaves_half_a_file(tmp_path):
    path = tmp_path / "history.json"
    atomic_write_text(path, '{"loss": [1.0]}')

    def crash_midway(tmp):
        Path(tmp).write_text('{"loss": [1.0, 2')
        raise KeyboardInterrupt  # as if killed while writing

    with pytest.raises(KeyboardInterrupt):
        tfp_vae.runs.files.atomic_write(path, crash_midway)
    assert json.loads(path.read_text()) == {"loss": [1.0]}
    assert [p.name for p in tmp_path.iterdir()] == ["history.json"]
