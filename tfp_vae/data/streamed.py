"""Training images too large to hold as floats: uint8 kept, scaled for the family on access.

Full dSprites holds 729,907 training images of 64x64: 2.8 GB as uint8, 12 GB as float32. `prepare`
gives such a split (float32 copy above `MAX_FLOAT_BYTES`) as `ScaledImages`, which behaves like the
float32 array it stands for wherever the toolkit reads training images: `len`, `.shape`, slicing
(a lazy view), indexing with integer arrays and `np.asarray` (both return the scaled floats of
just those images, computed by the same `scale_images` as the eager path, so bit-identical).
`tfp_vae.training.reproducible.shuffled_batches` gathers and scales its batches on the NumPy side.

>>> raw = np.array([0, 128, 255], np.uint8).reshape(3, 1, 1, 1)
>>> x = ScaledImages(raw, "beta")
>>> len(x), x.shape, x.dtype
(3, (3, 1, 1, 1), dtype('float32'))
>>> x[np.array([2, 0])].ravel().tolist(), np.asarray(x[1:]).ravel().tolist()
([0.998046875, 0.001953125], [0.501953125, 0.998046875])
"""

from __future__ import annotations

import numpy as np

from tfp_vae.data.pixels import scale_images
from tfp_vae.errors import DataError

MAX_FLOAT_BYTES = 2 << 30  # a training split whose float32 copy is larger stays uint8 (`ScaledImages`)


class ScaledImages:
    """uint8 images [N, H, W, C] standing for `scale_images(raw, likelihood)` without the copy."""

    dtype = np.dtype(np.float32)

    def __init__(self, raw: np.ndarray, likelihood: str):
        if raw.dtype != np.uint8 or raw.ndim != 4:
            raise DataError(f"ScaledImages needs uint8 images [N, H, W, C], got {raw.dtype} {raw.shape}.")
        self.raw = raw
        self.likelihood = likelihood

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.raw.shape)

    @property
    def ndim(self) -> int:
        return self.raw.ndim

    def __len__(self) -> int:
        return len(self.raw)

    def __getitem__(self, index):
        """A slice gives a lazy view (still `ScaledImages`); anything else the scaled floats."""
        if isinstance(index, slice):
            return ScaledImages(self.raw[index], self.likelihood)
        return scale_images(self.raw[index], self.likelihood)

    def __array__(self, dtype=None, copy=None):
        # Materialises every image: callers use it on small views (validation, samples) only.
        out = scale_images(self.raw, self.likelihood)
        return out if dtype is None else out.astype(dtype, copy=False)

    def __repr__(self) -> str:
        return f"ScaledImages({self.shape}, uint8 scaled for {self.likelihood!r} on access)"


def maybe_streamed(raw: np.ndarray, likelihood: str) -> ScaledImages | np.ndarray:
    """`raw` (uint8) scaled for `likelihood`, or as `ScaledImages` if its float32 copy would
    exceed `MAX_FLOAT_BYTES`."""
    if raw.size * 4 > MAX_FLOAT_BYTES:
        return ScaledImages(raw, likelihood)
    return scale_images(raw, likelihood)
