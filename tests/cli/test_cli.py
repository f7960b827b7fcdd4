"""The command line as a user meets it: calm output, TensorBoard logs, `show`, run-directory locks.

One real `tfp-vae train` subprocess (500 images, 1 epoch, --tensorboard) is shared by the module;
`plot`'s progress and closing line are checked in test_plots.py's command-line test.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

import tfp_vae
from conftest import REPO, grey_images
from tfp_vae.cli import main
from tfp_vae.quiet import CPP_LOG_LINE


def _fresh_env():
    """The environment of a new user: no TF_CPP_MIN_LOG_LEVEL (conftest sets one for the suite)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return {**env, "PYTHONPATH": str(REPO)}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir):
    """(run dir, completed `tfp-vae train` process) for the README's first command, made small."""
    run = tmp_path_factory.mktemp("cli") / "run"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tfp_vae.cli",
            "train",
            "--out",
            str(run),
            "--epochs",
            "1",
            "--train-examples",
            "500",
            "--hidden-units",
            "16",
            "--data-dir",
            str(data_dir),
            "--tensorboard",
        ],
        env=_fresh_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return run, done


def test_train_prints_no_cpp_log_line_and_no_warning(trained):
    run, done = trained
    assert not [line for line in done.stderr.splitlines() if CPP_LOG_LINE.match(line)], done.stderr
    assert "Warning" not in done.stderr and "warn" not in done.stderr.lower(), done.stderr
    assert done.stderr.strip() == "", done.stderr
    # the default fits a Bernoulli to dynamically binarized images; one closing line says where
    assert tfp_vae.load_config(run).binarize == "dynamic"
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith(f"Trained 1 of 1 epochs into {run} (test -ELBO "), done.stdout[-500:]
    assert last.endswith(
        f"stopped: completed 1 epochs. Next: tfp-vae evaluate {run} (or train further with a larger --epochs)"
    )


def test_cpp_log_lines_are_recognised():
    notices = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1795410586.423798    5923 port.cc:153] oneDNN custom operations are on.",
        "E0000 00:00:1795410593.451327    5923 cuda_platform.cc:52] failed call to cuInit",
        (
            "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow "
            "with the appropriate compiler flags."
        ),
    ]
    assert all(CPP_LOG_LINE.match(line) for line in notices)
    assert not CPP_LOG_LINE.match("Traceback (most recent call last):")
    assert not CPP_LOG_LINE.match("tfp-vae train: error: /x is in use by another process")


def test_tensorboard_logs_hold_scalars_and_images(trained):
    run, _ = trained
    events = list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert events
    tags = {}
    for path in events:
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                tags.setdefault(value.tag, []).append((event.step, value))
    for name in ("loss", "nll", "kl", "beta", "val_loss", "reconstructions", "prior_samples"):
        assert name in tags, sorted(tags)
    history = json.loads((run / "history.json").read_text())
    step, value = tags["loss"][0]
    assert step == 1
    np.testing.assert_allclose(tf.make_ndarray(value.tensor), history["loss"][0], rtol=1e-6)
    assert float(tf.make_ndarray(tags["beta"][0][1].tensor)) == 1.0


def test_show_puts_runs_side_by_side(trained, tmp_path, capsys):
    run, _ = trained
    # a second run: the first one's files with another config and a 3-epoch history
    other = tmp_path / "other"
    shutil.copytree(run, other)
    config = tfp_vae.load_config(run).replace(beta=2.0, epochs=3, batch_size=10)
    tfp_vae.runs.files.save_config(config, other)
    tfp_vae.runs.files.save_history(
        {
            "loss": [5.0, 4.0, 3.0],
            "val_loss": [5.0, 4.5, 4.5],
            "val_nll": [5.0, 4.0, 4.25],
            "val_kl": [0.5, 0.25, 0.25],
        },
        other,
    )
    (other / "metrics.json").write_text(json.dumps({"iwae": -123.5, "kl_per_dim": [1.0, 2.0]}))
    table = tfp_vae.runs_table([run, other])
    assert list(table["run"]) == [str(run), str(other)]
    # the differing fields and nothing else of the config
    assert {"beta", "epochs", "batch_size"} == set(table.columns) & set(config.to_dict())
    assert "kl_per_dim" not in table.columns
    assert list(table["beta"]) == [1.0, 2.0] and list(table["status"]) == ["complete"] * 2
    assert list(table["epochs"]) == ["1/1", "3/3"]
    row = table.iloc[1]
    # the protocol's criterion, val_nll + val_kl (not val_loss, which carries the training beta)
    assert (row["best_epoch"], row["val_neg_elbo"], row["best_val_neg_elbo"]) == (2, 4.5, 4.25)
    first = json.loads((run / "history.json").read_text())
    assert table.iloc[0]["val_neg_elbo"] == first["val_nll"][0] + first["val_kl"][0]
    assert table.iloc[0]["best_epoch"] == 1
    assert row["iwae"] == -123.5 and np.isnan(table.iloc[0]["iwae"])
    assert main(["show", str(run), str(other)]) == 0
    out = capsys.readouterr().out
    assert "-123.500" in out and out.strip().splitlines()[-1].startswith("2 run(s) side by side")
    assert max(len(line) for line in out.splitlines()) <= 100, out
    assert f"runs in {os.path.commonpath([run.parent, other.parent])}/" in out
    assert main(["show", str(tmp_path / "nothing")]) == 2
    assert "not a tfp_vae run directory" in capsys.readouterr().err


