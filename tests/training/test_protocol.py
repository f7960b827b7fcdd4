"""The training protocol (validation split, early stopping, per-step KL warm-up, LR plateau, time
budget, config files) and resumable evaluation, on tiny models."""

import json

import h5py
import numpy as np
import pytest
import tf_keras

import tfp_vae
from conftest import grey_images
from tfp_vae.cli import main
from tfp_vae.evaluation.elbo import evaluate
from tfp_vae.runs import files as runs
from tfp_vae.training.protocol import LR_SCHEDULES, criterion

TINY = {"latent_dim": 2, "hidden_units": (16,), "batch_size": 16, "seed": 3}


def _weights_file(path):
    out = {}

    def keep(name, obj):
        if isinstance(obj, h5py.Dataset):
            out[name] = obj[()]

    with h5py.File(path, "r") as f:
        f.visititems(keep)
    return out


class _Snapshots(tf_keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self.model.get_weights())


@pytest.fixture(scope="module")
def early_stopped(tmp_path_factory):
    """Noise images at a high learning rate: validation gets worse after the first epochs."""
    out = tmp_path_factory.mktemp("early")
    cfg = tfp_vae.VAEConfig(
        **TINY,
        epochs=8,
        learning_rate=0.05,
        validation_examples=32,
        early_stopping_patience=2,
        lr_schedule="plateau",
        lr_patience=1,
        lr_min=0.02,
        deterministic=True,
    )
    data = ((grey_images(96, seed=0), None), (grey_images(8, seed=1), None))
    snapshots = _Snapshots()
    model, history = tfp_vae.train(cfg, out, data=data, verbose=0, callbacks=[snapshots])
    return cfg, data, out, model, history, snapshots.weights


def test_early_stopping_keeps_the_best_weights(early_stopped):
    cfg, data, out, model, history, snapshots = early_stopped
    status = json.loads((out / "status.json").read_text())
    values = criterion(history)
    best = int(np.argmin(values))
    done = len(values)
    assert done < cfg.epochs and done - 1 - best == cfg.early_stopping_patience, values
    assert status["state"] == "complete" and status["best_epoch"] == best + 1
    assert status["reason"].startswith(f"early stopping after epoch {done}")
    assert status["best_val_neg_elbo"] == pytest.approx(values[best])
    # model.weights.h5 and the returned model hold the best epoch's weights, not the last ones.
    saved = runs.load(out).get_weights()
    for got, best_w, _last_w, returned in zip(saved, snapshots[best], snapshots[-1], model.get_weights()):
        np.testing.assert_array_equal(got, best_w)
        np.testing.assert_array_equal(returned, best_w)
    assert any(not np.array_equal(a, b) for a, b in zip(snapshots[best], snapshots[-1]))
    # Resuming an early-stopped run trains no further.
    again, history2 = tfp_vae.train(cfg, out, data=data, verbose=0)
    assert history2 == history
    for a, b in zip(again.get_weights(), snapshots[best]):
        np.testing.assert_array_equal(a, b)


def test_plateau_lowers_the_learning_rate_by_its_rule(early_stopped):
    cfg, _, out, _, history, _ = early_stopped
    lrs = history["lr"]
    assert lrs[0] == pytest.approx(0.05) and min(lrs) < 0.05 and min(lrs) >= cfg.lr_min
    for n in range(1, len(lrs)):  # each epoch's rate follows from the history before it
        before = {k: v[:n] for k, v in history.items()}
        assert lrs[n] == pytest.approx(LR_SCHEDULES["plateau"].next_lr(cfg, before))
    # The next rate is in the checkpointed optimizer.
    from tfp_vae.training.checkpoint import RunCheckpoint

    fresh = tfp_vae.build_vae(cfg)
    fresh.compile(optimizer=tfp_vae.make_optimizer(cfg))
    RunCheckpoint(out, cfg).restore(fresh)
    assert float(fresh.optimizer.learning_rate) == pytest.approx(
        LR_SCHEDULES["plateau"].next_lr(cfg, history)
    )


def test_validation_split_is_the_last_training_images_not_the_test_split():
    """Training images all ones, test images all zeros: validation on the held-out ones is easy,
    on the test split it would be far worse than an untrained model (784 ln 2 = 543 nats)."""
    ones, zeros = np.ones([80, 28, 28, 1], np.float32), np.zeros([16, 28, 28, 1], np.float32)
    cfg = tfp_vae.VAEConfig(
        **{**TINY, "batch_size": 4}, epochs=2, learning_rate=0.05, validation_examples=16, deterministic=True
    )
    model, history = tfp_vae.train(cfg, data=((ones, None), (zeros, None)), verbose=0)
    on_test = float(np.mean(model.loss_terms(zeros)["nll"]))
    assert history["val_nll"][-1] < 300 and on_test > 543


