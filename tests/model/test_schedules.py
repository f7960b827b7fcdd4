"""KL schedules: beta warm-up and the capacity objective move tf.Variables, never retrace, and
leave the constant-schedule loss exactly as it was."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

import tfp_vae
from conftest import grey_images
from tfp_vae.cli import build_parser, config_from_args

tfd = tfp.distributions


def _model(**kw):
    cfg = tfp_vae.VAEConfig(latent_dim=2, hidden_units=(16,), seed=3, **kw)
    return tfp_vae.build_vae(cfg)


def _mean_kl(model, x):
    return float(tf.reduce_mean(tfd.kl_divergence(model.encoder(x), model.prior)))


@pytest.mark.parametrize("style", ["regularizer", "add_loss"])
def test_changing_beta_changes_the_penalty_without_retracing(style):
    model = _model(kl_style=style, beta=1.0)
    x = grey_images(8, seed=1)
    penalty = tf.function(lambda x: model.loss_terms(x)["penalty"])
    kl = _mean_kl(model, x)
    for beta in (1.0, 0.25, 3.0):
        model.encoder.divergence.beta.assign(beta)
        np.testing.assert_allclose(float(penalty(x)), beta * kl, rtol=1e-6)
    assert penalty.experimental_get_tracing_count() == 1


@pytest.mark.parametrize("style", ["regularizer", "add_loss"])
def test_capacity_penalty_is_beta_times_abs_kl_minus_c(style):
    model = _model(kl_style=style, beta=2.0, kl_schedule="capacity", capacity_max=5.0)
    x = grey_images(8, seed=2)
    penalty = tf.function(lambda x: model.loss_terms(x)["penalty"])
    kl = _mean_kl(model, x)
    # C below and above the batch's KL: the penalty is 2 |KL - C| on both sides.
    for capacity in (0.0, kl / 2, kl + 3.0):
        model.encoder.divergence.capacity.assign(capacity)
        np.testing.assert_allclose(float(penalty(x)), 2.0 * abs(kl - capacity), rtol=1e-5, atol=1e-5)
    assert penalty.experimental_get_tracing_count() == 1


def test_plain_penalty_keeps_the_sign_of_a_sampled_kl():
    """No absolute value outside capacity mode: a negative batch KL gives a negative penalty."""
    model = _model(kl="sampled", kl_samples=1, beta=1.0)
    divergence = model.encoder.divergence
    assert divergence.capacity is None
    np.testing.assert_allclose(float(divergence.weighted(tf.constant(-0.5), 1.0)), -0.5)
    capacity = _model(kl="sampled", kl_schedule="capacity", capacity_max=0.0).encoder.divergence
    np.testing.assert_allclose(float(capacity.weighted(tf.constant(-0.5), 1.0)), 0.5)


def test_warmup_walks_beta_per_epoch_without_retracing():
    x = grey_images(64, seed=4)
    traces = {}
    for schedule in ("constant", "warmup"):
        model = _model(beta=3.0, kl_schedule=schedule, kl_schedule_epochs=3)
        model.compile(optimizer=tf_keras.optimizers.Adam(1e-3))
        history = model.fit(x, epochs=4, batch_size=32, verbose=0).history
        traces[schedule] = model._xla("update_block").experimental_get_tracing_count()
    np.testing.assert_allclose(history["beta"], [1.0, 2.0, 3.0, 3.0])
    assert float(model.encoder.divergence.beta) == 3.0
    # fit's compiled block of steps is traced once (the optimizer's slots are made before its first
    # call) whether beta moves or not: no retrace per epoch.
    assert traces["warmup"] == traces["constant"] == 1


def test_warmup_follows_the_optimizers_step_count():
    """A model whose optimizer has taken one epoch of steps continues the ramp from there, as a
    resumed run does (the step count lives in the checkpoint), whatever initial_epoch says."""
    model = _model(beta=2.0, kl_schedule="warmup", kl_schedule_epochs=4)
    model.compile()
    model.optimizer.build(model.trainable_variables)
    model.optimizer.iterations.assign(1)  # one epoch of 1 step done
    history = model.fit(grey_images(32, seed=5), epochs=2, batch_size=32, verbose=0).history
    np.testing.assert_allclose(history["beta"], [1.0, 1.5])


def test_warmup_moves_every_step():
    """Four steps per epoch: beta after step t (0-based) is beta * (t + 1) / (4 N), set by the
    compiled step itself from the optimizer's step count."""
    model = _model(beta=1.0, kl_schedule="warmup", kl_schedule_epochs=2)
    seen = []
    probe = tf_keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda b, logs: seen.append(float(model.encoder.divergence.beta))
    )
    model.compile(optimizer=tf_keras.optimizers.Adam(0.0), steps_per_execution=1)
    model.fit(grey_images(32, seed=8), epochs=2, batch_size=8, verbose=0, callbacks=[probe])
    np.testing.assert_allclose(seen, [(t + 1) / 8 for t in range(8)], rtol=1e-6)


def test_capacity_grows_to_c_max_and_is_recorded():
    model = _model(beta=1.5, kl_schedule="capacity", kl_schedule_epochs=2, capacity_max=8.0)
    model.compile()
    history = model.fit(grey_images(32, seed=6), epochs=3, batch_size=32, verbose=0).history
    np.testing.assert_allclose(history["capacity"], [4.0, 8.0, 8.0])
    assert "beta" not in history and float(model.encoder.divergence.beta) == 1.5


def test_constant_schedule_records_nothing_extra():
    model = _model(beta=0.5)
    model.compile()
    history = model.fit(grey_images(32, seed=7), epochs=1, batch_size=32, verbose=0).history
    assert set(history) == {"loss", "nll", "kl"}
    assert float(model.encoder.divergence.beta) == 0.5


@pytest.mark.parametrize(
    "change, message",
    [
        ({"kl_schedule": "cosine"}, "unknown KL schedule"),
        ({"kl_schedule_epochs": 0}, "kl_schedule_epochs"),
        ({"capacity_max": -1.0}, "capacity_max"),
    ],
)
def test_bad_schedule_settings_are_named(change, message):
    with pytest.raises(tfp_vae.ConfigError, match=message):
        tfp_vae.VAEConfig(**change)


def test_schedule_fields_round_trip_and_have_cli_flags():
    args = build_parser().parse_args(
        [
            "train",
            "--out",
            "x",
            "--kl-schedule",
            "capacity",
            "--kl-schedule-epochs",
            "7",
            "--capacity-max",
            "12.5",
        ]
    )
    cfg = config_from_args(args)
    assert (cfg.kl_schedule, cfg.kl_schedule_epochs, cfg.capacity_max) == ("capacity", 7, 12.5)
    assert tfp_vae.VAEConfig.from_json(cfg.to_json()) == cfg
