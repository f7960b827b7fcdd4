"""The fast training path (XLA-compiled step, several steps per call) computes exactly the ELBO.

`test_exact_elbo.py` proves `loss_terms`; these prove that what `fit` actually runs, the compiled
`loss_and_gradients` / `update`, is that same objective and its gradient, for every body and
likelihood, with the short last batch the XLA step must also handle.
"""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

import tfp_vae
from conftest import grey_images
from tfp_vae.model.posterior import posterior_distribution

tfd, tfpl = tfp.distributions, tfp.layers


@pytest.mark.parametrize("latent_dim", [1, 2, 5])
def test_posterior_is_bit_identical_to_stock_layer(latent_dim):
    """`posterior_distribution` (XLA-compilable) builds the stock layer's distribution exactly."""
    size = tfpl.MultivariateNormalTriL.params_size(latent_dim)
    params = tf.constant(np.random.default_rng(latent_dim).normal(0, 4, size=(6, size)), tf.float32)
    ours, stock = posterior_distribution(params, latent_dim), tfpl.MultivariateNormalTriL.new(params, latent_dim)
    assert isinstance(ours, tfd.MultivariateNormalTriL)
    np.testing.assert_array_equal(ours.loc, stock.loc)
    np.testing.assert_array_equal(ours.scale.to_dense(), stock.scale.to_dense())


def _independent_loss(model, x, z, beta):
    """mean_B[-log p(x|z) + beta KL] from scratch for the draw z, reparameterised through the
    encoder (z = loc + L eps with the eps that produced z), so its gradient is the ELBO's."""
    q = model.encoder(x)
    scale = q.scale.to_dense()
    eps = tf.stop_gradient(tf.linalg.triangular_solve(scale, (z - q.loc)[..., None]))
    z_same = q.loc + tf.squeeze(scale @ eps, -1)
    prior = tfd.MultivariateNormalDiag(loc=tf.zeros(q.event_shape))
    return tf.reduce_mean(-model.decoder(z_same).log_prob(x) + beta * tfd.kl_divergence(q, prior))


# Small conv bodies: XLA compile time grows with the graph, and these tests run on 2 CPUs.
SMALL_CONV = dict(conv_filters=4, conv_dense=16)


@pytest.mark.parametrize("encoder, likelihood", [("mlp", "bernoulli"), ("conv", "beta")])
def test_compiled_gradient_is_the_elbo_gradient(encoder, likelihood):
    beta = 0.7
    model = tfp_vae.build_vae(tfp_vae.VAEConfig(encoder=encoder, likelihood=likelihood, beta=beta,
                                                latent_dim=3, kl_style="add_loss", seed=2,
                                                **SMALL_CONV))
    x = grey_images(7, seed=8, likelihood=likelihood)
    terms, grads = model._xla("loss_and_gradients")(x)
    with tf.GradientTape() as tape:
        indep = _independent_loss(model, x, tf.constant(terms["z"]), beta)
    np.testing.assert_allclose(float(terms["loss"]), float(indep), rtol=1e-5)
    for got, want in zip(grads, tape.gradient(indep, model.trainable_variables)):
        np.testing.assert_allclose(got, want, rtol=2e-3, atol=2e-5)


def test_compiled_update_is_one_adam_step():
    """`update` applies Adam once: its first step moves every weight by lr * g / (|g| + eps),
    i.e. by almost exactly lr wherever the gradient is not tiny, and never by more."""
    lr = 1e-2
    model, twin = (tfp_vae.build_vae(tfp_vae.VAEConfig(seed=3)) for _ in range(2))
    model.compile(optimizer=tf_keras.optimizers.Adam(lr))
    metrics = model._xla("update")(tf.constant(grey_images(5, seed=9)))
    assert int(model.optimizer.iterations.numpy()) == 1
    assert np.isfinite(float(metrics["loss"])) and float(metrics["kl"]) >= 0
    for before, after in zip(twin.trainable_variables, model.trainable_variables):
        step = np.abs(after.numpy() - before.numpy())
        assert step.max() <= lr * (1 + 1e-5)
        assert np.median(step[step > 0]) > 0.9 * lr


@pytest.mark.parametrize("encoder, likelihood, kl, style", [
    ("mlp", "bernoulli", "exact", "regularizer"),
    ("conv", "beta", "sampled", "add_loss"),
])
def test_fit_runs_compiled_blocks_with_a_short_last_batch(encoder, likelihood, kl, style):
    """fit's default path (steps_per_execution blocks, XLA step) on 70 images in batches of 16:
    five steps, the last of 6 images; the epoch figures are example-weighted means."""
    model = tfp_vae.build_vae(tfp_vae.VAEConfig(encoder=encoder, likelihood=likelihood, kl=kl,
                                                kl_style=style, seed=4, **SMALL_CONV))
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-3))
    assert model._steps_per_execution.numpy() == tfp_vae.model.STEPS_PER_EXECUTION
    x = grey_images(70, seed=10, likelihood=likelihood)
    before = [v.numpy().copy() for v in model.trainable_variables]
    history = model.fit(x, epochs=2, batch_size=16, verbose=0, validation_data=(x[:9],)).history
    assert int(model.optimizer.iterations.numpy()) == 2 * 5
    assert all(np.isfinite(history[k]).all() for k in ("loss", "nll", "kl", "val_loss"))
    assert history["loss"][1] < history["loss"][0]
    assert any(np.any(v.numpy() != b) for v, b in zip(model.trainable_variables, before))


def test_dynamic_binarization_draws_fresh_binary_images_in_the_compiled_step():
    model = tfp_vae.build_vae(tfp_vae.VAEConfig(binarize="dynamic", seed=5))
    x = np.full([64, 28, 28, 1], 0.3, np.float32)
    draws = [tf.function(model.training_images, jit_compile=True)(x).numpy() for _ in range(2)]
    for d in draws:
        assert set(np.unique(d)) <= {0.0, 1.0}
        assert abs(d.mean() - 0.3) < 0.01  # 50,176 pixels: sd of the mean ~0.002
    assert np.mean(draws[0] != draws[1]) > 0.3  # independent draws differ at 2 * 0.3 * 0.7 = 42%
