"""The stock tfp.layers behaviours our KL attachment corrects (measured on TF 2.21, TFP 0.25).

If one of these starts failing, TFP changed: re-check `tfp_vae.model.posterior` before relaxing it.
"""

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

tfd, tfpl = tfp.distributions, tfp.layers


def _encoder(tail, regularizer=None):
    prior = tfd.MultivariateNormalDiag(loc=tf.zeros(2))
    layers = [
        tf_keras.layers.InputLayer(input_shape=(4,)),
        tf_keras.layers.Dense(tfpl.MultivariateNormalTriL.params_size(2)),
        tfpl.MultivariateNormalTriL(2, activity_regularizer=regularizer(prior) if regularizer else None),
    ]
    return tf_keras.Sequential(layers + ([tail(prior)] if tail else [])), prior


def test_stock_regularizer_counts_kl_twice():
    enc, prior = _encoder(None, lambda p: tfpl.KLDivergenceRegularizer(p, use_exact_kl=True))
    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    q = enc(x)
    mean_kl = float(tf.reduce_mean(tfd.kl_divergence(q, prior)))
    np.testing.assert_allclose(float(tf.add_n(enc.losses)), 2 * mean_kl, rtol=1e-5)


def test_stock_add_loss_adds_batch_sum():
    enc, prior = _encoder(lambda p: tfpl.KLDivergenceAddLoss(p, use_exact_kl=True))
    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    q = enc(x)
    mean_kl = float(tf.reduce_mean(tfd.kl_divergence(q, prior)))
    np.testing.assert_allclose(float(tf.add_n(enc.losses)), 8 * mean_kl, rtol=1e-5)
