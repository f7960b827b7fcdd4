"""Short real training runs on Fashion-MNIST: the numbers move the right way."""

import json
import subprocess
import sys

import numpy as np
import pytest

import tfp_vae
from tfp_vae.cli import main


def test_training_lowers_test_negative_elbo_and_beats_mean_image(fashion_bernoulli):
    (x, y), (xt, yt) = fashion_bernoulli
    x, y, xt, yt = x[:6000], y[:6000], xt[:1000], yt[:1000]  # labels must match their images
    cfg = tfp_vae.VAEConfig(epochs=3, batch_size=64, seed=0)
    untrained = tfp_vae.build_vae(cfg)
    untrained.compile()
    before = untrained.evaluate(xt, batch_size=500, verbose=0, return_dict=True)
    model, history = tfp_vae.train(cfg, data=((x, y), (xt, yt)), verbose=0)
    assert len(history["val_loss"]) == 3
    assert history["val_loss"][-1] < before["loss"] - 100  # ~545 -> below ~300 nats
    assert history["val_loss"][-1] < history["val_loss"][0]
    np.testing.assert_allclose(history["val_loss"], np.add(history["val_nll"], history["val_kl"]), rtol=1e-5)
    # Reconstructions (decoder mean at the posterior mean) beat predicting the mean image.
    recon = model.decoder(model.encoder(xt).mean()).mean().numpy()
    mse_model = np.mean((recon - xt) ** 2)
    mse_mean = np.mean((x.mean(axis=0) - xt) ** 2)
    assert mse_model < 0.6 * mse_mean, (mse_model, mse_mean)


def test_cli_train_writes_a_run_directory(data_dir, tmp_path):
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "tfp_vae.cli",
        "train",
        "--out",
        str(out),
        "--epochs",
        "1",
        "--batch-size",
        "512",
        "--latent-dim",
        "3",
        "--beta",
        "0.5",
        "--verbose",
        "0",
        "--data-dir",
        str(data_dir),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    config = tfp_vae.load_config(out)
    assert (config.latent_dim, config.beta, config.epochs, config.batch_size) == (3, 0.5, 1, 512)
    history = json.loads((out / "history.json").read_text())
    assert set(history) >= {"loss", "nll", "kl", "val_loss", "val_nll", "val_kl"}
    assert (out / "history.csv").read_text().splitlines()[0].startswith("epoch")
    assert 150 < history["val_loss"][0] < 450
    tfp_vae.load(out)


def test_cli_help_and_bad_flags(capsys):
    # In-process (the command's own parser and error path); test_cli.py runs the real command.
    with pytest.raises(SystemExit) as done:
        main(["train", "--help"])
    assert done.value.code == 0
    stdout = capsys.readouterr().out
    for flag in (
        "--latent-dim",
        "--encoder",
        "--likelihood",
        "--kl ",
        "--kl-style",
        "--kl-samples",
        "--beta",
        "--epochs",
        "--batch-size",
        "--learning-rate",
        "--seed",
        "--data-dir",
    ):
        assert flag in stdout, flag
    assert "'none' fits grey levels (default here: {'bernoulli': 'dynamic'}" in " ".join(stdout.split())
    assert main(["train", "--out", "x", "--beta", "-1"]) == 2
    assert "--beta -1.0: must be a finite number >= 0." in capsys.readouterr().err  # the flag typed
