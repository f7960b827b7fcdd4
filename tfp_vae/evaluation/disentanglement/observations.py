"""Codes of rendered images: a model as a representation function, and the images at grid
indices encoded in large chunks (the image-based scores encode about a million images each).

The cost is the encoder's convolutions: rendering dSprites runs at some 70,000 images per second,
the reference conv encoder (32-32-64-64) at a few thousand. A VAE's encoder is therefore called
inside one `tf.function` graph traced once for any batch size (oneDNN's convolutions; XLA's are
about 2x slower on this CPU), `MODEL_BATCH` images at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

from tfp_vae.data.pixels import scale_images
from tfp_vae.errors import DataError

if TYPE_CHECKING:
    from tfp_vae.model.vae import VAE

ENCODE_BATCH = 4096  # images rendered per call of the representation
MODEL_BATCH = 256  # images per call of the compiled encoder (256 beat 1024 and 4096 here, 2 cores)
Representation = Callable[[np.ndarray], np.ndarray]  # uint8 images [n, H, W, C] -> codes [n, d]
Progress = Callable[[int], None] | None  # told the number of images just encoded


def compiled_means(model: VAE, batch_size: int = MODEL_BATCH) -> Representation:
    """images uint8 [n, H, W, C] -> posterior means float32 [n, d] of the images scaled for the
    model's likelihood; the encoder runs in one graph, `batch_size` images per call."""
    input_shape = tuple(model.config.input_shape)

    @tf.function(input_signature=[tf.TensorSpec([None, *input_shape], tf.float32)])
    def means(x):
        return model.encoder(x, training=False).mean()

    def encode(images):
        x = scale_images(np.asarray(images), model.config.likelihood)
        return np.concatenate([means(x[i : i + batch_size]).numpy() for i in range(0, len(x), batch_size)])

    return encode


def representation(model) -> Representation:
    """images uint8 [n, H, W, C] -> codes float [n, d]: a `tfp_vae.VAE`'s posterior means of the
    images scaled for its likelihood (`compiled_means`), or `model` itself if it is any other
    callable."""
    if hasattr(model, "encoder") and hasattr(model, "config"):
        return compiled_means(model)
    if callable(model):
        return model
    raise DataError(f"model must be a tfp_vae VAE or a callable images -> codes, got {type(model).__name__}.")


def encode_indices(encode: Representation, ds, indices: np.ndarray, progress: Progress = None) -> np.ndarray:
    """Codes float64 [*indices.shape, d] of the images of `ds` at `indices`, ENCODE_BATCH images
    rendered and encoded per call; `progress(n)` after each call."""
    flat = np.asarray(indices).reshape(-1)
    parts = []
    for i in range(0, len(flat), ENCODE_BATCH):
        chunk = flat[i : i + ENCODE_BATCH]
        parts.append(np.asarray(encode(ds.images(chunk)), np.float64))
        if progress is not None:
            progress(len(chunk))
    codes = np.concatenate(parts)
    if codes.ndim != 2 or len(codes) != len(flat):
        raise DataError(
            f"the representation must map n images to codes [n, latent_dim]; got {codes.shape} "
            f"for {len(flat)} images."
        )
    return codes.reshape(*np.shape(indices), codes.shape[1])


def factor_grid(ds) -> tuple[int, ...]:
    """The factor sizes of a data set on a full grid of factor classes, or a `DataError`."""
    sizes = tuple(int(s) for s in getattr(ds, "factor_sizes", ()))
    if not sizes or not hasattr(ds, "images"):
        raise DataError("ds must have factor_sizes and images(indices), like tfp_vae.load_dsprites().")
    return sizes
