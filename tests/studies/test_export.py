"""`export_run` / `tfp-vae export`: a trained run shipped without the optimizer's state, its
weights bit for bit, its optimizer-steps stamp and its metrics kept as those of the exported file;
every refusal before DEST exists. One tiny run (3 optimizer steps on 60 random binary images) is
trained and evaluated once for the module."""

import json
import shutil

import h5py
import numpy as np
import pytest

import tfp_vae
from tfp_vae.cli import main
from tfp_vae.evaluation.record import read_record, update_record
from tfp_vae.evaluation.shards import evaluate_run, weights_digest
from tfp_vae.runs import files as runs
from tfp_vae.runs.fingerprint import write_record
from tfp_vae.studies.export import variable_names

CONFIG = tfp_vae.VAEConfig(
    input_shape=(8, 8, 1), hidden_units=(8,), latent_dim=2, batch_size=20, epochs=1, max_steps=3, seed=0
)
SHIPPED = [
    "config.json",
    "data.json",
    "history.csv",
    "latents_before.npz",
    "metrics.json",
    "model.weights.h5",
    "status.json",
]


def _images(n, seed):
    return (np.random.default_rng(seed).random([n, 8, 8, 1]) < 0.5).astype("float32")


def _array_bytes(path):
    sizes = []
    with h5py.File(path) as f:
        f.visititems(lambda _, item: sizes.append(item.nbytes) if isinstance(item, h5py.Dataset) else None)
    return sum(sizes)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run trained for 3 steps and evaluated (K = 2, 20 test images): its folder, kept pristine."""
    run = tmp_path_factory.mktemp("export") / "run"
    x, x_test = _images(60, 0), _images(20, 1)
    tfp_vae.train(CONFIG, run, data=((x, None), (x_test, None)), verbose=0)
    evaluate_run(tfp_vae.load(run), run, x_test, num_samples=2, batch_size=10, verbose=0)
    write_record(run, {"dataset": "arrays given to train"})  # what a run of a named data set keeps
    return run


@pytest.fixture
def run(trained, tmp_path):
    shutil.copytree(trained, tmp_path / "run")
    return tmp_path / "run"


def test_the_export_holds_the_same_model_its_steps_and_its_own_metrics(run, tmp_path, capsys):
    dest = tfp_vae.export_run(run, tmp_path / "shipped" / "run")
    assert capsys.readouterr().out == ""  # a complete run whose metrics are of its weights: no note
    assert sorted(p.name for p in dest.iterdir()) == SHIPPED  # no checkpoints/, evaluation/, .lock
    source, shipped = tfp_vae.load(run), tfp_vae.load(dest)
    assert shipped.optimizer is None and len(shipped.variables) == len(source.variables) == 14
    for name, a, b in zip(variable_names(source), source.variables, shipped.variables):
        assert a.numpy().tobytes() == b.numpy().tobytes(), name
    x = _images(5, 2)
    np.testing.assert_array_equal(source.encoder(x).loc, shipped.encoder(x).loc)
    with h5py.File(dest / runs.WEIGHTS_FILE) as f, h5py.File(run / runs.WEIGHTS_FILE) as g:
        assert "optimizer" in g and "optimizer" not in f  # Adam's moments stay with the run
        assert f.attrs[runs.STEPS_ATTR] == g.attrs[runs.STEPS_ATTR] == 3  # the stamp is kept
    assert runs.weights_steps(dest) == runs.weights_steps(run) == 3
    # the arrays shrink to a third (no Adam moments m and v); this tiny file is mostly HDF5's own
    assert _array_bytes(run / runs.WEIGHTS_FILE) > 2.9 * _array_bytes(dest / runs.WEIGHTS_FILE)
    assert (dest / runs.WEIGHTS_FILE).stat().st_size < (run / runs.WEIGHTS_FILE).stat().st_size

    before, after = read_record(run), read_record(dest)
    assert after["weights_sha256"] == weights_digest(dest) != weights_digest(run) == before["weights_sha256"]
    assert {k: v for k, v in after.items() if k != "weights_sha256"} == {
        k: v for k, v in before.items() if k != "weights_sha256"
    }
    assert after["evaluated_steps"] == 3 and after["at_steps"]["3"]["iwae"] == before["iwae"]
    for name in ("config.json", "data.json", "status.json", "history.csv", "latents_before.npz"):
        assert (dest / name).read_bytes() == (run / name).read_bytes(), name
    assert tfp_vae.load_history(dest) == tfp_vae.load_history(run)
    assert (run / "checkpoints").is_dir() and weights_digest(run) == before["weights_sha256"]  # RUN untouched

    # a further evaluation of the exported weights adds to their record instead of starting afresh
    record = update_record(dest, {"mig": 0.25}, runs.weights_steps(dest), weights_digest(dest))
    assert record["iwae"] == before["iwae"] and record["mig"] == 0.25
    assert record["at_steps"]["3"] == {**before["at_steps"]["3"], "mig": 0.25}
    # and the figures are these weights' own: evaluated again in DEST, they come out the same
    metrics, _, _ = evaluate_run(shipped, dest, _images(20, 1), num_samples=2, batch_size=10, verbose=0)
    assert metrics["iwae"] == before["iwae"] and read_record(dest)["mig"] == 0.25


def test_metrics_of_other_weights_are_copied_as_they_are(run, tmp_path, capsys):
    stale = {**read_record(run), "weights_sha256": "0123456789abcdef"}  # trained further since
    (run / "metrics.json").write_text(json.dumps(stale))
    status = json.loads((run / "status.json").read_text())
    (run / "status.json").write_text(json.dumps({**status, "state": "paused"}))
    dest = tfp_vae.export_run(run, tmp_path / "shipped")
    assert read_record(dest) == stale  # never claimed as the exported weights' figures
    out = capsys.readouterr().out
    assert "metrics.json is of other weights" in out and f"run tfp-vae evaluate {dest}" in out
    assert f"note: {run} is paused at 3 optimizer steps: exported the weights of that point" in out


def _refusals(run, tmp_path):
    (tmp_path / "empty").mkdir()
    config_only = tmp_path / "config_only"
    runs.save_config(CONFIG, config_only)
    busy = tmp_path / "busy"
    (busy / "checkpoints").mkdir(parents=True)
    (busy / "config.json").write_text("{}")
    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("mine")
    return {
        "not-a-run": (tmp_path / "empty", tmp_path / "d", False, "is not a tfp_vae run directory"),
        "no-weights": (config_only, tmp_path / "d", False, "has no model.weights.h5"),
        "in-place": (run, run, False, "in place would lose the resume state"),
        "inside": (run, run / "shipped", False, "in place would lose the resume state"),
        "holds-run": (run, tmp_path, True, "replacing DEST would delete RUN"),
        "not-empty": (
            run,
            full,
            False,
            "exists and is not empty; export to a new folder, or pass --overwrite",
        ),
        "checkpoints": (run, busy, True, "holds a training's checkpoints/"),
    }


@pytest.mark.parametrize(
    "case", ["not-a-run", "no-weights", "in-place", "inside", "holds-run", "not-empty", "checkpoints"]
)
def test_each_refusal_comes_before_anything_is_written(run, tmp_path, case):
    source, dest, overwrite, words = _refusals(run, tmp_path)[case]
    listing = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    with pytest.raises(tfp_vae.RunDirError, match=words):
        tfp_vae.export_run(source, dest, overwrite=overwrite)
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == listing


def test_overwrite_replaces_an_earlier_folder_whole(run, tmp_path):
    dest = tmp_path / "shipped"
    dest.mkdir()
    (dest / "notes.txt").write_text("an earlier export's leftover")
    tfp_vae.export_run(run, dest, overwrite=True, verbose=0)
    assert sorted(p.name for p in dest.iterdir()) == SHIPPED
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "shipped"]  # no temporary left


def test_weights_that_do_not_load_back_bit_for_bit_are_never_shipped(run, tmp_path, monkeypatch):
    real = runs.save_weights

    def flipped(model, path, steps=None):  # a write that comes back changed (a bad disk, a bug)
        real(model, path, steps=steps)
        with h5py.File(path, "a") as f:
            kernels = []
            f.visititems(lambda _, item: kernels.append(item) if getattr(item, "ndim", 0) == 2 else None)
            kernels[-1][0, 0] += 1.0  # the decoder's last kernel, one entry

    monkeypatch.setattr(runs, "save_weights", flipped)
    with pytest.raises(
        tfp_vae.RunDirError,
        match=r"variable decoder/\S+/kernel:0 of the exported weights differs .* nothing was written",
    ):
        tfp_vae.export_run(run, tmp_path / "shipped", verbose=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no DEST, no temporary folder


def test_the_command_line_exports_and_says_what_it_wrote(run, tmp_path, capsys):
    dest = tmp_path / "shipped"
    assert main(["export", str(run), str(dest)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"Exported {run} into {dest} (") and "metrics of these weights kept" in line
    assert "in 7 files" in line and line.endswith(f"Next: tfp-vae show {dest}")
    assert main(["export", str(run), str(dest)]) == 2  # not empty now: refused, naming the fix
    assert "--overwrite" in capsys.readouterr().err
    assert main(["export", str(run), str(dest), "--overwrite"]) == 0
    capsys.readouterr()
    # a study's milestone evaluated in RUN counts as evaluated in DEST: nothing to redo there
    assert main(["evaluate", str(dest), "--at-steps", "3", "--verbose", "0"]) == 0
    assert "is evaluated at 3 steps already" in capsys.readouterr().out
