"""TensorBoard logs of a training run (`train(..., tensorboard=True)`, `tfp-vae train --tensorboard`).

RUN_DIR/tensorboard/ receives, per epoch (step = epochs completed), the scalars loss, nll, kl and
their val_ versions (nats per example), beta (and capacity, with the capacity schedule); and, at
the first, the last and every `image_every`-th epoch, two images: `reconstructions` (validation images
above the decoder's mean for their posterior mean) and `prior_samples` (decoder means for fixed
draws z ~ p(z)). TensorFlow's `tf.summary` writers need the `tensorboard` package, an optional
extra (`pip install "tfp_vae[tensorboard]"`; then `tensorboard --logdir RUN_DIR/tensorboard`):
`require_tensorboard` says so before any training starts.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras

from tfp_vae.errors import ConfigError

TENSORBOARD_DIR = "tensorboard"
IMAGE_EVERY = 5  # epochs between image summaries


def require_tensorboard() -> None:
    """Raises `ConfigError` naming the fix unless the `tensorboard` package is installed."""
    if importlib.util.find_spec("tensorboard") is None:
        raise ConfigError(
            "tensorboard=True (--tensorboard) needs the tensorboard package, which TensorFlow's "
            'summary writers use; install the optional extra: pip install "tfp_vae[tensorboard]" '
            "(or pip install tensorboard), or train without --tensorboard."
        )


class TensorBoardLogs(tf_keras.callbacks.Callback):
    """Writes the summaries above into `run_dir`/tensorboard/ during `fit`.

    x: a few validation images [n, H, W, C] (scaled for the likelihood) to reconstruct; n <= 8 is plenty.
    seed: fixes the prior draws, so the sample images of different epochs are comparable (a
      stateless draw: training's own random numbers are untouched).
    """

    def __init__(
        self, run_dir: str | os.PathLike, x: np.ndarray, seed: int = 0, image_every: int = IMAGE_EVERY
    ) -> None:
        super().__init__()
        self.logdir = Path(run_dir) / TENSORBOARD_DIR
        self.x = tf.convert_to_tensor(x, tf.float32)
        self.seed = seed
        self.image_every = image_every
        self.writer: Any = None  # a tf.summary writer from on_train_begin on

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.writer = tf.summary.create_file_writer(str(self.logdir))

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        divergence = self.model.encoder.divergence
        scalars = {k: float(v) for k, v in (logs or {}).items()}
        scalars.setdefault("beta", float(divergence.beta.numpy()))
        if divergence.capacity is not None:
            scalars.setdefault("capacity", float(divergence.capacity.numpy()))
        with self.writer.as_default(step=epoch + 1):
            for name, value in scalars.items():
                tf.summary.scalar(name, value)
            last = epoch + 1 == self.params.get("epochs")
            if epoch == 0 or last or (epoch + 1) % self.image_every == 0:
                mean = self.model.decoder(self.model.encoder(self.x).mean()).mean()
                pairs = tf.concat([self.x, tf.cast(mean, tf.float32)], axis=1)  # original above
                tf.summary.image("reconstructions", _unit(pairs), max_outputs=len(self.x))
                # Drawn anew from the current prior (a learned one moves), with the same stateless
                # seed each time so the pictures of different epochs are comparable.
                z = self.model.prior.sample(len(self.x), seed=(self.seed, 1))
                samples = self.model.decoder(z).mean()
                tf.summary.image("prior_samples", _unit(samples), max_outputs=len(self.x))
        self.writer.flush()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.writer is not None:
            self.writer.close()


def _unit(images):
    # Decoder means of the Gaussian families can leave [0, 1]; TensorBoard wants it.
    return tf.clip_by_value(tf.cast(images, tf.float32), 0.0, 1.0)