def test_show_fits_100_columns_however_many_fields_differ(trained, tmp_path, capsys):
    """Many differing fields, long values and long metric names wrap into blocks of at most 100
    columns, each starting with the run, with a legend for what was shortened."""
    run, _ = trained
    long_dataset = "./" + "my_holiday_pictures_" * 3
    others = []
    for i, beta in enumerate((2.0, 4.0)):
        other = tmp_path / f"run_with_a_rather_long_name_{i}"
        shutil.copytree(run, other)
        config = tfp_vae.load_config(run).replace(
            beta=beta,
            epochs=3 + i,
            batch_size=10 + i,
            learning_rate=1e-4,
            kl_schedule="warmup",
            kl_schedule_epochs=7,
            hidden_units=(300, 300),
            hidden_activation="gated",
            latent_dim=40,
            prior_components=500,
            test_fraction=0.25,
            dataset=long_dataset if i else "mnist",
        )
        tfp_vae.runs.files.save_config(config, other)
        (other / "metrics.json").write_text(
            json.dumps({"elbo": -250.0, "iwae": -248.0, "iwae_standard_error": 0.8, "bits_per_dim": 0.46})
        )
        others.append(other)
    assert main(["show", str(run), *map(str, others)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert max(map(len, lines)) <= 100, out
    assert sum(line.lstrip().startswith("run ") for line in lines) >= 2  # wrapped, the run in each block
    assert (
        re.search(rf"^\[\d\] = {re.escape(long_dataset)}$", out, re.M)
        and "best -elbo = best_val_neg_elbo" in out
    )
    assert "run_with_a_rather_long_name_1" in out


HOLD = """
import sys, time
from tfp_vae.runs.locks import run_lock
with run_lock(sys.argv[1], "training"), run_lock(sys.argv[2], "running this sweep point"):
    print("locked", flush=True)
    time.sleep(600)
"""


def test_locks_stop_a_second_writer_at_once_and_a_dead_holder_is_taken_over(tmp_path, capsys):
    """A real process holds a run directory and a sweep point: training and evaluating into the
    run stop at once naming it, the sweep leaves the point to it; once it is killed, its lock is
    taken over with a message."""
    run, sweep_dir = tmp_path / "run", tmp_path / "sweep"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(run), str(sweep_dir / "beta=1")],
        env=_fresh_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked", holder.stderr.read()
        record = json.loads((run / ".lock").read_text())
        assert record["pid"] == holder.pid and record["what"] == "training"
        data = ((grey_images(20), np.zeros(20, int)), (grey_images(10, seed=1), np.zeros(10, int)))
        started = time.perf_counter()
        with pytest.raises(
            tfp_vae.RunDirBusyError,
            match=rf"{run} is in use by another process: pid "
            rf"{holder.pid} on host .* \(.*-c .*\), training since \d{{4}}-.*UTC\. Wait",
        ):
            tfp_vae.train(tfp_vae.VAEConfig(hidden_units=(8,), epochs=1), run, data=data, verbose=0)
        assert time.perf_counter() - started < 5  # at once, before any work
        assert not (run / "config.json").exists()
        assert main(["evaluate", str(run)]) == 2  # evaluate writes into the run directory too
        assert f"error: {run} is in use by another process: pid {holder.pid}" in capsys.readouterr().err
        base = tfp_vae.VAEConfig(hidden_units=(8,), epochs=1, batch_size=10)
        table = tfp_vae.sweep(base, {"beta": [1.0, 2.0]}, sweep_dir, num_samples=2, data=data, verbose=1)
        assert list(table["run"]) == ["beta=2"]
        assert (
            f"skipping beta=1: {sweep_dir / 'beta=1'} is in use by another process: pid {holder.pid}"
        ) in capsys.readouterr().err
        assert not (sweep_dir / "beta=1" / "metrics.json").exists()
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)
    lines = []
    with tfp_vae.run_lock(run, "evaluating", message=lines.append):
        mine = json.loads((run / ".lock").read_text())
        assert mine["pid"] == os.getpid() and mine["what"] == "evaluating"
    assert len(lines) == 1 and f"taking over the lock left by pid {holder.pid}" in lines[0]
    assert (run / ".lock").read_text() == ""  # released cleanly: the next one takes it silently
    with tfp_vae.run_lock(run, "training", message=lines.append), tfp_vae.run_lock(run, "training"):
        pass  # re-entrant within a process
    assert len(lines) == 1
