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
- a `CompiledMeans` remembers the codes of the grid images it has encoded, so the groups of one
  evaluation (`suite.model_metrics` passes one representation to all) share them: all six
  metrics at the reference sizes encode at most the 737,280 images of the grid (about 720,000);
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
from tfp_vae.model.vae import float32_twin

if TYPE_CHECKING:
    from tfp_vae.model.vae import VAE

ENCODE_BATCH = 4096  # distinct images rendered per call of the representation
MODEL_BATCH = 1024  # images per call of the compiled encoder (least CPU time per image here)
MEMO_IMAGES = 1 << 22  # grids up to 4,194,304 images have their codes remembered (`CompiledMeans`)
Representation = Callable[[np.ndarray], np.ndarray]  # uint8 images [n, H, W, C] -> codes [n, d]
Progress = Callable[[int], None] | None  # told the number of images just encoded


class GridMemo:
    """The codes of the images of one grid encoded so far: done bool [len(ds)] and a float32 table
    [len(ds), d] (29 MB for full dSprites at d = 10, made at the first store)."""

    def __init__(self, size: int):
        self.done = np.zeros(size, bool)
        self.table: np.ndarray | None = None

    def missing(self, indices: np.ndarray) -> np.ndarray:
        return indices[~self.done[indices]]

    def store(self, indices: np.ndarray, codes: np.ndarray) -> None:
        if self.table is None:
            self.table = np.zeros((len(self.done), codes.shape[1]), np.float32)
        self.table[indices], self.done[indices] = codes, True

    def codes(self, indices: np.ndarray) -> np.ndarray:
        assert self.table is not None  # stored before it is read
        return self.table[indices].astype(np.float64)


class CompiledMeans:
    """images uint8 [n, H, W, C] -> posterior means float32 [n, d] of the images scaled for the
    model's likelihood; the float32 encoder runs in one plain graph, `batch_size` images per call.

    It remembers the codes of the grid images `encode_indices` encodes with it (a `GridMemo` per
    data set of at most MEMO_IMAGES images), so the metric groups of one evaluation, which share
    one representation, encode each grid image at most once between them. `representation` makes
    a new one per call, so a model trained further never meets the codes of its old weights.
    """

    def __init__(self, model: VAE, batch_size: int = MODEL_BATCH):
        model = float32_twin(model)  # evaluation runs in float32, whatever the model trains in
        self.batch_size, self.likelihood = batch_size, model.config.likelihood
        spec = tf.TensorSpec([None, *model.config.input_shape], tf.float32)

        # jit_compile=False even under a global XLA setting: oneDNN's graph convolutions are faster.
        @tf.function(input_signature=[spec], jit_compile=False)
        def means(x):
            return model.encoder(x, training=False).mean()

        self.means = means
        self._memos: dict[int, tuple[object, GridMemo]] = {}  # id(ds) -> (ds, its memo)

    def __call__(self, images) -> np.ndarray:
        images, step = np.asarray(images), self.batch_size
        return np.concatenate(
            [
                self.means(scale_images(images[i : i + step], self.likelihood)).numpy()
                for i in range(0, max(len(images), 1), step)
            ]
        )

    def memo(self, ds, indices: np.ndarray) -> GridMemo | None:
        """The memo of grid `ds` (its size the product of its factor_sizes), or None for a grid of
        more than MEMO_IMAGES images or sorted `indices` outside it (`ds.images` then names them)."""
        size = int(np.prod(getattr(ds, "factor_sizes", None) or [MEMO_IMAGES + 1]))
        if size > MEMO_IMAGES or (len(indices) and (indices[0] < 0 or indices[-1] >= size)):
            return None
        if id(ds) not in self._memos:  # ds is held beside it, so its id is not reused meanwhile
            self._memos[id(ds)] = (ds, GridMemo(size))
        return self._memos[id(ds)][1]


def compiled_means(model: VAE, batch_size: int = MODEL_BATCH) -> CompiledMeans:
    """A VAE's posterior means as a representation (`CompiledMeans`)."""
    return CompiledMeans(model, batch_size)


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

    Each distinct index is rendered and encoded once, ENCODE_BATCH images per call of `encode`
    (and none a `CompiledMeans` has encoded before); `progress(n)` after each call, n counted in
    the images asked for (the calls' n sum to indices.size), so a bar over them ends full.
    """
    flat = np.asarray(indices).reshape(-1)
    if flat.size == 0:
        raise DataError("no images to encode: indices is empty.")
    distinct, inverse = np.unique(flat, return_inverse=True)  # sorted distinct indices
    memo = encode.memo(ds, distinct) if isinstance(encode, CompiledMeans) else None
    todo = distinct if memo is None else memo.missing(distinct)
    parts, told = [], 0
    for i in range(0, len(todo), ENCODE_BATCH):
        chunk = todo[i : i + ENCODE_BATCH]
        codes = np.asarray(encode(ds.images(chunk)), np.float64)
        if codes.ndim != 2 or len(codes) != len(chunk):
            raise DataError(
                f"the representation must map n images to codes [n, latent_dim]; got {codes.shape} "
                f"for {len(chunk)} images."
            )
        parts.append(codes)
        if progress is not None:
            done = (i + len(chunk)) * len(flat) // len(todo)
            progress(done - told)
            told = done
    if progress is not None and told < len(flat):  # all of them encoded before
        progress(len(flat) - told)
    if memo is None:
        codes = np.concatenate(parts)
    else:
        if parts:
            memo.store(todo, np.concatenate(parts))
        codes = memo.codes(distinct)
    return codes[inverse.reshape(-1)].reshape(*np.shape(indices), codes.shape[1])


def factor_grid(ds) -> tuple[int, ...]:
    """The factor sizes of a data set on a full grid of factor classes, or a `DataError`."""
    sizes = tuple(int(s) for s in getattr(ds, "factor_sizes", ()))
    if not sizes or not hasattr(ds, "images"):
        raise DataError("ds must have factor_sizes and images(indices), like tfp_vae.load_dsprites().")
    return sizes
