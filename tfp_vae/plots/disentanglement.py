"""Pictures of disentanglement: traversals along the principal directions of the code, traversals
per generative factor, and disentanglement against beta beside the rate-distortion curve.

Why principal directions: with a full-covariance posterior and the isotropic prior N(0, I), the
objective is invariant to rotating z, so a trained code can lie along any orthonormal basis and
moving one coordinate at a time mixes several learned features (see
`tfp_vae.evaluation.elbo.active_directions`). The eigenvectors of Cov_x(E_q[z|x]) do not depend on that
rotation; steps along each are in units of its standard deviation over the images.

Every function returns a matplotlib `Figure` (no pyplot state).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

from tfp_vae.errors import TfpVaeError
from tfp_vae.evaluation import disentanglement
from tfp_vae.evaluation.elbo import posterior_means
from tfp_vae.plots.images import draw_image, need_images
from tfp_vae.plots.studies import beta_axis, by_beta, rate_distortion

if TYPE_CHECKING:
    import pandas as pd  # scikit-learn loads when this figure is first drawn

    from tfp_vae.model.vae import VAE


def principal_directions(codes) -> tuple[np.ndarray, np.ndarray]:
    """codes [N >= 2, d] -> (sd [d], directions [d, d]): the square roots of the eigenvalues of
    Cov(codes), largest first, and the matching unit eigenvectors as rows (signs fixed so each
    row's largest entry is positive)."""
    codes = np.asarray(codes, np.float64)
    if codes.ndim != 2 or len(codes) < 2:
        raise TfpVaeError(f"principal directions need codes [N >= 2, latent_dim], got shape {codes.shape}.")
    variance, vectors = np.linalg.eigh(np.cov(codes, rowvar=False).reshape(codes.shape[1], -1))
    order = np.argsort(-variance)
    rows = vectors[:, order].T
    rows *= np.sign(rows[np.arange(len(rows)), np.argmax(np.abs(rows), axis=1)])[:, None]
    return np.sqrt(np.clip(variance[order], 0.0, None)), rows


def principal_traversal_images(model, x, codes=None, directions: int = 4, steps: int = 7, span: float = 2.0):
    """Decoder means at E_q[z|x[0]] + t * sd_j * v_j for the `directions` principal directions
    v_j of the codes and t in -span..span.

    x: images [N, H, W, C] scaled for `model` (x[0] is traversed); codes: posterior means [M, d]
    defining the directions (default: those of x, N >= 2).
    Returns (offsets t [steps], sd [k], images [k, steps, H, W, C]).
    """
    x = need_images(x)
    codes = posterior_means(model, x) if codes is None else np.asarray(codes)
    sd, vectors = principal_directions(codes)
    k = max(1, min(int(directions), len(sd)))
    offsets = np.linspace(-span, span, steps)
    return offsets, sd[:k], _decode_along(model, x[:1], sd[:k, None] * vectors[:k], offsets)


def _decode_along(model, x0, steps_of, offsets):
    """Decoder means [k, steps, H, W, C] at E_q[z|x0] + t * steps_of[j] for t in offsets."""
    centre = posterior_means(model, x0)[0].astype(np.float64)
    z = centre + offsets[None, :, None] * steps_of[:, None, :]  # [k, steps, d]
    images = model.decoder(z.reshape(-1, len(centre)).astype(np.float32)).mean().numpy()
    return images.reshape(*z.shape[:2], *images.shape[1:])


def _traversal_figure(x0, images, offsets, labels, title) -> Figure:
    rows, steps = images.shape[:2]
    fig = Figure(figsize=(1.1 * (steps + 1), 1.15 * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, steps + 1, squeeze=False)
    for r in range(rows):
        draw_image(axes[r, 0], x0, "input" if r == 0 else None)
        for c in range(steps):
            draw_image(axes[r, c + 1], images[r, c], f"{offsets[c]:+.1f} sd" if r == 0 else None)
        axes[r, 0].set_ylabel(labels[r], rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(title, fontsize=10)
    return fig


def principal_traversals(
    model: VAE,
    x: np.ndarray,
    codes: np.ndarray | None = None,
    directions: int = 4,
    steps: int = 7,
    span: float = 2.0,
) -> Figure:
    """Rows: the principal directions of the posterior means (labelled with their sd and share of
    variance); columns: x[0]'s posterior mean moved along each by -span..span sd.
    Arguments as `principal_traversal_images`."""
    x = need_images(x)
    codes = posterior_means(model, x) if codes is None else np.asarray(codes)
    offsets, sd, images = principal_traversal_images(model, x, codes, directions, steps, span)
    total = float(np.sum(principal_directions(codes)[0] ** 2)) or 1.0
    labels = [f"PC {j + 1}\nsd {s:.2f}\n{100 * s * s / total:.0f}%" for j, s in enumerate(sd)]
    return _traversal_figure(
        x[0],
        images,
        offsets,
        labels,
        "x[0]'s code moved along the principal directions of Cov_x E_q[z|x] (steps in each direction's sd)",
    )


def factor_traversals(
    model: VAE,
    x: np.ndarray,
    codes: np.ndarray,
    factors: np.ndarray,
    factor_names: Sequence[str],
    steps: int = 7,
    span: float = 2.0,
    basis: str = "principal",
) -> Figure:
    """One row per generative factor: x[0]'s code moved along the direction that carries the most
    information about that factor (discrete mutual information of the projected codes, 20 bins,
    as MIG), labelled with the factor, the direction and I / H(factor).

    x: images [N, H, W, C] scaled for `model`; codes: their posterior means [M, d] and factors: their
    class indices [M, K] (e.g. `ds.factors(indices)`); factor_names: K names.
    basis: "principal", the principal directions of the codes (PC 1, ...; for a full-covariance
    posterior, whose code may lie in any rotation), or "latents", the coordinates z0 .. z<d-1>
    (for a diagonal posterior: the axes MIG, DCI and the FactorVAE score read). Steps are in each
    direction's sd over the codes.
    """
    from sklearn.metrics import mutual_info_score  # scikit-learn loads when this figure is first drawn

    x = need_images(x)
    codes, factors = disentanglement.check_codes_factors(codes, factors)
    if len(factor_names) != factors.shape[1]:
        raise TfpVaeError(f"factor_names has {len(factor_names)} names for {factors.shape[1]} factors.")
    if basis == "principal":
        sd, vectors = principal_directions(codes)
        names = [f"PC {j + 1}" for j in range(len(sd))]
        kind = "principal direction"
    elif basis == "latents":
        sd, vectors = codes.std(axis=0), np.eye(codes.shape[1])
        names = [f"z{j}" for j in range(len(sd))]
        kind = "latent coordinate"
    else:
        raise TfpVaeError(
            f"basis={basis!r}: choose 'principal' (directions of Cov codes) or 'latents' (z0, z1, ...)."
        )
    projected = (codes - codes.mean(axis=0)) @ vectors.T
    informative = sd > 1e-6  # a direction without spread has no bins to tell factors apart
    info = disentanglement.mutual_information(disentanglement.discretize(projected[:, informative]), factors)
    entropy = np.array([mutual_info_score(f, f) for f in factors.T])
    best = np.flatnonzero(informative)[np.argmax(info, axis=0)]  # [K]
    share = info.max(axis=0) / np.where(entropy > 0, entropy, 1.0)
    offsets = np.linspace(-span, span, steps)
    images = _decode_along(model, x[:1], sd[best, None] * vectors[best], offsets)
    labels = [f"{name}\n{names[j]}\nI/H {s:.2f}" for name, j, s in zip(factor_names, best, share)]
    return _traversal_figure(
        x[0],
        images,
        offsets,
        labels,
        f"per factor: the {kind} most informative about it "
        "(I/H = its mutual information with the factor over the factor's entropy)",
    )


def kl_per_dim_by_beta(table: pd.DataFrame) -> Figure:
    """The rate of each latent coordinate, one panel per beta: per seed, bars of
    E_x KL(q(z_j|x) || N(0, 1)) (nats per image) of its coordinates sorted largest first (the
    coordinates' order is arbitrary), so the coordinates a large beta collapses to the prior sit at
    0 on the right. table: `tfp_vae.study_kl_per_dim` (columns beta, seed, kl, z0 .. z<d-1>)."""
    dims = [c for c in table.columns if c[:1] == "z" and c[1:].isdigit()]
    missing = [c for c in ("beta", "seed", "kl") if c not in table.columns]
    if not dims or missing or len(table) == 0:
        raise TfpVaeError(
            "kl_per_dim_by_beta needs a table of study_kl_per_dim (columns beta, seed, kl, z0, z1, ...); "
            f"got columns {list(table.columns)} and {len(table)} row(s)."
        )
    betas = sorted(table["beta"].unique())
    fig = Figure(figsize=(3.6 * len(betas), 3.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(betas), sharey=True))
    rank = np.arange(1, len(dims) + 1)
    for ax, beta in zip(axes, betas):
        runs = table[table["beta"] == beta].sort_values("seed")
        width = 0.8 / len(runs)
        for i, run in enumerate(runs.itertuples(index=False)):
            kl = np.sort(np.asarray([getattr(run, d) for d in dims], float))[::-1]
            offset = (i - (len(runs) - 1) / 2) * width
            ax.bar(rank + offset, kl, width, color=f"C{i}", label=f"seed {run.seed} (KL {run.kl:.1f})")
        ax.set_xticks(rank)
        ax.set_xlabel("latent coordinate, by its KL (largest first)")
        ax.set_title(f"beta = {beta:g}", fontsize=10)
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("KL per coordinate (nats per image)")
    steps = sorted({int(s) for s in table["steps"].dropna()}) if "steps" in table.columns else []
    at = f" after {', '.join(f'{s:,}' for s in steps)} steps" if steps else ""
    fig.suptitle(f"The rate of each latent coordinate{at}", fontsize=10)
    return fig


def disentanglement_vs_beta(
    table: pd.DataFrame, metric: str | Sequence[str] = ("mig", "dci_disentanglement")
) -> Figure:
    """Left: disentanglement metric(s) against beta, mean +- sd over seeds; right: the
    rate-distortion curve of the same runs (`tfp_vae.rate_distortion`).

    table: a sweep's results (`tfp_vae.load_results`) on data with known factors; metric: a
    column name or several (`tfp_vae.evaluation.disentanglement.METRICS`).
    """
    metrics = [metric] if isinstance(metric, str) else list(metric)
    if not metrics:
        raise TfpVaeError(f"metric=(): name one or more of {list(disentanglement.METRICS)}.")
    for m in metrics:
        disentanglement.METRICS.check(m)
    mean, sd, count = by_beta(table, metrics)
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    left, right = fig.subplots(1, 2)
    for m in metrics:
        left.errorbar(mean.index, mean[m], yerr=sd[m], fmt="o-", capsize=3, label=disentanglement.METRICS[m])
    beta_axis(left, list(mean.index))
    left.set_ylim(0, 1)
    left.set_ylabel("score (1 = disentangled)")
    left.legend(fontsize=8)
    left.grid(alpha=0.3)
    left.set_title(f"Disentanglement across beta (mean +- sd over {int(count.max())} seed(s))")
    rate_distortion(table, ax=right)
    return fig


def study_vs_beta(
    table: pd.DataFrame, metrics: str | Sequence[str] = ("mig", "factor_vae_score", "dci_disentanglement")
) -> Figure:
    """The β-VAE study's metrics against beta: one panel per metric, every seed's figure as a
    point and the median over seeds as a line, one colour per milestone of training.

    table: `tfp_vae.studies.beta_study.study_table` (columns beta, seed, `<metric>@<steps>`);
    metrics: names of `tfp_vae.evaluation.disentanglement.METRICS` (or "elbo"), each drawn at
    every milestone the table holds it for.
    """
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    if not names:
        raise TfpVaeError(f"metrics=(): name one or more of {list(disentanglement.METRICS)}.")
    columns = {m: [c for c in table.columns if c.startswith(f"{m}@")] for m in names}
    missing = [m for m, found in columns.items() if not found]
    if missing:
        have = sorted({c.split("@")[0] for c in table.columns if "@" in c})
        raise TfpVaeError(f"the study table has no column of {missing}; it has {have} (study_table's).")
    betas = sorted(table["beta"].unique())
    fig = Figure(figsize=(4.2 * len(names), 3.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(names)))
    for ax, name in zip(axes, names):
        for i, col in enumerate(columns[name]):
            values = table[["beta", col]].dropna()
            if values.empty:
                continue
            colour = f"C{i}"
            spread = 1.0 + 0.04 * (i - (len(columns[name]) - 1) / 2)  # milestones side by side
            ax.scatter(values["beta"] * spread, values[col], s=14, alpha=0.6, color=colour)
            median = values.groupby("beta")[col].median()
            ax.plot(median.index * spread, median, "o-", color=colour, label=f"{col.split('@')[1]} steps")
        beta_axis(ax, betas)
        ax.set_xticks(betas, [f"{b:g}" for b in betas])
        ax.minorticks_off()
        label = disentanglement.METRICS[name] if name in disentanglement.METRICS else name
        ax.set_title(f"{label}: seeds (dots), median (line)", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig
