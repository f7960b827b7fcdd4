"""Codes of rendered images: a model as a representation function, and the images at grid
indices encoded in large chunks (the image-based scores ask for about a million images each).

The cost is the encoder's convolutions: rendering dSprites runs at over 100,000 images per
second, the reference conv encoder (32-32-64-64) at about 200 CPU microseconds an image (some
80 GFLOP/s per core in float32, near this CPU's peak). So:

- each distinct image is encoded once: the scores draw their images with replacement from a
  finite grid (the FactorVAE score's 970,000 draws from full dSprites' 737,280 images hold about
  540,000 distinct ones, the BetaVAE score's 1,920,000 about 680,000), and a representation is
  deterministic (posterior means);
- a VAE's encoder runs in float32 (`float32_twin`) in one plain `tf.function` graph traced once
  for any batch size, `MODEL_BATCH` images per call: oneDNN's convolutions (XLA's are about 2.2x
  slower on this CPU), and large batches spend the least CPU time per image;
- images are scaled one model batch at a time, so no call makes a fresh float32 copy of a whole
  chunk (64 MB for 4,096 images; fresh memory is faulted in page by page at about 2 ms per MB in
  this VM).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

from tfp_vae.data.pixels import scale_images
from tfp_vae.errors import DataError
from tfp_vae.model.precision import float32_twin

if TYPE_CHECKING:
    from tfp_vae.model.vae import VAE

ENCODE_BATCH = 4096  # distinct images rendered per call of the representation
MODEL_BATCH = 1024  # images per call of the compiled encoder (least CPU time per image here)
Representation = Callable[[np.ndarray], np.ndarray]  # uint8 images [n, H, W, C] -> codes [n, d]
Progress = Callable[[int], None] | None  # told the number of images just encoded


def compiled_means(model: VAE, batch_size: int = MODEL_BATCH) -> Representation:
    """images uint8 [n, H, W, C] -> posterior means float32 [n, d] of the images scaled for the
    model's likelihood; the float32 encoder runs in one plain graph, `batch_size` images per call."""
    model = float32_twin(model)  # evaluation runs in float32, whatever the model trains in
    input_shape, likelihood = tuple(model.config.input_shape), model.config.likelihood

    # jit_compile=False even under a global XLA setting: oneDNN's graph convolutions are faster.
    @tf.function(input_signature=[tf.TensorSpec([None, *input_shape], tf.float32)], jit_compile=False)
    def means(x):
        return model.encoder(x, training=False).mean()

    def encode(images):
        images = np.asarray(images)
        return np.concatenate(
            [
                means(scale_images(images[i : i + batch_size], likelihood)).numpy()
                for i in range(0, max(len(images), 1), batch_size)
            ]
        )

    return encode


def representation(model) -> Representation:
    """images uint8 [n, H, W, C] -> codes float [n, d]: a `tfp_vae.VAE`'s posterior means of the
    images scaled for its likelihood (`compiled_means`), or `model` itself if it is any other
    callable (which must be deterministic: each distinct image is encoded once)."""
    if hasattr(model, "encoder") and hasattr(model, "config"):
        return compiled_means(model)
    if callable(model):
        return model
    raise DataError(f"model must be a tfp_vae VAE or a callable images -> codes, got {type(model).__name__}.")


def encode_indices(encode: Representation, ds, indices: np.ndarray, progress: Progress = None) -> np.ndarray:
    """Codes float64 [*indices.shape, d] of the images of `ds` at `indices`.

    Each distinct index is rendered and encoded once, ENCODE_BATCH images per call of `encode`;
    `progress(n)` after each call, n counted in the images asked for (the calls' n sum to
    indices.size), so a progress bar over the requested images ends full.
    """
    flat = np.asarray(indices).reshape(-1)
    distinct, inverse = np.unique(flat, return_inverse=True)  # sorted distinct indices
    parts, told = [], 0
    for i in range(0, max(len(distinct), 1), ENCODE_BATCH):
        chunk = distinct[i : i + ENCODE_BATCH]
        parts.append(np.asarray(encode(ds.images(chunk)), np.float64))
        if progress is not None:
            done = (i + len(chunk)) * len(flat) // max(len(distinct), 1)
            progress(done - told)
            told = done
    codes = np.concatenate(parts)
    if codes.ndim != 2 or len(codes) != len(distinct):
        raise DataError(
            f"the representation must map n images to codes [n, latent_dim]; got {codes.shape} "
            f"for {len(distinct)} images."
        )
    return codes[inverse.reshape(-1)].reshape(*np.shape(indices), codes.shape[1])


def factor_grid(ds) -> tuple[int, ...]:
    """The factor sizes of a data set on a full grid of factor classes, or a `DataError`."""
    sizes = tuple(int(s) for s in getattr(ds, "factor_sizes", ()))
    if not sizes or not hasattr(ds, "images"):
        raise DataError("ds must have factor_sizes and images(indices), like tfp_vae.load_dsprites().")
    return sizes
