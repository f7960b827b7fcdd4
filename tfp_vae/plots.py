"""Pictures of a VAE and its training, each a function returning a `matplotlib.figure.Figure`.

Figures are built without pyplot: nothing is registered globally, no backend is chosen, nothing
is shown; `fig.savefig(path)` writes a PNG. `save_run_plots(run_dir)` draws all of them for a run
directory (what `tfp-vae plot RUN_DIR` does). The last section draws beta-VAE studies from a sweep's
results table (rate-distortion, active units, traversals across beta) and compares likelihood
families side by side.

>>> import io, numpy as np
>>> x = np.random.default_rng(0).integers(0, 256, [16, 28, 28, 1], dtype=np.uint8)
>>> fig = image_grid(x, labels=np.arange(16) % 10)
>>> len(fig.axes), fig.axes[1].get_title()
(16, 'Trouser')
>>> fig.savefig(io.BytesIO(), format="png")            # or a path: fig.savefig("grid.png")
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import tensorflow_probability as tfp
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure

from tfp_vae.data import CLASS_NAMES
from tfp_vae.errors import ConfigError, TfpVaeError
from tfp_vae.evaluate import posterior_means

if TYPE_CHECKING:
    import pandas as pd

    from tfp_vae.model import VAE

PLOTS_DIR = "plots"


# ---------------------------------------------------------------------------- helpers
def _image(ax, img, title=None):
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


def _grid(n, ncols):
    ncols = max(1, min(ncols, n))
    return math.ceil(n / ncols), ncols


def _need_images(x, name="x"):
    x = np.asarray(x)
    if x.ndim != 4 or len(x) == 0:
        raise TfpVaeError(f"{name} must be a non-empty batch of images [N, H, W, C], got shape {x.shape}.")
    return x


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
    x = _need_images(x)
    rows, cols = _grid(len(x), ncols)
    fig = Figure(figsize=(1.3 * cols, 1.5 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i < len(x):
            _image(ax, x[i], None if labels is None or class_names is None else class_names[int(labels[i])])
        else:
            ax.set_axis_off()
    return fig


# ---------------------------------------------------------------------------- latent space
def latent_scatter(codes, labels, class_names=CLASS_NAMES, title="latent space", ax=None) -> Figure:
    """Posterior means codes [N, d] coloured by class (seaborn); PCA to 2-D when d > 2.

    labels [N] or None (unlabelled data: one colour, no legend)."""
    import seaborn as sns

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
def reconstructions(model, x, seed=0) -> Figure:
    """Rows: originals x [n, H, W, C]; decoder mean at z = E_q[z|x]; a draw from that p(x|z)."""
    x = _need_images(x)
    z = posterior_means(model, x)
    p = model.decoder(z)
    rows = {"original": x, "decoder mean": p.mean().numpy(), "decoder sample": p.sample(seed=seed).numpy()}
    fig = Figure(figsize=(1.2 * len(x), 1.3 * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), len(x), squeeze=False)
    for r, (name, images) in enumerate(rows.items()):
        for c in range(len(x)):
            _image(axes[r, c], images[c])
        axes[r, 0].set_ylabel(name, fontsize=8)
    return fig


def prior_samples(model, n=32, ncols=8, seed=0) -> Figure:
    """Decoder means of n draws z ~ p(z)."""
    z = model.prior.sample(n, seed=seed)
    images = model.decoder(z).mean().numpy()
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
    images = model.decoder(z).mean().numpy()  # [n * n, H, W, C]
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

    Returns (offsets [steps], images [len(dims), steps, H, W, C]).
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
    images = model.decoder(z.reshape(-1, d)).mean().numpy()
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
        _image(axes[r, 0], x[0], "input" if r == 0 else None)
        for c in range(steps):
            _image(axes[r, c + 1], images[r, c], f"{offsets[c]:+.1f}" if r == 0 else None)
        axes[r, 0].set_ylabel(f"z[{i}]", fontsize=8)
    fig.suptitle("one latent dimension moved around the posterior mean (offsets in prior sd)")
    return fig


# ---------------------------------------------------------------------------- training
def training_curves(history) -> Figure:
    """loss, nll and kl per epoch (and their val_ versions), nats per example."""
    parts = [k for k in ("loss", "nll", "kl") if k in history]
    if not parts:
        raise TfpVaeError(f"history has none of loss, nll, kl (keys: {sorted(history)}).")
    fig = Figure(figsize=(4 * len(parts), 3.5), layout="constrained")
    axes = fig.subplots(1, len(parts), squeeze=False)[0]
    for ax, key in zip(axes, parts):
        epochs = np.arange(1, len(history[key]) + 1)
        ax.plot(epochs, history[key], marker="o", ms=3, label="train")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], marker="o", ms=3, label="validation")
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
    from tfp_vae.protocol import criterion

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


# ---------------------------------------------------------------------------- a run directory
def save_run_plots(run_dir, data_dir=None, n=10, verbose=0) -> list[Path]:
    """Draws every figure for the run in `run_dir` into run_dir/plots/*.png; returns the paths.

    Uses the run's test split; the before/after scatter needs the latents `train` recorded.
    verbose: 1 shows a progress bar over the figures (with an ETA), 0 is silent.
    """
    import tf_keras

    from tfp_vae import runs
    from tfp_vae.data import prepare
    from tfp_vae.fingerprint import load_checked

    run_dir = Path(run_dir)
    model = runs.load(run_dir)
    config = model.config
    loaded = load_checked(config, data_dir, run_dir)
    _, (x_test, y_test) = prepare(loaded, config.likelihood, config.binarize, config.seed)
    names = loaded.class_names  # None without labels: no titles, no class colours
    figures = {
        "examples": lambda: image_grid(x_test[: 2 * n], _take(y_test, slice(2 * n)), names),
        "reconstructions": lambda: reconstructions(model, x_test[:n]),
        "prior_samples": lambda: prior_samples(model),
        "latent_traversals": lambda: latent_traversals(model, x_test[0]),
    }
    if (run_dir / runs.HISTORY_JSON).is_file():
        figures["training_curves"] = lambda: training_curves(runs.load_history(run_dir))
    if config.latent_dim == 2:
        figures["latent_manifold"] = lambda: latent_manifold(model)
    if config.latent_dim >= 2:
        figures["latent_space"] = lambda: _before_after(model, run_dir, x_test, y_test, names)
    if config.latent_dim >= 2:  # traversals along the code's principal directions, not its coordinates
        from tfp_vae.disentanglement_plots import principal_traversals

        figures["principal_traversals"] = lambda: principal_traversals(model, x_test[: runs.LATENT_EXAMPLES])
    out = run_dir / PLOTS_DIR
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    bar = tf_keras.utils.Progbar(len(figures), unit_name="figure", verbose=1 if verbose else 0)
    for name, draw in figures.items():
        path = out / f"{name}.png"
        fig = draw()
        runs.atomic_write(path, functools.partial(fig.savefig, dpi=100, format="png"))
        paths.append(path)
        bar.add(1)
    return paths


def _before_after(model, run_dir, x_test, y_test, names):
    from tfp_vae import runs

    try:
        before = runs.load_latents(run_dir)
    except TfpVaeError:  # a run trained before latents were recorded: the trained model alone
        index = np.arange(min(len(x_test), runs.LATENT_EXAMPLES))
        return latent_scatter(
            posterior_means(model, x_test[index]), _take(y_test, index), names, "after training"
        )
    index = before["index"]
    after = posterior_means(model, x_test[index])
    return latent_before_after(before["codes"], after, _take(y_test, index), names)


def _take(labels, index):
    return None if labels is None else labels[index]


# ---------------------------------------------------------------------------- beta-VAE studies
# `table` below is a sweep's results table (`tfp_vae.load_results(out_dir)`): one row per run with
# at least the columns beta, kl, nll (and active_units), in nats per test image at beta = 1.
def _by_beta(table, columns):
    """Mean, sd and count over seeds of `columns` for each beta, sorted by beta."""
    missing = [c for c in ("beta", *columns) if c not in table.columns]
    if missing:
        raise ValueError(f"the results table lacks column(s) {missing}; pass tfp_vae.load_results(out_dir).")
    if len(table) == 0:
        raise ValueError("the results table is empty: no sweep point has finished yet.")
    grouped = table.groupby("beta")[list(columns)]
    return (
        grouped.mean().sort_index(),
        grouped.std(ddof=0).sort_index().fillna(0.0),
        grouped.size().sort_index(),
    )


def _beta_axis(ax, betas):
    # beta spans orders of magnitude; symlog keeps beta = 0 (a plain autoencoder) on the axis.
    if np.all(np.asarray(betas) > 0):
        ax.set_xscale("log")
    else:
        ax.set_xscale("symlog", linthresh=min([b for b in betas if b > 0] or [1.0]))
    ax.set_xlabel("beta (KL weight in training)")


def rate_distortion(
    table: pd.DataFrame, title: str | None = None, ax: Axes | None = None
) -> Figure | SubFigure:
    """Rate (kl, nats) against distortion (nll, nats) per beta; error bars are sd over seeds.
    Draws on `ax` when given (returning its figure)."""
    mean, sd, count = _by_beta(table, ("nll", "kl"))
    if ax is None:
        ax = Figure(figsize=(6, 4.5), layout="constrained").add_subplot()
    fig = ax.figure
    ax.errorbar(mean["nll"], mean["kl"], xerr=sd["nll"], yerr=sd["kl"], fmt="o-", capsize=3)
    for beta, row in mean.iterrows():
        ax.annotate(
            f"beta={beta:g}", (row["nll"], row["kl"]), textcoords="offset points", xytext=(6, 4), fontsize=8
        )
    ax.set_xlabel("distortion  E_q[-log p(x|z)]  (nats per test image)")
    ax.set_ylabel("rate  KL(q(z|x) || p(z))  (nats per test image)")
    seeds = int(count.max())
    ax.set_title(title or f"Rate-distortion across beta (mean +- sd over {seeds} seed(s))")
    ax.grid(alpha=0.3)
    return fig


def active_units_vs_beta(table: pd.DataFrame, latent_dim: int | None = None) -> Figure:
    """Active latent units against beta, mean +- sd over seeds: coordinates with
    Var_x E_q[z_d] > 0.01 (`active_units`) and, when the table has them, rotation-invariant
    directions (`active_directions`, eigenvalues of Cov_x E_q[z|x] > 0.01)."""
    counts = [c for c in ("active_units", "active_directions") if c in table.columns] or ["active_units"]
    mean, sd, _ = _by_beta(table, counts)
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    labels = {
        "active_units": "coordinates (active_units)",
        "active_directions": "directions (eigenvalues of Cov E_q[z|x])",
    }
    for column in counts:
        ax.errorbar(mean.index, mean[column], yerr=sd[column], fmt="o-", capsize=3, label=labels[column])
    if latent_dim is None and "latent_dim" in table.columns:
        latent_dim = int(table["latent_dim"].max())
    if latent_dim is not None:
        ax.axhline(latent_dim, color="grey", ls="--", lw=1, label=f"latent_dim = {latent_dim}")
    ax.legend(fontsize=8)
    _beta_axis(ax, list(mean.index))
    ax.set_ylabel("active units")
    ax.set_ylim(bottom=0)
    ax.set_title("Active latent units across beta (mean +- sd over seeds)")
    ax.grid(alpha=0.3)
    return fig


def traversal_mosaic(model, x, dims: int = 4, steps: int = 7, span: float = 3.0):
    """A latent traversal of x[0] as one mosaic image, along the `dims` most active dimensions
    (largest variance over the images x of the posterior mean), by `steps` offsets in
    [-span, span] around x[0]'s posterior mean.

    Returns (mosaic [dims * H, steps * W] (first channel), list of (dim, variance)).
    """
    variance = posterior_means(model, x).var(axis=0)
    order = [int(d) for d in np.argsort(-variance)[: min(dims, len(variance))]]
    _, images = traversal_images(model, x[:1], order, steps, span)  # [dims, steps, H, W, C]
    rows, cols, height, width = images.shape[:4]
    mosaic = images[..., 0].transpose(0, 2, 1, 3).reshape(rows * height, cols * width)
    return mosaic, [(d, float(variance[d])) for d in order]


def traversals_by_beta(
    models: dict[float, VAE], x: np.ndarray, dims: int = 4, steps: int = 7, span: float = 3.0
) -> Figure:
    """Traversals of image x[0] side by side, one panel per beta.

    models: {beta: trained VAE}; x: images [N, H, W, C] scaled for them (N >= 2: the spread of the
    posterior means over x ranks the latent dimensions). Rows: the `dims` most active dimensions
    (labelled with their variance of E_q[z_d]); columns: offsets in [-span, span].
    """
    if not models:
        raise ValueError("traversals_by_beta needs at least one {beta: model}.")
    betas = sorted(models)
    panel = 3.4  # inches per beta; rows keep the images square
    fig = Figure(figsize=(panel * len(betas), panel * dims / steps + 1.2), layout="constrained")
    axes = fig.subplots(1, len(betas), squeeze=False)[0]
    height = models[betas[0]].config.input_shape[0]
    for ax, beta in zip(axes, betas):
        mosaic, ranked = traversal_mosaic(models[beta], x, dims, steps, span)
        ax.imshow(mosaic, cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"beta = {beta:g}")
        ax.set_xticks([])
        ax.set_yticks(
            [(i + 0.5) * height for i in range(len(ranked))],
            [f"z{d} ({v:.2f})" for d, v in ranked],
            fontsize=7,
        )
    fig.suptitle(
        f"Latent traversals of one test image: offsets {-span:g}..{span:g} around its posterior "
        "mean\n(rows: its most active coordinates, Var_x E_q[z_d] in brackets)",
        fontsize=10,
    )
    return fig


# ---------------------------------------------------------------------------- likelihood families
def _image_rows(fig, rows: list, titles: list):
    """One figure row per entry of `rows` (each [n, H, W, C]), labelled on its first panel."""
    axes = fig.subplots(len(rows), len(rows[0]), squeeze=False)
    for r, (images, title) in enumerate(zip(rows, titles)):
        for c, image in enumerate(images):
            _image(axes[r, c], image)
        axes[r, 0].set_ylabel(title, rotation=0, ha="right", va="center", fontsize=8)
    return axes


def compare_reconstructions(models: dict[str, VAE], x_uint8: np.ndarray, n: int = 8) -> Figure:
    """The same n test images reconstructed by each model (e.g. one per likelihood family).

    x_uint8: raw images [N, H, W, C] (0..255); each model sees them scaled for its own family
    (`tfp_vae.scale_images`). Rows: the originals (x/255), then per model the mean of p(x|z) at
    z = E_q[z|x].
    """
    from tfp_vae.data import scale_images

    x_uint8 = np.asarray(x_uint8)[:n]
    rows, titles = [x_uint8 / 255.0], ["original"]
    for name, model in models.items():
        z = posterior_means(model, scale_images(x_uint8, model.config.likelihood))
        rows.append(model.decoder(z).mean().numpy())
        titles.append(f"{name}\nmean p(x|z)")
    fig = Figure(figsize=(1.1 * len(x_uint8) + 1.5, 1.15 * len(rows)), layout="constrained")
    _image_rows(fig, rows, titles)
    fig.suptitle("Reconstructions of the same test images (decoder mean at the posterior mean)")
    return fig


def compare_samples(models: dict[str, VAE], n: int = 8, seed: int = 0) -> Figure:
    """Per model, n draws z ~ p(z) from its own prior (the same z for every model of equal latent
    size and the same fixed prior) decoded two ways: the mean of p(x|z), and one draw x ~ p(x|z),
    which shows each family's pixel noise."""
    rows, titles = [], []
    for name, model in models.items():
        z = model.prior.sample(n, seed=(seed, 0))  # a learned prior's own draws
        p = model.decoder(z)
        rows += [p.mean().numpy(), p.sample(seed=(seed, 1)).numpy()]
        titles += [f"{name}\nmean p(x|z)", f"{name}\nx ~ p(x|z)"]
    fig = Figure(figsize=(1.1 * n + 1.5, 1.15 * len(rows)), layout="constrained")
    _image_rows(fig, rows, titles)
    fig.suptitle("Samples from the prior: decoder mean and a draw from the decoder")
    return fig
