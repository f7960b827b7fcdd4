"""Every picture of a trained run, drawn into RUN_DIR/plots/ (what `tfp-vae plot RUN_DIR` does)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tf_keras
from matplotlib.figure import Figure

from tfp_vae.data.load import prepare
from tfp_vae.errors import TfpVaeError
from tfp_vae.evaluation.elbo import posterior_means
from tfp_vae.plots.disentanglement import principal_traversals
from tfp_vae.plots.model import (
    image_grid,
    latent_before_after,
    latent_manifold,
    latent_scatter,
    latent_traversals,
    prior_samples,
    reconstructions,
    training_curves,
)
from tfp_vae.runs import files as runs
from tfp_vae.runs.fingerprint import load_checked

PLOTS_DIR = "plots"


def save_run_plots(run_dir, data_dir=None, n=10, verbose=0) -> list[Path]:
    """Draws every figure for the run in `run_dir` into run_dir/plots/*.png; returns the paths.

    Uses the run's test split; the before/after scatter needs the latents `train` recorded. Each
    picture's title names the run (`run_figures`). verbose: 1 shows a progress bar over the
    figures (with an ETA), 0 is silent.
    """
    figures = run_figures(run_dir, data_dir, n)
    out = Path(run_dir) / PLOTS_DIR
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


def run_figures(run_dir, data_dir=None, n=10) -> dict[str, Callable[[], Figure]]:
    """{file name: a function drawing that figure} for every picture of the run in `run_dir`, each
    titled with the run's folder and what it shows (the training curves name the split their val_
    columns come from: "validation", or "test" for a run without a validation split)."""
    run_dir = Path(run_dir)
    model = runs.load(run_dir)
    config = model.config
    loaded = load_checked(config, data_dir, run_dir)
    _, (x_test, y_test) = prepare(loaded, config.likelihood, config.binarize, config.seed)
    names = loaded.class_names  # None without labels: no titles, no class colours
    figures = {
        "examples": lambda: _titled(
            image_grid(x_test[: 2 * n], _take(y_test, slice(2 * n)), names), "test images"
        ),
        "reconstructions": lambda: reconstructions(
            model, x_test[:n], title="test images and their reconstructions"
        ),
        "prior_samples": lambda: prior_samples(model),
        "latent_traversals": lambda: latent_traversals(model, x_test[0]),
    }
    # history.json, or history.csv alone (a shipped or exported run); none under one whole epoch
    history = runs.load_history(run_dir) if _has_history(run_dir) else {}
    if any(history.values()):
        split = "validation" if config.validation_examples else "test"  # where the val_ columns come from
        figures["training_curves"] = lambda: _titled(
            training_curves(history, split), f"training curves (train and {split} split)"
        )
    if config.latent_dim == 2:
        figures["latent_manifold"] = lambda: latent_manifold(model)
    if config.latent_dim >= 2:
        figures["latent_space"] = lambda: _titled(
            _before_after(model, run_dir, x_test, y_test, names), "posterior means of test images"
        )
    if config.latent_dim >= 2:  # traversals along the code's principal directions, not its coordinates
        figures["principal_traversals"] = lambda: principal_traversals(model, x_test[: runs.LATENT_EXAMPLES])
    return {name: functools.partial(_named, draw, run_dir, name) for name, draw in figures.items()}


def _has_history(run_dir: Path) -> bool:
    return any((run_dir / name).is_file() for name in (runs.HISTORY_JSON, runs.HISTORY_CSV))


def _titled(fig: Figure, title: str) -> Figure:
    fig.suptitle(title)
    return fig


def _named(draw, run_dir, name: str) -> Figure:
    fig = draw()
    fig.suptitle(f"{run_dir}: {fig.get_suptitle() or name.replace('_', ' ')}", fontsize=10)
    return fig


def _before_after(model, run_dir, x_test, y_test, names):
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
