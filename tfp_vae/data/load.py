"""Data sets scaled for a likelihood family: ((x_train, y_train), (x_test, y_test)).

Needs the data set's files (tests/data/test_idx.py makes the same calls):

>>> (x, y), (xt, yt) = load_fashion_mnist(likelihood="beta")    # doctest: +SKIP
>>> x.shape, x.dtype, float(x.min()) > 0                         # doctest: +SKIP
((60000, 28, 28, 1), dtype('float32'), True)
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from tfp_vae.data import streamed
from tfp_vae.data.idx import Splits
from tfp_vae.data.pixels import binarize_images, scale_images
from tfp_vae.data.sources import load_raw
from tfp_vae.data.streamed import ScaledImages, maybe_streamed
from tfp_vae.errors import DataError


def load_dataset(
    name: str = "fashion_mnist",
    likelihood: str = "bernoulli",
    data_dir: str | os.PathLike | None = None,
    binarize: str | None = None,
    seed: int = 0,
    *,
    test_fraction: float = 0.1,
    input_shape: tuple[int, ...] | None = None,
    resize: bool = False,
    train_examples: int = 0,
) -> Splits:
    """((x_train, y_train), (x_test, y_test)): images float32 [N, H, W, C] scaled for `likelihood`.

    name: a built-in data set, "dsprites" / "dsprites_small", an .npz / .npy file or a folder of
      images (see `tfp_vae.data.sources`; test_fraction, input_shape, resize and train_examples are
      passed to it). Labels are None when the source has none.
    binarize (Bernoulli only): None keeps grey levels x/255; "static" binarizes train and test once
    with `seed`; "dynamic" keeps the training images grey (the model re-draws them every batch when
    its config says binarize="dynamic") and binarizes the test images once with `seed`.
    """
    _check_binarize(binarize, likelihood)
    loaded = load_raw(
        name,
        data_dir=data_dir,
        test_fraction=test_fraction,
        input_shape=input_shape,
        resize=resize,
        train_examples=train_examples,
    )
    return prepare(loaded, likelihood, binarize, seed)


def _check_binarize(binarize, likelihood):
    if binarize not in (None, "static", "dynamic"):
        raise DataError(f"binarize={binarize!r}: choose None, 'static' or 'dynamic'.")
    if binarize is not None and likelihood != "bernoulli":
        raise DataError(f"binarize={binarize!r} needs likelihood='bernoulli', not {likelihood!r}.")


def prepare(loaded, likelihood: str = "bernoulli", binarize: str | None = None, seed: int = 0) -> Splits:
    """A source's raw images (`tfp_vae.data.sources.Loaded`) -> ((x, y), (x_test, y_test)) as in
    `load_dataset`: uint8 scaled for `likelihood`, floats in [0, 1] kept (the family's support is
    checked when training), then binarized as asked. Training images whose float32 copy would
    exceed `tfp_vae.data.streamed.MAX_FLOAT_BYTES` (full dSprites) come as `ScaledImages`,
    scaled on access."""
    _check_binarize(binarize, likelihood)
    # x: float32 [N, H, W, C], or `ScaledImages` standing for it (typed Any: both index alike)
    x: Any = maybe_streamed(loaded.x, likelihood) if loaded.x.dtype == np.uint8 else loaded.x
    xt = scale_images(loaded.x_test, likelihood) if loaded.x_test.dtype == np.uint8 else loaded.x_test
    if binarize == "static":
        if isinstance(x, ScaledImages):
            raise DataError(
                f"binarize='static' binarizes every training image once, but these {len(x):,} images "
                f"would take more than {streamed.MAX_FLOAT_BYTES / 2**30:g} GB as floats; use "
                "binarize='dynamic' (redrawn every step) or "
                "fewer --train-examples."
            )
        x = binarize_images(x, seed)
    if binarize is not None:
        xt = binarize_images(xt, seed + 1)

    def copy(y):  # the IDX arrays are shared: copies
        return None if y is None else y.copy()

    return (x, copy(loaded.y)), (xt, copy(loaded.y_test))


def load_fashion_mnist(
    likelihood: str = "bernoulli",
    data_dir: str | os.PathLike | None = None,
    binarize: str | None = None,
    seed: int = 0,
) -> Splits:
    """Fashion-MNIST scaled for `likelihood`; see `load_dataset`. Class names: `CLASS_NAMES`."""
    return load_dataset("fashion_mnist", likelihood, data_dir, binarize, seed)


def load_mnist(
    likelihood: str = "bernoulli",
    data_dir: str | os.PathLike | None = None,
    binarize: str | None = None,
    seed: int = 0,
) -> Splits:
    """MNIST scaled for `likelihood`; see `load_dataset`."""
    return load_dataset("mnist", likelihood, data_dir, binarize, seed)
