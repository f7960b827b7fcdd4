"""Warm start (`VAEConfig.init_from`): a new run begins at another run's encoder and decoder."""

import numpy as np
import pytest

import tfp_vae
from tfp_vae import ConfigError, VAEConfig

SMALL = dict(input_shape=(8, 8, 1), hidden_units=(16,), latent_dim=3, batch_size=16, epochs=1)


@pytest.fixture(scope="module")
def images():
    x = (np.random.default_rng(0).random([96, 8, 8, 1]) < 0.5).astype("float32")
    return (x[:64], None), (x[64:], None)


@pytest.fixture(scope="module")
def source_run(images, tmp_path_factory):
    out = tmp_path_factory.mktemp("source")
    tfp_vae.train(VAEConfig(**SMALL, learning_rate=0.01), out_dir=out, data=images, verbose=0)
    return out


def _max_gap(a, b):
    return max(float(np.max(np.abs(u - v))) for u, v in zip(a.get_weights(), b.get_weights()))


def test_new_run_starts_at_the_source_encoder_and_decoder(source_run, images, tmp_path):
    trained = tfp_vae.load(source_run)
    # A learned prior on top of the trained bodies, with a step too small to move them visibly.
    config = VAEConfig(
        **SMALL, prior="mixture", kl="sampled", init_from=str(source_run), learning_rate=1e-9, lr_min=0.0
    )
    model, _ = tfp_vae.train(config, out_dir=tmp_path / "warm", data=images, verbose=0)
    for body in ("encoder", "decoder"):
        assert _max_gap(getattr(model, body), getattr(trained, body)) < 1e-6
    # The same config from scratch starts elsewhere (the check above is not vacuous).
    cold, _ = tfp_vae.train(config.replace(init_from=""), data=images, verbose=0)
    assert _max_gap(cold.encoder, trained.encoder) > 0.01
    # The saved run records where it started and loads like any other.
    assert tfp_vae.load_config(tmp_path / "warm").init_from == str(source_run)


def test_the_same_learned_prior_is_copied_another_starts_as_prior_init_says(images, tmp_path):
    vamp = VAEConfig(
        **SMALL, prior="vamp", prior_components=3, kl="sampled", kl_samples=1, learning_rate=0.01
    )
    tfp_vae.train(vamp, out_dir=tmp_path / "vamp", data=images, verbose=0)
    trained = tfp_vae.load(tmp_path / "vamp")
    # A second stage of the same model: the pseudo-inputs are the source's, not training images.
    stage = vamp.replace(init_from=str(tmp_path / "vamp"), prior_init="data", learning_rate=1e-9, lr_min=0.0)
    model, _ = tfp_vae.train(stage, data=images, verbose=0)
    for part in ("prior_layer", "encoder", "decoder"):
        assert _max_gap(getattr(model, part), getattr(trained, part)) < 1e-6, part
    # Another number of pseudo-inputs: encoder and decoder copied, the prior starts from the images.
    model, _ = tfp_vae.train(stage.replace(prior_components=5), data=images, verbose=0)
    assert _max_gap(model.encoder, trained.encoder) < 1e-6
    u = model.prior_layer.pseudo_inputs().numpy()  # [5, 8, 8, 1]
    x = np.clip(images[0][0], 0.01, 0.99)
    assert np.abs(u[:, None] - x[None]).max(axis=(2, 3, 4)).min(axis=1).max() < 1e-5


def test_missing_source_is_refused_before_any_data_is_read(tmp_path):
    config = VAEConfig(**SMALL, init_from=str(tmp_path / "nowhere"))
    # no data given and a data folder that does not exist: the init_from error must come first
    with pytest.raises(ConfigError, match=r"init_from=.*nowhere.*no such directory"):
        tfp_vae.train(config, data_dir=tmp_path / "no-data", verbose=0)


def test_source_of_another_shape_is_refused_naming_the_difference(source_run):
    config = VAEConfig(**{**SMALL, "latent_dim": 4}, init_from=str(source_run))
    with pytest.raises(ConfigError, match=r"encoder has other weight shapes.*latent_dim: 3 -> 4"):
        tfp_vae.train(config, verbose=0)


def test_a_folder_that_is_not_a_run_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"init_from=.*cannot load its model.*config.json is missing"):
        tfp_vae.train(VAEConfig(**SMALL, init_from=str(tmp_path)), verbose=0)


def test_init_from_must_be_a_string():
    with pytest.raises(ConfigError, match=r"VAEConfig.init_from=3: must be a run directory's path"):
        VAEConfig(init_from=3)


def test_warm_vampprior_experiment_starts_from_the_shipped_fine_tuned_model(monkeypatch):
    from conftest import REPO
    from tfp_vae.cli import config_file
    from tfp_vae.training.warm_start import source_model

    warm = config_file(REPO / "experiments" / "fashion_mnist_vampprior_warm.json")
    scratch = config_file(REPO / "experiments" / "fashion_mnist_vampprior.json")
    # the published VampPrior experiment, continued from the trained model: no KL warm-up, the
    # fine-tuning stage's learning rate and schedule, pseudo-inputs started at training images
    stage = {
        "init_from": "experiments/results/fashion_mnist_density_finetune",
        "kl_schedule": "constant",
        "learning_rate": 1e-4,
        "lr_schedule": "plateau",
        "prior_init": "data",
    }
    assert {k: getattr(warm, k) for k in stage} == stage
    assert warm.replace(**{k: getattr(scratch, k) for k in stage}) == scratch
    monkeypatch.chdir(REPO)  # the file's init_from is relative to the repository's root
    source = source_model(warm)
    assert source.config.prior == "standard" and source.config.init_from.endswith("fashion_mnist_density")


@pytest.mark.parametrize("name", ["density", "vampprior"])
def test_finetune_experiments_continue_their_first_stage(name):
    from conftest import REPO
    from tfp_vae.cli import config_file

    first = config_file(REPO / "experiments" / f"fashion_mnist_{name}.json")
    second = config_file(REPO / "experiments" / f"fashion_mnist_{name}_finetune.json")
    # the shipped first stage, continued at a fifth of the learning rate, halved on plateaus
    stage = {
        "init_from": f"experiments/results/fashion_mnist_{name}",
        "kl_schedule": "constant",
        "learning_rate": 1e-4,
        "lr_schedule": "plateau",
        "early_stopping_patience": 30,
    }
    assert {k: getattr(second, k) for k in stage} == stage
    assert second.replace(**{k: getattr(first, k) for k in stage}) == first
