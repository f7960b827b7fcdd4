"""`VAEConfig.precision="mixed_bfloat16"` (issue 25): the bodies compute in bfloat16, while the loss,
KL, log-likelihoods, gradients and optimizer state stay float32, and evaluation runs in float32."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import tfp_vae
from conftest import grey_images
from tfp_vae.errors import SlowPrecisionWarning
from tfp_vae.model import precision

SMALL = dict(encoder="conv", conv_filters=4, conv_dense=16, latent_dim=3, seed=2)


def _twins():
    """(float32 model, bf16 model) with the same weights and sampler state."""
    f32 = tfp_vae.build_vae(tfp_vae.VAEConfig(**SMALL))
    bf16 = tfp_vae.build_vae(tfp_vae.VAEConfig(precision="mixed_bfloat16", **SMALL))
    bf16.set_weights(f32.get_weights())
    bf16.sampler.reset_from_seed(2), f32.sampler.reset_from_seed(2)
    return f32, bf16


def test_bf16_bodies_float32_terms_and_a_loss_close_to_float32s():
    f32, bf16 = _twins()
    assert {layer.compute_dtype for layer in bf16.encoder.layers[:-3]} == {"bfloat16"}
    assert all(v.dtype == tf.float32 for v in bf16.trainable_variables)
    x = tf.constant(grey_images(16, seed=3, likelihood="bernoulli") > 0.5, tf.float32)
    a, b = f32.loss_terms(x), bf16.loss_terms(x)
    for name in ("nll", "kl", "penalty", "loss"):
        assert b[name].dtype == tf.float32, name
    # bfloat16 keeps 8 bits of mantissa: the bodies' outputs differ by ~0.4%; the loss by less.
    np.testing.assert_allclose(float(b["loss"]), float(a["loss"]), rtol=2e-2)
    np.testing.assert_allclose(b["kl"].numpy(), a["kl"].numpy(), rtol=5e-2, atol=1e-3)
    assert np.any(b["z"].numpy() != a["z"].numpy())  # it really computed in bfloat16


def test_bf16_training_keeps_float32_optimizer_state_and_evaluates_in_float32():
    f32, bf16 = _twins()
    bf16.compile(optimizer=tf_keras.optimizers.Adam(1e-3))
    x = (grey_images(64, seed=4) > 0.5).astype(np.float32)
    history = bf16.fit(x, epochs=1, batch_size=16, verbose=0).history
    assert np.isfinite(history["loss"]).all() and int(bf16.optimizer.iterations.numpy()) == 4
    assert {v.dtype for v in bf16.optimizer.variables} == {tf.float32, tf.int64}
    # Evaluation runs the float32 copy of the trained weights: exactly a float32 model's figures.
    f32.set_weights(bf16.get_weights())
    got = tfp_vae.evaluate(bf16, x[:20], num_samples=8, seed=1)
    want = tfp_vae.evaluate(f32, x[:20], num_samples=8, seed=1)
    assert got["iwae"] == want["iwae"] and got["elbo"] == want["elbo"]


def test_bf16_on_a_cpu_without_bfloat16_instructions_warns_and_float32_does_not(monkeypatch, recwarn):
    assert precision.native_bfloat16("processor : 0\nmodel name : a CPU") is None  # no flags line
    monkeypatch.setattr(precision, "native_bfloat16", lambda: False)
    with pytest.warns(SlowPrecisionWarning, match="precision='float32'"):
        tfp_vae.build_vae(tfp_vae.VAEConfig(precision="mixed_bfloat16", **SMALL))
    monkeypatch.setattr(precision, "native_bfloat16", lambda: True)
    tfp_vae.build_vae(tfp_vae.VAEConfig(precision="mixed_bfloat16", **SMALL))
    monkeypatch.setattr(precision, "native_bfloat16", lambda: False)
    tfp_vae.build_vae(tfp_vae.VAEConfig(**SMALL))
    assert not [w for w in recwarn if issubclass(w.category, SlowPrecisionWarning)]
