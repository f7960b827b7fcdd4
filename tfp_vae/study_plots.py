"""Pictures of a beta-VAE study, each a function returning a matplotlib Figure.

* `rate_distortion(table)`: rate (kl) against distortion (nll) across beta, mean over seeds with
  one-standard-deviation error bars in both directions, each point labelled with its beta;
* `active_units_vs_beta(table)`: active latent units against beta, mean +- sd over seeds;
* `traversals_by_beta(models, x)`: latent traversals of one image side by side for several beta.

`table` is a sweep's results table (`tfp_vae.load_results(out_dir)`): one row per run with at
least the columns beta, kl, nll (and active_units), in nats per test image at beta = 1.

>>> fig = rate_distortion(load_results("runs/beta"))     # doctest: +SKIP
>>> fig.savefig("rate_distortion.png")                   # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure


def _by_beta(table, columns):
    """Mean, sd and count over seeds of `columns` for each beta, sorted by beta."""
    missing = [c for c in ("beta", *columns) if c not in table.columns]
    if missing:
        raise ValueError(f"the results table lacks column(s) {missing}; pass tfp_vae.load_results(out_dir).")
    if len(table) == 0:
        raise ValueError("the results table is empty: no sweep point has finished yet.")
    grouped = table.groupby("beta")[list(columns)]
    return grouped.mean().sort_index(), grouped.std(ddof=0).sort_index().fillna(0.0), grouped.size().sort_index()


def _beta_axis(ax, betas):
    # beta spans orders of magnitude; symlog keeps beta = 0 (a plain autoencoder) on the axis.
    if np.all(np.asarray(betas) > 0):
        ax.set_xscale("log")
    else:
        ax.set_xscale("symlog", linthresh=min([b for b in betas if b > 0] or [1.0]))
    ax.set_xlabel("beta (KL weight in training)")


def rate_distortion(table, title: str | None = None) -> Figure:
    """Rate (kl, nats) against distortion (nll, nats) per beta; error bars are sd over seeds."""
    mean, sd, count = _by_beta(table, ("nll", "kl"))
    fig = Figure(figsize=(6, 4.5), layout="constrained")
    ax = fig.add_subplot()
    ax.errorbar(mean["nll"], mean["kl"], xerr=sd["nll"], yerr=sd["kl"], fmt="o-", capsize=3)
    for beta, row in mean.iterrows():
        ax.annotate(f"beta={beta:g}", (row["nll"], row["kl"]), textcoords="offset points",
                    xytext=(6, 4), fontsize=8)
    ax.set_xlabel("distortion  E_q[-log p(x|z)]  (nats per test image)")
    ax.set_ylabel("rate  KL(q(z|x) || p(z))  (nats per test image)")
    seeds = int(count.max())
    ax.set_title(title or f"Rate-distortion across beta (mean +- sd over {seeds} seed(s))")
    ax.grid(alpha=0.3)
    return fig


def active_units_vs_beta(table, latent_dim: int | None = None) -> Figure:
    """Active units (Var_x E_q[z_d] > 0.01) against beta, mean +- sd over seeds."""
    mean, sd, _ = _by_beta(table, ("active_units",))
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    ax.errorbar(mean.index, mean["active_units"], yerr=sd["active_units"], fmt="o-", capsize=3)
    if latent_dim is None and "latent_dim" in table.columns:
        latent_dim = int(table["latent_dim"].max())
    if latent_dim is not None:
        ax.axhline(latent_dim, color="grey", ls="--", lw=1, label=f"latent_dim = {latent_dim}")
        ax.legend()
    _beta_axis(ax, list(mean.index))
    ax.set_ylabel("active units")
    ax.set_ylim(bottom=0)
    ax.set_title("Active latent units across beta (mean +- sd over seeds)")
    ax.grid(alpha=0.3)
    return fig


def traversal_mosaic(model, x, dims: int = 4, steps: int = 7, span: float = 3.0):
    """The images of a latent traversal of x[0], as one mosaic, and the dims traversed.

    The `dims` most active latent dimensions (largest variance over the images x of the
    posterior mean) are varied one at a time, by `steps` offsets in [-span, span] around x[0]'s
    posterior mean; each decoded to its mean image.

    Returns (mosaic [dims * H, steps * W] float array, list of (dim, variance)).
    """
    height, width, _ = model.config.input_shape
    means = model.encoder(np.asarray(x, np.float32)).mean().numpy()  # [N, latent_dim]
    variance = means.var(axis=0)
    order = np.argsort(-variance)[: min(dims, means.shape[1])]
    offsets = np.linspace(-span, span, steps, dtype=np.float32)
    z = np.repeat(means[:1], len(order) * steps, axis=0)  # [dims * steps, latent_dim]
    for row, d in enumerate(order):
        z[row * steps:(row + 1) * steps, d] += offsets
    images = model.decoder(z).mean().numpy()[..., 0]  # [dims * steps, H, W] (first channel)
    mosaic = images.reshape(len(order), steps, height, width).transpose(0, 2, 1, 3)
    return mosaic.reshape(len(order) * height, steps * width), [(int(d), float(variance[d])) for d in order]


def traversals_by_beta(models: dict, x, dims: int = 4, steps: int = 7, span: float = 3.0) -> Figure:
    """Traversals of image x[0] side by side, one panel per beta.

    models: {beta: trained VAE}; x: images [N, H, W, C] scaled for them (N >= 2: the spread of the
    posterior means over x ranks the latent dimensions). Rows: the `dims` most active dimensions
    (labelled with their variance of E_q[z_d]); columns: offsets in [-span, span].
    """
    if not models:
        raise ValueError("traversals_by_beta needs at least one {beta: model}.")
    betas = sorted(models)
    fig = Figure(figsize=(2.6 * len(betas), 0.45 * dims + 1.4), layout="constrained")
    axes = fig.subplots(1, len(betas), squeeze=False)[0]
    height = models[betas[0]].config.input_shape[0]
    for ax, beta in zip(axes, betas):
        mosaic, ranked = traversal_mosaic(models[beta], x, dims, steps, span)
        ax.imshow(mosaic, cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"beta = {beta:g}")
        ax.set_xticks([])
        ax.set_yticks([(i + 0.5) * height for i in range(len(ranked))],
                      [f"z{d} ({v:.2f})" for d, v in ranked], fontsize=7)
    fig.suptitle(f"Latent traversals of one test image: offsets {-span:g}..{span:g} around its "
                 "posterior mean (rows: most active dims, Var E_q[z_d] in brackets)", fontsize=9)
    return fig


# ---------------------------------------------------------------------------- likelihood families
def _image_rows(fig, rows: list, titles: list, cmap="gray"):
    """One figure row per entry of `rows` (each [n, H, W]), titled on its first panel."""
    n = rows[0].shape[0]
    axes = fig.subplots(len(rows), n, squeeze=False)
    for r, (images, title) in enumerate(zip(rows, titles)):
        for c in range(n):
            ax = axes[r, c]
            ax.imshow(np.clip(images[c], 0, 1), cmap=cmap, vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(title, rotation=0, ha="right", va="center", fontsize=8)
    return axes


def compare_reconstructions(models: dict, x_uint8, n: int = 8) -> Figure:
    """The same n test images reconstructed by each model (e.g. one per likelihood family).

    x_uint8: raw images [N, H, W, C] (0..255); each model sees them scaled for its own family
    (`tfp_vae.scale_images`). Rows: the originals (x/255), then per model the mean of p(x|z) at
    z = E_q[z|x].
    """
    from tfp_vae.data import scale_images

    x_uint8 = np.asarray(x_uint8)[:n]
    rows, titles = [x_uint8[..., 0] / 255.0], ["original"]
    for name, model in models.items():
        x = scale_images(x_uint8, model.config.likelihood)
        z = model.encoder(x).mean()
        rows.append(model.decoder(z).mean().numpy()[..., 0])
        titles.append(f"{name}\nmean p(x|z)")
    fig = Figure(figsize=(1.1 * len(x_uint8) + 1.5, 1.15 * len(rows)), layout="constrained")
    _image_rows(fig, rows, titles)
    fig.suptitle("Reconstructions of the same test images (decoder mean at the posterior mean)")
    return fig


def compare_samples(models: dict, n: int = 8, seed: int = 0) -> Figure:
    """Per model, n draws z ~ p(z) (the same z for every model of equal latent size) decoded two
    ways: the mean of p(x|z), and one draw x ~ p(x|z), which shows each family's pixel noise."""
    import tensorflow as tf

    rows, titles = [], []
    for name, model in models.items():
        z = tf.random.stateless_normal([n, model.config.latent_dim], seed=[seed, 0])
        p = model.decoder(z)
        rows += [p.mean().numpy()[..., 0], p.sample(seed=(seed, 1)).numpy()[..., 0]]
        titles += [f"{name}\nmean p(x|z)", f"{name}\nx ~ p(x|z)"]
    fig = Figure(figsize=(1.1 * n + 1.5, 1.15 * len(rows)), layout="constrained")
    _image_rows(fig, rows, titles)
    fig.suptitle("Samples from the prior: decoder mean and a draw from the decoder")
    return fig
