"""The shipped likelihood families (experiments/results/families/<family>/, made by `tfp-vae
train`, `export` and `evaluate` from experiments/families/<family>.json): one run per config,
each that config with its epoch budget, its metrics those of the shipped weights on the common
scale; each one's test ELBO estimated again.

The stated figures are of K = 1000 importance samples; the test draws K = 10 on the same test
images, which takes seconds per family (the discretized logistic mixture's, the slowest, about
ten). Its Monte Carlo noise is a few tenths of a nat per image for the dequantized densities (u is
drawn too) and less for the others, while another family's weights, another scaling or a missing
Jacobian moves a figure by tens to hundreds of nats.
"""

import json
from pathlib import Path

import pytest

import tfp_vae
from tfp_vae import VAEConfig
from tfp_vae.evaluation.shards import weights_digest
from tfp_vae.training.trainer import load_data_for

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = {p.stem: p for p in (ROOT / "experiments" / "families").glob("*.json")}
RESULTS = ROOT / "experiments" / "results" / "families"
SHIPPED = sorted(p for p in RESULTS.iterdir() if p.is_dir()) if RESULTS.is_dir() else []
KIND = {"discretized_logistic": "exact", "bernoulli": "exact"}  # the others: the bound


def test_every_family_config_ships_one_run():
    assert sorted(p.name for p in SHIPPED) == sorted(CONFIGS)


@pytest.mark.parametrize("run", SHIPPED, ids=[p.name for p in SHIPPED])
def test_each_run_is_its_config_and_its_metrics_are_its_weights(run):
    config = tfp_vae.runs.files.load_config(run)
    # the family's config as `tfp-vae train --config ... --epochs E` records it: only the budget
    assert config == VAEConfig.from_json(CONFIGS[run.name].read_text()).replace(epochs=config.epochs)
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "complete" and len(status["epoch_seconds"]) == status["epochs_done"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["weights_sha256"] == weights_digest(run)
    assert metrics["num_samples"] == 1000
    assert metrics["bits_per_dim_kind"] == KIND.get(run.name, "dequantization bound")
    assert (metrics["bits_per_dim_data"] == "8-bit images") == (run.name != "bernoulli")
    # -log P(x) / (784 ln 2) of the IWAE's log P(x) bound, on 8 bits (or 1) per pixel at most
    assert 0 < metrics["bits_per_dim"] < (1 if run.name == "bernoulli" else 8)
    assert metrics["iwae"] > metrics["elbo"]


def test_the_ranking_holds_five_families_on_the_same_test_images():
    ranked, apart = tfp_vae.family_table(SHIPPED)
    assert sorted(ranked.index) == sorted(set(CONFIGS) - {"bernoulli"}) and list(apart.index) == ["bernoulli"]
    assert list(ranked["rank"]) == [1, 2, 3, 4, 5]
    assert ranked["bits_per_dim"].is_monotonic_increasing
    assert ranked["test_images"].nunique() == 1


@pytest.mark.parametrize("run", SHIPPED, ids=[p.name for p in SHIPPED])
def test_a_shipped_family_gives_its_test_elbo_again(run, data_dir):
    stated = json.loads((run / "metrics.json").read_text())
    model = tfp_vae.load(run)
    assert model.optimizer is None  # shipped without Adam's moments
    _, (x_test, _) = load_data_for(model.config, data_dir, run_dir=run)
    again = tfp_vae.evaluate(model, x_test[: stated["test_images"]], num_samples=10, batch_size=500, seed=1)
    assert again["elbo"] == pytest.approx(stated["elbo"], abs=0.5)
    # the IWAE grows with K: K = 10 lies between the ELBO and the stated K = 1000 bound
    assert stated["elbo"] < again["iwae"] < stated["iwae"]
    assert again["bits_per_dim"] > stated["bits_per_dim"]  # a looser bound, more bits
