"""dSprites (Matthey et al. 2017), re-rendered here from its published definition.

64x64 binary images of one white shape on black over the full grid of factors, in the published
order (y varying fastest; image index = row-major over the factor classes):

    shape        3   square, ellipse, heart
    scale        6   linspace(0.5, 1, 6)
    orientation 40   linspace(0, 2 pi, 40), counter-clockwise
    pos_x       32   linspace(0, 1, 32), left to right
    pos_y       32   linspace(0, 1, 32), top to bottom

This is a faithful re-rendering of that definition, not the original file (no network here):
pixels are tested at their centres (no anti-aliasing), and position step k puts the shape's centre
on pixel 16 + k, so one position step is exactly one pixel and every shape stays inside the frame.
At scale 1 the square is 19 pixels wide (about 0.3 of the frame). Images are rendered on
demand from 3 x 6 x 40 = 720 base masks (29x29 each, about 0.6 MB, rendered once per process in
well under a second) pasted at their position, so loading takes no disk and little memory; only
the images asked for are ever materialised.

Images are uint8 {0, 255}, like every other source, so `tfp_vae.scale_images(x, "bernoulli")`
gives binary floats {0, 1} (and other families their own scaling).

>>> ds = load_dsprites("small")
>>> len(ds), ds.factor_sizes
(11520, (3, 6, 10, 8, 8))
>>> ds.images([0, 1]).shape, ds.factors([1]).tolist()
((2, 64, 64, 1), [[0, 0, 0, 0, 1]])
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import numpy.typing as npt

from tfp_vae.errors import DataError

IMAGE_SIZE = 64
FACTOR_NAMES = ("shape", "scale", "orientation", "pos_x", "pos_y")
SHAPE_NAMES = ("square", "ellipse", "heart")
FULL_SIZES = (3, 6, 40, 32, 32)
FULL_VALUES = (
    np.arange(3, dtype=np.float64),  # the shape's class (published values 1, 2, 3)
    np.linspace(0.5, 1.0, 6),
    np.linspace(0.0, 2 * np.pi, 40),
    np.linspace(0.0, 1.0, 32),
    np.linspace(0.0, 1.0, 32),
)
HALF_SIDE = 9.5  # pixels: half the square's side at scale 1 (sides 9, 11, ..., 19: all distinct)
PATCH = 29  # base masks are PATCH x PATCH, centred on pixel PATCH // 2
FIRST_CENTRE = 16  # pixel of the shape's centre at position class 0 (pixel 47 at class 31)

# A variant is a sub-grid of the full grid: for each factor, the full grid's classes it keeps.
# "small" keeps every 4th orientation and position (3 x 6 x 10 x 8 x 8 = 11,520 images), so its
# images are exactly the full grid's images at those points.
VARIANTS = {
    "full": tuple(np.arange(n) for n in FULL_SIZES),
    "small": (np.arange(3), np.arange(6), np.arange(0, 40, 4), np.arange(1, 32, 4), np.arange(1, 32, 4)),
}


def _square(u, v):
    return (np.abs(u) <= 1) & (np.abs(v) <= 1)


def _ellipse(u, v):
    return (u / 1.2) ** 2 + (v / 0.6) ** 2 <= 1


def _heart(u, v):
    # The implicit heart (x^2 + y^2 - 1)^3 <= x^2 y^3 spans x in [-1.14, 1.14], y in [-1, 1.23];
    # rescaled to width 2 and shifted so its bounding box is centred on the origin.
    x, y = 1.14 * u, 1.14 * v + 0.115
    return (x * x + y * y - 1) ** 3 - x * x * y**3 <= 0


SHAPES = {"square": _square, "ellipse": _ellipse, "heart": _heart}


def render_mask(shape: str, scale: float, angle: float) -> np.ndarray:
    """bool [PATCH, PATCH]: `shape` at `scale`, turned counter-clockwise by `angle` (radians),
    centred on the middle pixel. A pixel is on when its centre, turned back, lies in the shape."""
    offsets = np.arange(PATCH) - PATCH // 2
    dx = offsets[None, :].astype(np.float64)  # columns, to the right
    dy = -offsets[:, None].astype(np.float64)  # rows, upwards (image rows grow downwards)
    c, s = np.cos(angle), np.sin(angle)
    u = (c * dx + s * dy) / (scale * HALF_SIDE)
    v = (-s * dx + c * dy) / (scale * HALF_SIDE)
    return SHAPES[shape](u, v)


@functools.lru_cache(maxsize=1)
def base_masks() -> np.ndarray:
    """uint8 {0, 255} [3, 6, 40, PATCH, PATCH]: every shape, scale and orientation, centred."""
    masks = np.zeros(FULL_SIZES[:3] + (PATCH, PATCH), np.uint8)
    for i, name in enumerate(SHAPE_NAMES):
        for j, scale in enumerate(FULL_VALUES[1]):
            for k, angle in enumerate(FULL_VALUES[2]):
                masks[i, j, k] = np.where(render_mask(name, scale, angle), 255, 0)
    masks.setflags(write=False)
    return masks


@dataclasses.dataclass(frozen=True, eq=False)  # eq=False: the grid holds numpy arrays
class DSprites:
    """One variant of the dSprites grid; images rendered on demand (see the module docstring)."""

    variant: str
    grid: tuple  # per factor: the full grid's class indices this variant keeps

    factor_names = FACTOR_NAMES
    shape_names = SHAPE_NAMES

    @property
    def factor_sizes(self) -> tuple:
        return tuple(len(g) for g in self.grid)

    @property
    def factor_values(self) -> tuple:
        """Per factor, float [factor_sizes[k]]: the real value of each class (shape: 0, 1, 2)."""
        return tuple(values[g] for values, g in zip(FULL_VALUES, self.grid))

    def __len__(self) -> int:
        return int(np.prod(self.factor_sizes))

    def _indices(self, indices) -> np.ndarray:
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if indices.size and (indices.min() < 0 or indices.max() >= len(self)):
            raise DataError(
                f"dSprites ({self.variant}) indices must lie in [0, {len(self)}); "
                f"got {indices.min()}..{indices.max()}."
            )
        return indices

    def factors(self, indices: npt.ArrayLike) -> np.ndarray:
        """int64 [n, 5]: the factor classes of images `indices` [n]."""
        return np.stack(np.unravel_index(self._indices(indices), self.factor_sizes), axis=1)

    def values(self, indices: npt.ArrayLike) -> np.ndarray:
        """float64 [n, 5]: the factors' real values of images `indices` [n]."""
        classes = self.factors(indices)
        return np.stack([v[classes[:, k]] for k, v in enumerate(self.factor_values)], axis=1)

    def index(self, factor_classes: npt.ArrayLike) -> np.ndarray:
        """int64 [n]: the image indices of `factor_classes` [n, 5] (the inverse of `factors`)."""
        classes = np.asarray(factor_classes, dtype=np.int64).reshape(-1, len(FACTOR_NAMES))
        sizes = np.asarray(self.factor_sizes)
        if classes.size and ((classes < 0) | (classes >= sizes)).any():
            raise DataError(f"dSprites ({self.variant}) factor classes must lie below {self.factor_sizes}.")
        return np.asarray(np.ravel_multi_index(tuple(classes.T), self.factor_sizes), np.int64)

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """int64 [n, 5]: factor classes drawn uniformly and independently with `rng`
        (a `np.random.Generator` or a seed). Fix factor k by overwriting column k, then `index`."""
        rng = np.random.default_rng(rng)
        return rng.integers(0, self.factor_sizes, size=(n, len(FACTOR_NAMES)), dtype=np.int64)

    def images(self, indices: npt.ArrayLike) -> np.ndarray:
        """uint8 {0, 255} [n, 64, 64, 1]: images `indices` [n], rendered now (4 KB each)."""
        classes = self.factors(indices)
        full = np.stack([g[classes[:, k]] for k, g in enumerate(self.grid)], axis=1)
        out = np.zeros((len(full), IMAGE_SIZE, IMAGE_SIZE), np.uint8)
        # Each image's PATCH x PATCH window at its position, as a view: no per-pixel index arrays.
        windows = np.lib.stride_tricks.sliding_window_view(out, (PATCH, PATCH), axis=(1, 2), writeable=True)
        start = FIRST_CENTRE - PATCH // 2
        windows[np.arange(len(full)), start + full[:, 4], start + full[:, 3]] = (  # rows: pos_y
            base_masks()[full[:, 0], full[:, 1], full[:, 2]]
        )
        return out[..., None]


def load_dsprites(variant: str = "full") -> DSprites:
    """The dSprites grid `variant` ("full": 737,280 images, "small": 11,520); see the module."""
    if variant not in VARIANTS:
        raise DataError(f"unknown dSprites variant {variant!r}; choose one of {sorted(VARIANTS)}.")
    return DSprites(variant, VARIANTS[variant])
