import dataclasses
import json

import pytest

from tfp_vae import ConfigError, VAEConfig


def test_defaults_are_the_classic_example():
    cfg = VAEConfig()
    assert (cfg.latent_dim, cfg.encoder, cfg.hidden_units) == (2, "mlp", (256, 64))
    assert (cfg.likelihood, cfg.kl, cfg.beta) == ("bernoulli", "exact", 1.0)
    assert cfg.input_shape == (28, 28, 1)


def test_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        VAEConfig().beta = 2.0


def test_json_round_trip():
    cfg = VAEConfig(
        latent_dim=7,
        encoder="conv",
        likelihood="beta",
        kl="sampled",
        kl_samples=3,
        kl_style="add_loss",
        beta=0.25,
        hidden_units=(10, 20, 30),
        seed=4,
    )
    text = cfg.to_json()
    assert json.loads(text)["hidden_units"] == [10, 20, 30]
    back = VAEConfig.from_json(text)
    assert back == cfg and isinstance(back.input_shape, tuple)


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("latent_dim", 0, ">= 1"),
        ("latent_dim", 2.5, "integer"),
        ("beta", -0.1, ">= 0"),
        ("beta", float("nan"), "finite"),
        ("kl_samples", 0, ">= 1"),
        ("batch_size", 0, ">= 1"),
        ("likelihood", "gauss", "choose one of"),
        ("encoder", "resnet", "choose one of"),
        ("kl", "approx", "choose one of"),
        ("kl_style", "layer", "choose one of"),
        ("input_shape", (28, 28), "channels"),
        ("hidden_units", (), "positive integers"),
        ("learning_rate", 0.0, "> 0"),
        ("binarize", "yes", "None, 'static' or 'dynamic'"),
    ],
)
def test_bad_field_names_itself(field, value, words):
    with pytest.raises(ConfigError) as err:
        VAEConfig(**{field: value})
    assert f"VAEConfig.{field}=" in str(err.value) and words in str(err.value)
    assert isinstance(err.value, ValueError)


def test_binarize_needs_bernoulli():
    with pytest.raises(ConfigError, match="binarize"):
        VAEConfig(likelihood="beta", binarize="static")


def test_unknown_json_field():
    with pytest.raises(ConfigError, match="unknown VAEConfig field"):
        VAEConfig.from_json('{"latent_dims": 3}')
