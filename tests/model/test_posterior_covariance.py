"""`VAEConfig.posterior`: a diagonal q(z|x) is the same MultivariateNormalTriL layer with a zero
off-diagonal scale, and its one KL loss is the closed form of independent Gaussians."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import tfp_vae
from tfp_vae.errors import ConfigError
from tfp_vae.model.posterior import PosteriorTriL


@pytest.mark.parametrize("style", ["regularizer", "add_loss"])
def test_a_diagonal_posterior_has_independent_latents_and_their_closed_form_kl(style):
    config = tfp_vae.VAEConfig(
        latent_dim=3, hidden_units=(8,), posterior="diagonal", beta=2.0, kl_style=style
    )
    model = tfp_vae.build_vae(config)
    x = np.random.default_rng(0).random((5, 28, 28, 1), dtype=np.float32)
    q = model.encoder(x)
    scale = q.scale.to_dense().numpy()
    off = scale * (1 - np.eye(3))
    assert np.all(off == 0) and np.all(np.diagonal(scale, axis1=1, axis2=2) > 0)
    assert any(isinstance(layer, PosteriorTriL) for layer in model.encoder.layers)
    mu, var = q.mean().numpy(), np.diagonal(scale, axis1=1, axis2=2) ** 2
    kl = 0.5 * np.sum(var + mu**2 - 1 - np.log(var), axis=1)  # KL(N(mu, diag var) || N(0, I))
    np.testing.assert_allclose(float(tf.add_n(model.encoder.losses)), 2.0 * kl.mean(), rtol=1e-5)
    # 2 d posterior parameters instead of d + d (d + 1) / 2
    assert model.encoder.get_layer("posterior_params").kernel.shape[-1] == 6


def test_full_stays_the_default_and_unknown_covariances_are_refused():
    full = tfp_vae.build_vae(tfp_vae.VAEConfig(latent_dim=3, hidden_units=(8,)))
    assert full.encoder.get_layer("posterior_params").kernel.shape[-1] == 3 + 6
    with pytest.raises(ConfigError, match="posterior.*choose one of"):
        tfp_vae.VAEConfig(posterior="diag")
    assert (
        tfp_vae.VAEConfig.from_json(tfp_vae.VAEConfig(posterior="diagonal").to_json()).posterior == "diagonal"
    )
    tf_keras.backend.clear_session()
