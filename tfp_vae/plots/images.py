"""Drawing images on matplotlib axes: the helpers every picture module shares."""

from __future__ import annotations

import math

import numpy as np

from tfp_vae.errors import TfpVaeError


def draw_image(ax, img, title=None):
    """Draws one image [H, W, C] (values clipped to [0, 1]) without ticks."""
    img = np.clip(np.asarray(img, np.float32), 0.0, 1.0)
    if img.shape[-1] == 1:
        ax.imshow(img[..., 0], cmap="gray", vmin=0, vmax=1)
    else:
        ax.imshow(img)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)


def grid_shape(n, ncols):
    ncols = max(1, min(ncols, n))
    return math.ceil(n / ncols), ncols


def need_images(x, name="x"):
    x = np.asarray(x)
    if x.ndim != 4 or len(x) == 0:
        raise TfpVaeError(f"{name} must be a non-empty batch of images [N, H, W, C], got shape {x.shape}.")
    return x


def image_rows(fig, rows: list, titles: list):
    """One figure row per entry of `rows` (each [n, H, W, C]), labelled on its first panel."""
    axes = fig.subplots(len(rows), len(rows[0]), squeeze=False)
    for r, (images, title) in enumerate(zip(rows, titles)):
        for c, image in enumerate(images):
            draw_image(axes[r, c], image)
        axes[r, 0].set_ylabel(title, rotation=0, ha="right", va="center", fontsize=8)
    return axes
