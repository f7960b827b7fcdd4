"""Pictures of a VAE and its training, each a function returning a `matplotlib.figure.Figure`.

Figures are built without pyplot: nothing is registered globally, no backend is chosen, nothing
is shown; `fig.savefig(path)` writes a PNG. `tfp_vae.plots.run.save_run_plots(run_dir)` draws all
of them for a run directory (what `tfp-vae plot RUN_DIR` does).

>>> import io, numpy as np
>>> x = np.random.default_rng(0).integers(0, 256, [16, 28, 28, 1], dtype=np.uint8)
>>> fig = image_grid(x, labels=np.arange(16) % 10)
>>> len(fig.axes), fig.axes[1].get_title()
(16, 'Trouser')
>>> fig.savefig(io.BytesIO(), format="png")            # or a path: fig.savefig("grid.png")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import tensorflow_probability as tfp
from matplotlib.figure import Figure

from tfp_vae.data.idx import CLASS_NAMES
from tfp_vae.data.pixels import unit_scale
from tfp_vae.errors import ConfigError, TfpVaeError
from tfp_vae.evaluation.elbo import posterior_means
from tfp_vae.plots.images import draw_image, grid_shape, image_rows, need_images
from tfp_vae.training.protocol import criterion

if TYPE_CHECKING:
    pass


def project_2d(codes):
    """codes [N, d] -> (points [N, 2], axis labels): the codes themselves when d = 2, else their
    first two principal components (centred; labelled with the share of variance each explains)."""
    codes = np.asarray(codes, np.float64)
    if codes.ndim != 2 or codes.shape[1] < 2:
        raise TfpVaeError(f"latent codes must be [N, d] with d >= 2, got shape {codes.shape}.")
    if codes.shape[1] == 2:
        return codes, ("z[0]", "z[1]")
    centred = codes - codes.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    share = s**2 / max(np.sum(s**2), 1e-300)
    labels = tuple(f"PC {i + 1} of z ({100 * share[i]:.0f}% of variance)" for i in range(2))
    return centred @ vt[:2].T, labels


# ---------------------------------------------------------------------------- data
def image_grid(x, labels=None, class_names=CLASS_NAMES, ncols=8) -> Figure:
    """Images x [N, H, W, C] in a grid, each titled with its class name when labels [N] are given."""
    x = need_images(x)
    rows, cols = grid_shape(len(x), ncols)
    fig = Figure(figsize=(1.3 * cols, 1.5 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i < len(x):
            draw_image(
                ax, x[i], None if labels is None or class_names is None else class_names[int(labels[i])]
            )
        else:
            ax.set_axis_off()
    return fig


# ---------------------------------------------------------------------------- latent space
def latent_scatter(codes, labels, class_names=CLASS_NAMES, title="latent space", ax=None) -> Figure:
    """Posterior means codes [N, d] coloured by class (seaborn); PCA to 2-D when d > 2.

    labels [N] or None (unlabelled data: one colour, no legend)."""
    import seaborn as sns  # a second plotting library, loaded by the one figure that draws with it

    points, (xlabel, ylabel) = project_2d(codes)
    if ax is None:
        fig = Figure(figsize=(6, 5), layout="constrained")
        ax = fig.subplots()
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if labels is None or class_names is None:  # unlabelled data: one colour, no legend
        ax.scatter(points[:, 0], points[:, 1], s=6, alpha=0.7, linewidths=0)
        return ax.figure
    names = np.asarray(class_names, dtype=object)[np.asarray(labels, int)]
    sns.scatterplot(
        x=points[:, 0],
        y=points[:, 1],
        hue=names,
        hue_order=list(class_names),
        palette="tab10" if len(class_names) <= 10 else "husl",
        s=6,
        alpha=0.7,
        linewidth=0,
        ax=ax,
    )
    ax.legend(fontsize=7, markerscale=2, loc="best")
    return ax.figure


def latent_before_after(before, after, labels, class_names=CLASS_NAMES) -> Figure:
    """Two scatters side by side: posterior means of the untrained and of the trained model."""
    fig = Figure(figsize=(12, 5), layout="constrained")
    left, right = fig.subplots(1, 2)
    latent_scatter(before, labels, class_names, "before training", ax=left)
    latent_scatter(after, labels, class_names, "after training", ax=right)
    return fig


# ---------------------------------------------------------------------------- the decoder
def reconstructions(model, x, seed=0, title="images and their reconstructions") -> Figure:
    """Rows (named on the left): the data x [n, H, W, C]; its reconstruction, the decoder's mean
    at z = E_q[z|x]; a sample of that p(x|z)."""
    x = need_images(x)
    z = posterior_means(model, x)
    p = model.decoder(z)
    family = model.config.likelihood  # every row as grey level / 255, whatever the scaling
    rows = {
        "data": unit_scale(x, family),
        "reconstruction\n(decoder mean)": unit_scale(p.mean().numpy(), family),
        "sample of\np(x | z = mean)": unit_scale(p.sample(seed=seed).numpy(), family),
    }
    fig = Figure(figsize=(1.2 * len(x) + 1.2, 1.3 * len(rows)), layout="constrained")
    image_rows(fig, list(rows.values()), list(rows))
    fig.suptitle(title)
    return fig


def prior_samples(model, n=32, ncols=8, seed=0) -> Figure:
    """Decoder means of n draws z ~ p(z)."""
    z = model.prior.sample(n, seed=seed)
    images = unit_scale(model.decoder(z).mean().numpy(), model.config.likelihood)
    fig = image_grid(images, ncols=ncols)
    fig.suptitle("decoder mean of z ~ p(z)")
    return fig


def latent_manifold(model, n=15, lo=0.05, hi=0.95) -> Figure:
    """For a 2-D latent space: decoder means on an n x n grid of z at prior quantiles lo..hi."""
    d = model.config.latent_dim
    if d != 2:
        raise ConfigError(
            f"latent_manifold needs latent_dim=2, the model has latent_dim={d}; "
            "use latent_traversals for larger latent spaces."
        )
    standard = tfp.distributions.Normal(0.0, 1.0)
    values = standard.quantile(np.linspace(lo, hi, n, dtype=np.float32)).numpy()
    # Row r (top to bottom) has z[1] = values[n - 1 - r]; column c has z[0] = values[c].
    z = np.stack(np.meshgrid(values, values[::-1]), axis=-1).reshape(-1, 2)
    images = unit_scale(model.decoder(z).mean().numpy(), model.config.likelihood)  # [n * n, H, W, C]
    h, w, c = images.shape[1:]
    canvas = images.reshape(n, n, h, w, c).transpose(0, 2, 1, 3, 4).reshape(n * h, n * w, c)
    fig = Figure(figsize=(7, 7), layout="constrained")
    ax = fig.subplots()
    ax.imshow(np.clip(canvas[..., 0] if c == 1 else canvas, 0, 1), cmap="gray", vmin=0, vmax=1)
    ticks = np.arange(n) * w + w / 2
    ax.set_xticks(ticks, [f"{v:.1f}" for v in values], fontsize=7)
    ax.set_yticks(ticks, [f"{v:.1f}" for v in values[::-1]], fontsize=7)
    ax.set_xlabel("z[0] (prior quantiles)")
    ax.set_ylabel("z[1] (prior quantiles)")
    ax.set_title("decoder mean over the latent grid")
    return fig


def traversal_images(model, x, dims, steps=9, span=3.0):
    """Decoder means with z = E_q[z|x] and one latent dim at a time moved by `steps` offsets in
    -span..span (prior sd). x: one image [H, W, C] (or [1, H, W, C]); dims: the dims to move.

    Returns (offsets [steps], images [len(dims), steps, H, W, C], as grey level / 255 whatever the
    family's scaling: `tfp_vae.data.pixels.unit_scale`).
    """
    x = np.asarray(x)
    x = x[None] if x.ndim == 3 else x
    mean = posterior_means(model, x[:1])[0]  # [d]
    d = model.config.latent_dim
    bad = [i for i in dims if not 0 <= i < d]
    if bad:
        raise TfpVaeError(f"latent traversal: dims {bad} out of range for latent_dim={d}.")
    offsets = np.linspace(-span, span, steps, dtype=np.float32)
    z = np.repeat(mean[None, None], len(dims), 0).repeat(steps, 1)  # [rows, steps, d]
    for r, i in enumerate(dims):
        z[r, :, i] += offsets
    images = unit_scale(model.decoder(z.reshape(-1, d)).mean().numpy(), model.config.likelihood)
    return offsets, images.reshape(len(dims), steps, *images.shape[1:])


def latent_traversals(model, x, dims=None, steps=9, span=3.0) -> Figure:
    """Rows: latent dims; columns: z = E_q[z|x] with that one dim moved by -span..span (prior sd).

    x: one image [H, W, C] (or [1, H, W, C]). dims: which dims (default: all, at most 10).
    """
    x = np.asarray(x)
    x = x[None] if x.ndim == 3 else x
    d = model.config.latent_dim
    dims = list(range(min(d, 10))) if dims is None else [int(i) for i in dims]
    offsets, images = traversal_images(model, x, dims, steps, span)
    fig = Figure(figsize=(1.1 * (steps + 1), 1.15 * len(dims) + 0.5), layout="constrained")
    axes = fig.subplots(len(dims), steps + 1, squeeze=False)
    for r, i in enumerate(dims):
        draw_image(axes[r, 0], x[0], "input" if r == 0 else None)
        for c in range(steps):
            draw_image(axes[r, c + 1], images[r, c], f"{offsets[c]:+.1f}" if r == 0 else None)
        axes[r, 0].set_ylabel(f"z[{i}]", fontsize=8)
    fig.suptitle("one latent dimension moved around the posterior mean (offsets in prior sd)")
    return fig


# ---------------------------------------------------------------------------- training
def training_curves(history, validation: str = "validation") -> Figure:
    """loss, nll and kl per epoch (and their val_ versions), nats per example.

    validation: the name of the split the val_ columns come from, "validation" or "test" (a run
    with validation_examples = 0 validates on its test split)."""
    parts = [k for k in ("loss", "nll", "kl") if k in history]
    if not parts:
        raise TfpVaeError(f"history has none of loss, nll, kl (keys: {sorted(history)}).")
    fig = Figure(figsize=(4 * len(parts), 3.5), layout="constrained")
    axes = fig.subplots(1, len(parts), squeeze=False)[0]
    for ax, key in zip(axes, parts):
        epochs = np.arange(1, len(history[key]) + 1)
        ax.plot(epochs, history[key], marker="o", ms=3, label="train")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], marker="o", ms=3, label=validation)
        ax.set_title(key)
        ax.set_xlabel("epoch")
        ax.set_ylabel("nats per example")
        ax.legend()
    return fig


def validation_curves(histories: dict[str, dict], since: int = 1) -> Figure:
    """The training protocol's criterion, validation negative ELBO at beta = 1 (val_nll + val_kl,
    nats per example), per epoch of each run in {name: history} (`tfp_vae.load_history`), each from
    its own epoch 1; only epochs >= `since` are drawn (late epochs differ by tenths of a nat, the
    first ones by tens). Each run's lowest epoch is marked with its value: with a KL warm-up that is
    the epoch the training protocol kept (`protocol.best_epoch` skips the ramp, whose epochs are
    scored at beta = 1 too and lie far above)."""
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.subplots()
    for name, history in histories.items():
        values = criterion(history)
        if not len(values):
            raise TfpVaeError(f"history {name!r} has no val_nll and val_kl: train with a validation split.")
        epochs = np.arange(1, len(values) + 1)
        shown = epochs >= since
        (line,) = ax.plot(epochs[shown], values[shown], lw=1, label=name)
        best = int(np.argmin(values))
        if best + 1 >= since:
            ax.plot(best + 1, values[best], "o", color=line.get_color())
            ax.annotate(
                f"{values[best]:.2f}", (best + 1, values[best]), textcoords="offset points", xytext=(0, -12)
            )
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation -ELBO (nats per example)")
    ax.legend()
    return fig
