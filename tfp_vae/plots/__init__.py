"""Pictures, each a function returning a `matplotlib.figure.Figure` (no pyplot, nothing shown).

    images           drawing images on axes (shared helpers)
    model            a model and its training: examples, latent space, reconstructions, samples,
                     manifold, traversals, training and validation curves
    studies          beta-VAE sweeps, likelihood families side by side and ranked in bits/dim
    disentanglement  principal and per-factor traversals, metrics and per-latent KL against beta
    run              `save_run_plots`: every picture of a run directory (`tfp-vae plot`)

May use `tfp_vae.training` and everything below it.
"""

import tfp_vae
from tfp_vae import quiet

quiet.import_tensorflow()  # TensorFlow's import-time C++ notices off, before its first import

from tfp_vae.plots.disentanglement import (
    disentanglement_vs_beta,
    factor_traversals,
    kl_per_dim_by_beta,
    principal_traversals,
    study_vs_beta,
)
from tfp_vae.plots.model import (
    image_grid,
    latent_before_after,
    latent_manifold,
    latent_scatter,
    latent_traversals,
    prior_samples,
    reconstructions,
    training_curves,
    validation_curves,
)
from tfp_vae.plots.run import save_run_plots
from tfp_vae.plots.studies import (
    active_units_vs_beta,
    bits_per_dim_ranking,
    compare_reconstructions,
    compare_samples,
    rate_distortion,
    traversal_mosaic,
    traversals_by_beta,
)

__all__ = [
    *tfp_vae.exported_by(__name__),
    "image_grid",
    "latent_before_after",
    "latent_manifold",
    "latent_scatter",
    "latent_traversals",
    "prior_samples",
    "reconstructions",
    "save_run_plots",
    "training_curves",
    "traversal_mosaic",
]
