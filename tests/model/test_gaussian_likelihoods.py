"""The Gaussian decoder families: fixed sigma (the tutorials' MSE, with its constants) and learned sigma."""

import math

import numpy as np
import pytest
import tensorflow as tf

import tfp_vae
from tfp_vae.model.likelihoods import LIKELIHOODS


def test_fixed_sigma_is_scaled_squared_error_plus_constant():
    sigma = 0.3
    model = tfp_vae.build_vae(latent_dim=2, likelihood="normal_fixed", normal_sigma=sigma, seed=0)
    x = np.random.default_rng(0).random((5, 28, 28, 1)).astype(np.float32)
    z = tf.random.normal([5, 2], seed=1)
    p = model.decoder(z)
    mean = p.mean().numpy()
    squared_error = np.sum((x - mean) ** 2, axis=(1, 2, 3))
    expected = squared_error / (2 * sigma**2) + 784 * math.log(sigma * math.sqrt(2 * math.pi))
    np.testing.assert_allclose(-p.log_prob(x), expected, rtol=1e-5)
    np.testing.assert_allclose(p.stddev(), sigma, rtol=1e-6)


def test_learned_sigma_is_a_softplus_per_pixel():
    family = LIKELIHOODS["normal"]
    assert family.params_size((2, 2, 1)) == 8
    params = np.random.default_rng(1).normal(size=(3, 8)).astype(np.float32) * 3
    p = family.distribution(params, (2, 2, 1))
    assert p.batch_shape.as_list() == [3] and p.event_shape.as_list() == [2, 2, 1]
    t = params.reshape(3, 2, 2, 1, 2)
    loc, scale = t[..., 0], np.log1p(np.exp(t[..., 1])) + 1e-3
    x = np.random.default_rng(2).random((3, 2, 2, 1)).astype(np.float32)
    log_p = -0.5 * ((x - loc) / scale) ** 2 - np.log(scale * math.sqrt(2 * math.pi))
    np.testing.assert_allclose(p.log_prob(x), log_p.sum(axis=(1, 2, 3)), rtol=1e-4)
    np.testing.assert_allclose(p.stddev(), scale, rtol=1e-5)


def test_gaussian_families_scale_to_unit_interval_and_refuse_nan():
    raw = np.array([[[[0], [255]]]], np.uint8)
    for name in ("normal", "normal_fixed"):
        np.testing.assert_allclose(tfp_vae.scale_images(raw, name).ravel(), [0.0, 1.0])
        with pytest.raises(tfp_vae.DataError, match="NaN"):
            LIKELIHOODS[name].check(np.array([np.nan], np.float32))


def test_normal_sigma_is_validated_and_round_trips():
    cfg = tfp_vae.VAEConfig(likelihood="normal_fixed", normal_sigma=0.05)
    assert tfp_vae.VAEConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(tfp_vae.ConfigError, match="normal_sigma"):
        tfp_vae.VAEConfig(normal_sigma=0.0)
