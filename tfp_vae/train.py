"""`train`: one training run from a `VAEConfig` into a run directory.

>>> model, history = train(VAEConfig(epochs=1), out_dir="runs/quick")   # doctest: +SKIP
>>> history["val_loss"][-1]                                              # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tf_keras

from tfp_vae import runs
from tfp_vae.config import VAEConfig
from tfp_vae.data import load_dataset
from tfp_vae.evaluate import posterior_means
from tfp_vae.model import VAE, build_vae


def load_data_for(config: VAEConfig, data_dir=None):
    """The data set of `config`, scaled for its likelihood and binarized as it says."""
    return load_dataset(config.dataset, config.likelihood, data_dir, config.binarize, config.seed)


def train(config: VAEConfig, out_dir=None, data=None, data_dir=None, verbose=1, callbacks=()):
    """Trains a fresh model for `config`; returns (model, history {metric: [per epoch]}).

    data: ((x_train, y_train), (x_test, y_test)) to use instead of loading `config.dataset`.
    out_dir: if given, receives config.json, model.weights.h5, history.csv and history.json.
    Validation runs on the test split every epoch (history keys val_loss, val_nll, val_kl).
    """
    (x, _), (x_test, _) = data if data is not None else load_data_for(config, data_dir)
    callbacks = list(callbacks)
    if out_dir is not None:
        out_dir = Path(out_dir)
        runs.save_config(config, out_dir)  # first, so even a crashed run says what it was
        callbacks.append(tf_keras.callbacks.CSVLogger(str(out_dir / runs.HISTORY_CSV)))
    model: VAE = build_vae(config)
    if out_dir is not None:  # the untrained model's codes, for the before/after latent picture
        index = np.arange(min(len(x_test), runs.LATENT_EXAMPLES))
        runs.save_latents(posterior_means(model, x_test[index]), index, out_dir)
    model.compile(optimizer=tf_keras.optimizers.Adam(config.learning_rate))
    fit = model.fit(
        x, validation_data=(x_test,), epochs=config.epochs, batch_size=config.batch_size,
        shuffle=True, verbose=verbose, callbacks=callbacks,
    )
    history = {k: [float(v) for v in vals] for k, vals in fit.history.items()}
    if out_dir is not None:
        runs.save(model, out_dir)
        runs.save_history(history, out_dir)
    return model, history
