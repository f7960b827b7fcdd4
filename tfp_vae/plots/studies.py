"""Pictures of studies: beta-VAE sweeps (rate-distortion, active units, traversals across beta)
and likelihood families side by side. Each function returns a `matplotlib.figure.Figure`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure

from tfp_vae.data.pixels import scale_images, unit_scale
from tfp_vae.evaluation.elbo import posterior_means
from tfp_vae.plots.images import image_rows
from tfp_vae.plots.model import traversal_images

if TYPE_CHECKING:
    import pandas as pd

    from tfp_vae.model.vae import VAE


# `table` below is a sweep's results table (`tfp_vae.load_results(out_dir)`): one row per run with
# at least the columns beta, kl, nll (and active_units), in nats per test image at beta = 1.
def by_beta(table, columns):
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


def beta_axis(ax, betas):
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
    mean, sd, count = by_beta(table, ("nll", "kl"))
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
    mean, sd, _ = by_beta(table, counts)
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
    beta_axis(ax, list(mean.index))
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
def compare_reconstructions(
    models: dict[str, VAE], x_uint8: np.ndarray, n: int = 8, images: str = "test images"
) -> Figure:
    """The same n test images reconstructed by each model (e.g. one per likelihood family).

    x_uint8: raw images [N, H, W, C] (0..255); each model sees them scaled for its own family
    (`tfp_vae.scale_images`). Rows: the originals (x/255), then per model the mean of p(x|z) at
    z = E_q[z|x], as grey level / 255 whatever the family's scaling (`unit_scale`).
    images: what x_uint8 is, for the title (e.g. "dSprites grid images").
    """
    x_uint8 = np.asarray(x_uint8)[:n]
    rows, titles = [x_uint8 / 255.0], ["original"]
    for name, model in models.items():
        z = posterior_means(model, scale_images(x_uint8, model.config.likelihood))
        rows.append(unit_scale(model.decoder(z).mean().numpy(), model.config.likelihood))
        titles.append(f"{name}\nmean p(x|z)")
    fig = Figure(figsize=(1.1 * len(x_uint8) + 1.5, 1.15 * len(rows)), layout="constrained")
    image_rows(fig, rows, titles)
    fig.suptitle(f"Reconstructions of the same {images} (decoder mean at the posterior mean)")
    return fig


def compare_samples(models: dict[str, VAE], n: int = 8, seed: int = 0) -> Figure:
    """Per model, n draws z ~ p(z) from its own prior (the same z for every model of equal latent
    size and the same fixed prior) decoded two ways: the mean of p(x|z), and one draw x ~ p(x|z),
    which shows each family's pixel noise; both as grey level / 255 (`unit_scale`)."""
    rows, titles = [], []
    for name, model in models.items():
        z = model.prior.sample(n, seed=(seed, 0))  # a learned prior's own draws
        p = model.decoder(z)
        family = model.config.likelihood  # each family's values shown as grey level / 255
        rows += [unit_scale(p.mean().numpy(), family), unit_scale(p.sample(seed=(seed, 1)).numpy(), family)]
        titles += [f"{name}\nmean p(x|z)", f"{name}\nx ~ p(x|z)"]
    fig = Figure(figsize=(1.1 * n + 1.5, 1.15 * len(rows)), layout="constrained")
    image_rows(fig, rows, titles)
    fig.suptitle("Samples from the prior: decoder mean and a draw from the decoder")
    return fig


MARKERS = {
    "exact": ("o", "exact: log P(x) of the discrete images"),
    "bound": ("v", "bound: dequantization IWAE"),
}


def bits_per_dim_ranking(ranked: pd.DataFrame, apart: pd.DataFrame | None = None) -> Figure:
    """Bits per dimension of each family on the test set, mean +- standard error.

    ranked, apart: the two tables of `tfp_vae.family_table`. The left panel ranks the families
    of `ranked` (the 8-bit images), best (fewest bits) at the top, each point's marker its kind
    (exact, or a dequantization bound: an upper bound on the bits); the right panel, when `apart`
    has rows, shows those on their own axis, labelled with the data set they are of (the
    Bernoulli's binarized images): they are not part of the ranking. Standard errors over test
    images are often smaller than the markers: each point is labelled with both numbers.
    """
    for name, table in (("ranked", ranked), ("apart", apart)):
        if table is not None and "bits_per_dim" not in table.columns:
            raise ValueError(
                f"{name} lacks the column bits_per_dim; pass the tables of tfp_vae.family_table."
            )
    if len(ranked) == 0:
        raise ValueError("ranked is empty: no run with bits per dimension of the 8-bit images.")
    panels = [(ranked, "bits per dimension of the 8-bit test images (lower is better)")]
    if apart is not None and len(apart):
        # metrics.json's words up to their bracket: "binarized images (another data set: ...)"
        data = sorted({str(d).split(" (")[0] for d in apart["data"]}) if "data" in apart else []
        panels.append((apart, f"bits per dimension of {', '.join(data) or 'another data set'}"))
    fig = Figure(figsize=(9.5 if len(panels) > 1 else 7, 0.55 * len(ranked) + 1.8), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False, gridspec_kw={"width_ratios": [3, 1.3][: len(panels)]})[
        0
    ]
    for ax, (table, label) in zip(axes, panels):
        rows = list(table.itertuples())
        y = np.arange(len(rows))[::-1]  # the first row (rank 1) at the top
        for position, row in zip(y, rows):
            bits, se = float(row.bits_per_dim), float(getattr(row, "bits_per_dim_se", 0.0) or 0.0)
            kind = getattr(row, "kind", "exact")
            marker, legend = MARKERS.get(kind, ("s", str(kind)))
            ax.errorbar(
                bits,
                position,
                xerr=se,
                fmt=marker,
                color="C0" if kind == "exact" else "C1",
                capsize=4,
                label=legend,
            )
            ax.annotate(
                f"{bits:.3f} ± {se:.3f}",
                (bits, position),
                textcoords="offset points",
                xytext=(0, 8),
                ha="center",
                fontsize=8,
            )
        ax.set_yticks(y, [str(row.Index) for row in rows])
        ax.set_ylim(-0.7, len(rows) - 0.3)
        ax.set_xlabel(label, fontsize=9)
        ax.margins(x=0.15)
        ax.grid(axis="x", alpha=0.3)
        handles, names = ax.get_legend_handles_labels()
        unique = dict(zip(names, handles))
        ax.legend(unique.values(), unique.keys(), fontsize=7, loc="lower right")
    axes[0].set_title("The families ranked (test set, mean ± standard error over images)", fontsize=10)
    if len(panels) > 1:
        axes[1].set_title("Another data set: not ranked", fontsize=10)
    return fig
