"""Pixels meeting a likelihood family: scaling uint8 images, binarizing, dequantizing, checking the support.

Each family (`tfp_vae.choices.LIKELIHOODS`) names a scaling (registry `SCALINGS`) and a support
(registry `SUPPORTS`); both are numpy work, so data is prepared and checked without TensorFlow.

A scaling is affine in the grey level v in 0..255, scaled = c v + d (its fact `affine`), so the
levels of scaled 8-bit images are known again (`grey_levels`). A scaling for a density also says
where uniform dequantization puts the continuous value t = v + u, u ~ U[0, 1): y = a t + b (its
fact `dequantized`, (1/256, 0) for both: (v + u) / 256 in [0, 1)), so a density p(y) is one of
t with log-Jacobian log a per pixel (`dequantized_log_jacobian`), and

    log P(v) >= E_u[ log p(a (v + u) + b) ] + D log a         (= ... - D log 256)

bounds the log-probability of the discrete image (Theis et al. 2016). `dequantize` works on
numpy arrays and TensorFlow tensors alike (arithmetic only), so the model layer draws u and the
data layer says what it means.

>>> import numpy as np
>>> raw = np.array([[0, 128, 255]], np.uint8)
>>> scale_images(raw, "bernoulli").tolist(), scale_images(raw, "beta").tolist()
([[0.0, 0.501960813999176, 1.0]], [[0.001953125, 0.501953125, 0.998046875]])
>>> binarize_images(scale_images(raw, "bernoulli"), seed=0).tolist()[0][::2]   # P(1) = x
[0.0, 1.0]
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tfp_vae.choices import LIKELIHOODS
from tfp_vae.errors import DataError, NonBinaryBernoulliWarning, warn_once
from tfp_vae.registry import Registry

# uint8 images [N, H, W, C] -> float32 in a family's support. Facts: `affine` (c, d), scaled =
# c v + d for grey level v; `dequantized` (a, b), the dequantized value a (v + u) + b of a density
# family (None for a discrete one).
SCALINGS: Registry[Callable[[np.ndarray], np.ndarray]] = Registry("scaling", "pixel scaling")
SCALINGS.register(
    "unit",
    lambda x: np.asarray(x, np.float32) / 255.0,
    help="x / 255, in [0, 1]",
    affine=(1 / 255, 0.0),
    dequantized=(1 / 256, 0.0),
)
# Centres of the 256 grey-level bins: strictly inside (0, 1), so a Beta never sees 0 or 1.
SCALINGS.register(
    "bin_centres",
    lambda x: (np.asarray(x, np.float32) + 0.5) / 256.0,
    help="(x + 0.5) / 256, in (0, 1)",
    affine=(1 / 256, 0.5 / 256),
    dequantized=(1 / 256, 0.0),
)
# The grey levels themselves, for a family of probabilities of the 256 levels.
SCALINGS.register(
    "levels",
    lambda x: np.asarray(x, np.float32),
    help="x, the integers 0..255",
    affine=(1.0, 0.0),
    dequantized=None,
)

# Uniform dequantization draws u ~ U[DEQUANTIZE_MARGIN, 1 - DEQUANTIZE_MARGIN): float32 v + u then
# never rounds onto a bin edge (at v = 255 its spacing is 2^-16), so y stays inside (0, 1) for a
# Beta. The proposal density of u is then (1 - 2 margin)^-D, a term of the bound
# (`dequantized_log_jacobian` includes it): 784 log(1 - 2^-12) = -0.19 nats per image.
DEQUANTIZE_MARGIN = 2.0**-13


def _scaling(likelihood: str) -> str:
    return LIKELIHOODS.fact(likelihood, "scaling")


def scale_images(x: np.ndarray, likelihood: str = "bernoulli") -> np.ndarray:
    """uint8 images -> float32 in the support of `likelihood` (e.g. x/255, or (x+0.5)/256 for beta)."""
    x = np.asarray(x)
    if x.dtype != np.uint8:
        raise DataError(f"scale_images expects uint8 images in 0..255, got dtype {x.dtype}.")
    # The scalings give float32 already: no second copy (188 MB for 60,000 images of 28x28).
    return SCALINGS[_scaling(likelihood)](x).astype(np.float32, copy=False)


def grey_levels(x: np.ndarray, likelihood: str) -> np.ndarray | None:
    """The grey levels v (float32 integers 0..255) of images x scaled for `likelihood` from 8-bit
    images, or None if x is not such a scaling (float images of another origin). Binarized images
    {0, 1} of the unit scaling count as the levels {0, 255}: the caller knows what it binarized."""
    x = np.asarray(x)
    c, d = SCALINGS.fact(_scaling(likelihood), "affine")
    levels = np.empty(x.shape, np.float32)
    for i in range(0, max(len(x), 1), 4096):  # float32 pieces: a training set is 188 MB already
        piece = (x[i : i + 4096].astype(np.float32) - np.float32(d)) / np.float32(c)
        rounded = np.round(piece)
        if not np.all(np.isfinite(piece)) or np.any(np.abs(piece - rounded) > 1e-3):
            return None
        levels[i : i + 4096] = rounded
    if levels.size == 0 or levels.min() < 0 or levels.max() > 255:
        return None
    return levels


def unit_scale(x, likelihood: str) -> np.ndarray:
    """Values in `likelihood`'s scaling (images, decoder means or draws) as v / 255, v the grey
    level they stand for: one display scale for every family (the grey levels of
    `discretized_logistic` and x / 255 alike; unchanged for the unit scaling).

    >>> unit_scale(np.array([0.0, 255.0]), "discretized_logistic").tolist()
    [0.0, 1.0]
    """
    c, d = SCALINGS.fact(_scaling(likelihood), "affine")
    return ((np.asarray(x, np.float32) - np.float32(d)) / np.float32(255.0 * c)).astype(np.float32)


def dequantize(x, u, likelihood: str):
    """Images x scaled for `likelihood` (8-bit), noise u in [0, 1) of x's shape -> the dequantized
    images a (v + u) + b, v the grey levels. Numpy arrays or TensorFlow tensors (arithmetic only);
    no rounding: v is recovered to ~2e-5 (float32), well inside `DEQUANTIZE_MARGIN`."""
    c, d = SCALINGS.fact(_scaling(likelihood), "affine")
    dequantized = SCALINGS.fact(_scaling(likelihood), "dequantized")
    if dequantized is None:
        raise DataError(
            f"the {likelihood!r} likelihood is a probability of grey levels: nothing to dequantize."
        )
    a, b = dequantized
    return ((x - d) * (1 / c) + u) * a + b


def dequantized_log_jacobian(likelihood: str) -> float:
    """Per-pixel log of d y / d t for the dequantized y = a t + b of `likelihood` (t = v + u in
    [0, 256)), plus log(1 - 2 DEQUANTIZE_MARGIN), the log of the width of u's range: D times it
    added to log p(y) gives the bound on log P(v) (in nats; -log 256 - 0.00024 for every family
    here)."""
    dequantized = SCALINGS.fact(_scaling(likelihood), "dequantized")
    if dequantized is None:
        raise DataError(
            f"the {likelihood!r} likelihood is a probability of grey levels: nothing to dequantize."
        )
    return float(np.log(dequantized[0]) + np.log1p(-2 * DEQUANTIZE_MARGIN))


def binarize_images(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """One Bernoulli draw per pixel with probability x in [0, 1]: float32 {0, 1}, reproducible."""
    rng = np.random.default_rng(seed)
    return (rng.random(np.shape(x), dtype=np.float32) < x).astype(np.float32)


def _check_finite(x, family):
    if not np.all(np.isfinite(x)):
        raise DataError(
            f"images contain NaN or inf values; the {family!r} likelihood needs finite pixels. "
            "Clean or drop those images."
        )


def _check_unit_interval(x, family, closed):
    _check_finite(x, family)
    lo, hi = float(np.min(x)), float(np.max(x))
    ok = (lo >= 0 and hi <= 1) if closed else (lo > 0 and hi < 1)
    if not ok:
        interval = "[0, 1]" if closed else "the open interval (0, 1), never exactly 0 or 1"
        fix = (
            "scale uint8 images with tfp_vae.scale_images(x, likelihood) or divide by 255"
            if closed
            else "scale uint8 images with tfp_vae.scale_images(x, 'beta'), i.e. (x + 0.5) / 256"
        )
        raise DataError(
            f"the {family!r} likelihood needs pixel values in {interval}, got values in "
            f"[{lo:g}, {hi:g}]; {fix}."
        )


def _check_binary(x, family):
    _check_unit_interval(x, family, closed=True)
    if np.any((x != 0) & (x != 1)):
        warn_once(
            "Bernoulli likelihood on non-binary (grey-level) data: its log-likelihood is not a "
            "normalised density there, so its nats are not comparable with other families. "
            "Binarize the data (binarize='static' or 'dynamic') or use 'continuous_bernoulli'.",
            NonBinaryBernoulliWarning,
            stacklevel=3,
        )


# (float images, family name) -> None; raises `DataError` (or warns) outside the support.
SUPPORTS: Registry[Callable[[np.ndarray, str], None]] = Registry("support", "pixel support")
SUPPORTS.register("binary", _check_binary, help="[0, 1] (binary for a normalised density)")
SUPPORTS.register("open_unit", lambda x, family: _check_unit_interval(x, family, closed=False), help="(0, 1)")
SUPPORTS.register(
    "closed_unit", lambda x, family: _check_unit_interval(x, family, closed=True), help="[0, 1]"
)
# A Normal puts mass on all reals, so only finiteness is checked.
SUPPORTS.register("reals", _check_finite, help="all reals (images scaled to [0, 1])")


def _check_levels(x, family):
    _check_finite(x, family)
    if np.any((x != np.round(x)) | (x < 0) | (x > 255)):
        lo, hi = float(np.min(x)), float(np.max(x))
        raise DataError(
            f"the {family!r} likelihood needs the grey levels of 8-bit images, integers 0..255 as "
            f"floats, got values in [{lo:g}, {hi:g}] (not all integers); scale uint8 images with "
            f"tfp_vae.scale_images(x, {family!r}) (x as float32), not x / 255."
        )


SUPPORTS.register("levels", _check_levels, help="the integers 0..255 (grey levels of 8-bit images)")


def check_images(x: np.ndarray, input_shape: tuple[int, ...], likelihood: str) -> None:
    """Raises `DataError` naming the problem if `x` cannot be fed to a model with this config.

    Checks: array of floats (not raw uint8), shape [N, *input_shape] with N >= 1, finite values,
    values in the likelihood's support.
    """
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
    if x.dtype == np.uint8:
        raise DataError(
            "images are uint8 (0..255) and were not scaled; use "
            f"tfp_vae.scale_images(x, {likelihood!r}) first."
        )
    if not np.issubdtype(x.dtype, np.floating):
        raise DataError(f"images must be floats, got dtype {x.dtype}; scale them with tfp_vae.scale_images.")
    expected = tuple(input_shape)
    if x.ndim == len(expected) and x.shape[1:] == expected[:-1]:
        raise DataError(
            f"images have shape {x.shape}, without a channel axis; the model expects "
            f"[N, {', '.join(map(str, expected))}]. Add it with x[..., None]."
        )
    if x.ndim == len(expected) + 2 and x.shape[1:-1] == expected and x.shape[-1] == 1:
        raise DataError(
            f"images have shape {x.shape}, with an extra trailing axis; the model expects "
            f"[N, {', '.join(map(str, expected))}]. Drop it with x[..., 0]."
        )
    if x.ndim == len(expected) + 1 and x.shape[1:-1] == expected[:-1] and x.shape[-1] != expected[-1]:
        raise DataError(
            f"images have {x.shape[-1]} channel(s) (shape {x.shape}); the model expects "
            f"{expected[-1]}. Set VAEConfig.input_shape=({', '.join(map(str, x.shape[1:]))}) "
            "to match the data, or convert the images."
        )
    if x.ndim != len(expected) + 1 or x.shape[1:] != expected:
        raise DataError(
            f"images have shape {x.shape}; the model expects [N, {', '.join(map(str, expected))}] "
            "(set VAEConfig.input_shape to match the data, or reshape the images)."
        )
    if x.shape[0] == 0:
        raise DataError("the data set is empty (0 images); pass at least one image.")
    check_support(x, likelihood)


def check_support(x: np.ndarray, likelihood: str) -> None:
    """Raises `DataError` (or warns) if float images `x` leave the support of `likelihood`."""
    SUPPORTS[LIKELIHOODS.fact(likelihood, "support")](x, likelihood)


def check_labels(labels: np.ndarray | None, images: np.ndarray, name: str = "labels") -> None:
    """Raises `DataError` unless `labels` is one label per image of `images` (a 1-D sequence of
    the same length). `labels=None` is accepted: labels are optional wherever they are taken."""
    if labels is None:
        return
    labels, n = np.asarray(labels), len(images)
    if labels.ndim != 1:
        raise DataError(
            f"{name} must be one label per image (1-D), got shape {labels.shape}; "
            "flatten them, e.g. labels.reshape(-1)."
        )
    if len(labels) != n:
        raise DataError(
            f"{name} has {len(labels)} entries but there are {n} images; pass the labels that "
            "belong to these images (same order, same length)."
        )
