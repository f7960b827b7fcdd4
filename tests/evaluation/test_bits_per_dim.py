"""bits_per_dim on the common 8-bit scale: the dequantization bound of a density against an
independent Monte Carlo computation (numpy), the exact figure of the discretized family, the kinds
metrics.json records, and training on dequantized images."""

import json
import math

import numpy as np
import pytest
import tensorflow as tf

import tfp_vae
from tfp_vae.evaluation.elbo import evaluate
from tfp_vae.evaluation.shards import evaluate_run

SHAPE, D, LATENT = (2, 2, 1), 4, 1
SIGMA = 0.0015  # below a bin (1/256 = 0.0039): the density changes a lot within each bin
W_SCALE = 0.004  # the images' spread over z: about one bin


def _ppca_on_levels(seed=0):
    """(model, images scaled x / 255, levels [N, D], W, b): p(z) = N(0, 1), p(y|z) = N(Wz + b,
    sigma^2 I) on y in [0, 1], images drawn from it and quantized to 8 bits; q(z|x) is the exact
    posterior at the bin centre (x + 0.5) / 256, widened 1.5 times."""
    rng = np.random.default_rng(seed)
    w, b = rng.normal(size=(D, LATENT)) * W_SCALE, np.full(D, 0.5) + rng.normal(size=D) * 0.01
    config = tfp_vae.VAEConfig(
        encoder="linear", likelihood="normal_fixed", normal_sigma=SIGMA, latent_dim=LATENT, input_shape=SHAPE
    )
    model = tfp_vae.build_vae(config)
    model.decoder.get_layer("likelihood_params").set_weights([w.T, b])
    s = np.linalg.inv(np.eye(LATENT) + w.T @ w / SIGMA**2)
    # Posterior mean A (y - b); the encoder sees x / 255, and y = x/255 * 255/256 + 0.5/256.
    a = s @ w.T / SIGMA**2
    kernel = np.concatenate([(a * 255 / 256).T, np.zeros((D, 1))], axis=1)
    bias = np.concatenate([a @ (0.5 / 256 - b), [np.log(np.expm1(1.5 * np.sqrt(s[0, 0])))]])
    model.encoder.get_layer("posterior_params").set_weights([kernel, bias])
    y = rng.normal(size=(6, LATENT)) @ w.T + b + SIGMA * rng.normal(size=(6, D))
    levels = np.clip(np.floor(y * 256), 0, 255).astype(np.uint8)
    images = tfp_vae.scale_images(levels.reshape(-1, *SHAPE), "normal_fixed")
    return model, images, levels.astype(np.float64), w, b


def _numpy_bounds(levels, w, b, draws=400_000, seed=7):
    """Per image, in nats, by Monte Carlo over u ~ U[0, 1)^D with the exact marginal
    p(y) = N(b, W W^T + sigma^2 I): (log P(x), E_u log p(y_u) - D log 256), P(x) = 256^-D E_u p(y_u)."""
    rng = np.random.default_rng(seed)
    cov = w @ w.T + SIGMA**2 * np.eye(D)
    inv, (_, logdet) = np.linalg.inv(cov), np.linalg.slogdet(cov)
    exact, per_image_u = [], []
    for v in levels:
        y = (v + rng.random((draws, D))) / 256
        r = y - b
        log_p = -0.5 * (np.einsum("ni,ij,nj->n", r, inv, r) + logdet + D * math.log(2 * math.pi))
        top = log_p.max()
        exact.append(top + math.log(np.mean(np.exp(log_p - top))) - D * math.log(256))
        per_image_u.append(np.mean(log_p) - D * math.log(256))
    return np.array(exact), np.array(per_image_u)