def test_max_minutes_and_config_file_resume_mid_warmup_like_an_uninterrupted_run(tmp_path, data_dir):
    """--config plus an override, stopped by --max-minutes after each epoch, resumed: the per-step
    beta and the weights are bit-identical to a run that was never stopped."""
    cfg = tfp_vae.VAEConfig(
        **TINY,
        epochs=2,
        train_examples=80,
        validation_examples=16,
        kl_schedule="warmup",
        kl_schedule_epochs=4,
        deterministic=True,
    )
    file = tmp_path / "experiment.json"
    file.write_text(cfg.replace(seed=0).to_json())  # the override below restores seed 3
    out = tmp_path / "sliced"
    command = [
        "train",
        "--config",
        str(file),
        "--out",
        str(out),
        "--seed",
        "3",
        "--verbose",
        "0",
        "--data-dir",
        str(data_dir),
    ]
    assert main([*command, "--max-minutes", "0"]) == 0  # stops after the first epoch
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "paused" and status["epochs_done"] == 1
    assert f"--config {out}/config.json --out {out} --max-minutes 0" in status["reason"]
    assert runs.load_config(out) == cfg
    assert main(command) == 0
    assert json.loads((out / "status.json").read_text())["reason"] == "completed 2 epochs"

    whole = tmp_path / "whole"
    tfp_vae.train(cfg, whole, data_dir=data_dir, verbose=0)
    sliced, uninterrupted = runs.load_history(out), runs.load_history(whole)
    np.testing.assert_allclose(sliced["beta"], [0.25, 0.5], rtol=1e-6)
    assert sliced == uninterrupted
    a, b = _weights_file(out / "model.weights.h5"), _weights_file(whole / "model.weights.h5")
    assert a.keys() == b.keys() and len(a) >= 6
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_evaluation_resumes_from_its_shards_and_equals_one_call(early_stopped, monkeypatch, capsys):
    _, data, out, _, _, _ = early_stopped
    from tfp_vae.evaluation import shards as evaluation_shards

    model, x = runs.load(out), data[1][0]
    kwargs = {"num_samples": 6, "batch_size": 3, "verbose": 0, "shard_images": 3}
    first, path, folder = evaluation_shards.evaluate_run(model, out, x, **kwargs)
    shards = sorted(folder.glob("shard-*.npz"))
    assert len(shards) == 3 and first["images"] == 8  # 3 + 3 + 2 images
    shards[1].unlink()
    calls = []
    original = evaluation_shards.per_example
    monkeypatch.setattr(
        evaluation_shards, "per_example", lambda *a, **k: calls.append(k["first_index"]) or original(*a, **k)
    )
    again, _, _ = evaluation_shards.evaluate_run(model, out, x, **kwargs)
    assert calls == [3]  # only the missing shard was evaluated
    whole = evaluate(model, x, num_samples=6, batch_size=3, seed=model.config.seed)
    for key in ("elbo", "nll", "kl", "iwae", "iwae_standard_error", "bits_per_dim"):
        assert first[key] == again[key] == whole[key], key
    record = json.loads(path.read_text())
    assert record["images"] == 8 and record["num_samples"] == 6
    assert record["iwae_standard_error"] > 0
    # Other weights: the old shards are not reused but removed.
    model.set_weights([w + 0.01 for w in model.get_weights()])
    runs.save(model, out)
    calls.clear()
    evaluation_shards.evaluate_run(model, out, x, **kwargs)
    assert calls == [0, 3, 6] and not folder.exists()


def test_experiment_files_hold_the_published_setting():
    from conftest import REPO
    from tfp_vae.cli import config_file

    density = config_file(REPO / "experiments" / "fashion_mnist_density.json")
    assert (density.dataset, density.likelihood, density.binarize, density.encoder) == (
        "fashion_mnist",
        "bernoulli",
        "dynamic",
        "mlp",
    )
    assert (density.hidden_units, density.latent_dim, density.batch_size, density.learning_rate) == (
        (300, 300),
        40,
        100,
        5e-4,
    )
    assert (
        density.validation_examples,
        density.early_stopping_patience,
        density.kl_schedule,
        density.kl_schedule_epochs,
        density.kl,
        density.epochs,
    ) == (10000, 50, "warmup", 100, "exact", 2000)
    assert density.hidden_activation == "gated" and density.prior == "standard"
    # The VampPrior file is the same experiment with the prior's fields.
    vamp = config_file(REPO / "experiments" / "fashion_mnist_vampprior.json")
    own = {"prior": "vamp", "prior_components": 500, "kl": "sampled", "kl_samples": 1}
    assert {k: getattr(vamp, k) for k in own} == own
    assert vamp.replace(**{k: getattr(density, k) for k in own}) == density