def test_dequantization_bound_against_an_independent_monte_carlo_computation():
    model, images, levels, w, b = _ppca_on_levels()
    exact, per_image_u = _numpy_bounds(levels, w, b)
    assert np.mean(exact - per_image_u) > 0.5  # per-pixel u inside the bins matters here
    to_bits = -1 / (D * math.log(2))
    tight = evaluate(model, images, num_samples=4000, batch_size=6, seed=0)
    assert (
        tight["bits_per_dim_kind"] == "dequantization bound" and tight["bits_per_dim_data"] == "8-bit images"
    )
    # A bound (up to Monte Carlo noise) that the joint (u, z) importance samples make nearly tight:
    # well above what any one u per image could reach.
    assert tight["bits_per_dim"] >= to_bits * np.mean(exact) - 0.01
    assert tight["bits_per_dim"] == pytest.approx(to_bits * np.mean(exact), abs=0.03)
    assert tight["bits_per_dim"] < to_bits * np.mean(per_image_u) - 0.05
    one = evaluate(model, images, num_samples=1, batch_size=6, seed=0)  # the joint ELBO: looser
    assert one["bits_per_dim"] > tight["bits_per_dim"] + 0.05
    # Its own scale (the density of x / 255, no Jacobian) is another number altogether.
    assert tight["bits_per_dim"] != pytest.approx(-tight["iwae"] / (D * math.log(2)), abs=1.0)


def test_discretized_family_is_exact_and_metrics_json_records_the_kind(tmp_path):
    raw = np.random.default_rng(0).integers(0, 256, size=(10, 4, 4, 1)).astype(np.uint8)
    kinds = {}
    for family, kwargs in (("discretized_logistic", {}), ("beta", {"dequantize": "uniform"})):
        model = tfp_vae.build_vae(likelihood=family, input_shape=(4, 4, 1), hidden_units=(8,), **kwargs)
        run = tfp_vae.save(model, tmp_path / family)
        x = tfp_vae.scale_images(raw, family)
        metrics, path, _ = evaluate_run(tfp_vae.load(run), run, x, num_samples=8, batch_size=5, verbose=0)
        record = json.loads(path.read_text())
        kinds[family] = record["bits_per_dim_kind"]
        assert record["bits_per_dim_data"] == "8-bit images"
        assert record["bits_per_dim"] == metrics["bits_per_dim"] > 0
        assert record["bits_per_dim_standard_error"] > 0
        if family == "discretized_logistic":  # a probability already: bits = -iwae / (D ln 2)
            assert metrics["bits_per_dim"] == pytest.approx(-metrics["iwae"] / (16 * math.log(2)), rel=1e-6)
    assert kinds == {"discretized_logistic": "exact", "beta": "dequantization bound"}


def test_dequantized_training_draws_new_noise_inside_each_bin(tmp_path):
    raw = np.random.default_rng(1).integers(0, 256, size=(64, 4, 4, 1)).astype(np.uint8)
    x = tfp_vae.scale_images(raw, "beta")  # bin centres; dequantized images are (v + u) / 256
    config = tfp_vae.VAEConfig(
        likelihood="beta", dequantize="uniform", input_shape=(4, 4, 1), hidden_units=(8,), epochs=1
    )
    model = tfp_vae.build_vae(config)
    first, second = (model.training_images(tf.constant(x)).numpy() for _ in range(2))
    np.testing.assert_array_equal(np.floor(first * 256), raw)  # u in [0, 1): the same grey level
    assert np.all((first > 0) & (first < 1)) and not np.allclose(first, second)
    assert abs(float(np.mean(first * 256 - raw)) - 0.5) < 0.02  # u ~ U[0, 1)
    trained, history = tfp_vae.train(config, out_dir=tmp_path, data=((x, None), (x[:16], None)), verbose=0)
    assert np.isfinite(history["loss"][0])
    assert json.loads((tmp_path / "config.json").read_text())["dequantize"] == "uniform"
    with pytest.raises(tfp_vae.DataError, match="needs 8-bit images"):
        tfp_vae.train(config, data=((x + 1e-3, None), (x[:16], None)), verbose=0)
