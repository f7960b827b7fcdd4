"""tfp_vae: variational autoencoders from TensorFlow Probability's probabilistic layers.

    import tf_keras, tfp_vae
    cfg = tfp_vae.VAEConfig(latent_dim=2, likelihood="bernoulli", binarize="dynamic")
    (x, y), (xt, yt) = tfp_vae.load_data_for(cfg)
    model = tfp_vae.build_vae(cfg)
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-3))
    model.fit(x, epochs=5, batch_size=32, validation_data=(xt,))
    tfp_vae.evaluate(model, xt[:1000])       # elbo, nll, kl, iwae, ... in nats per example

Every loss and metric is in nats per example. The sub-packages, along the path the data takes:

    data        where images come from (numpy only)
    config      `VAEConfig`, the one description of a run; `choices`: every variant's name
    model       likelihoods, bodies, posterior and KL, priors, the `VAE`
    runs        run directories: files, data records, locks
    evaluation  ELBO / IWAE, resumable shards, disentanglement metrics
    training    the run protocol, checkpoints, reproducibility, distribution, warm start
    studies     sweeps and tables of runs
    plots       pictures, each a matplotlib Figure
    cli         the `tfp-vae` command line

Each name below is loaded from its sub-package when first used (PEP 562), so `import tfp_vae`
is quick and silent, and the command line parses its arguments without TensorFlow. TensorFlow's
C++ notices stay off unless `TF_CPP_MIN_LOG_LEVEL` is set (`tfp_vae.quiet`); each toolkit warning
shows once per process (`tfp_vae.errors.warn_once`).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# The public names and their homes: `tfp_vae.NAME` is `HOME.NAME`.
_HOMES = {
    "tfp_vae.errors": [
        "ConfigError",
        "DataError",
        "NonBinaryBernoulliWarning",
        "NonFiniteLossError",
        "RunDirError",
        "RunPaused",
        "RunWriteError",
        "TfpVaeError",
    ],
    "tfp_vae.config": ["VAEConfig"],
    "tfp_vae.choices": [
        "ENCODERS",
        "HIDDEN_ACTIVATIONS",
        "LIKELIHOODS",
        "LR_SCHEDULES",
        "PRIORS",
        "SCHEDULES",
        "STRATEGIES",
    ],
    "tfp_vae.data": [
        "CLASS_NAMES",
        "DATASETS",
        "SOURCES",
        "DSprites",
        "binarize_images",
        "check_images",
        "check_labels",
        "load_dataset",
        "load_dsprites",
        "load_fashion_mnist",
        "load_mnist",
        "load_uint8",
        "scale_images",
    ],
    "tfp_vae.model": [
        "VAE",
        "Gated",
        "GaussianMixtureTriL",
        "KLDivergence",
        "KLSchedule",
        "KLScheduleCallback",
        "Likelihood",
        "build_decoder",
        "build_encoder",
        "build_prior",
        "build_vae",
        "standard_normal_prior",
    ],
    "tfp_vae.runs": ["RunDirBusyError", "load", "load_config", "load_history", "run_lock", "save"],
    "tfp_vae.evaluation": [
        "beta_vae_score",
        "dci",
        "disentanglement_metrics",
        "evaluate",
        "evaluate_run",
        "factor_vae_score",
        "mig",
        "model_metrics",
        "modularity_explicitness",
        "posterior_means",
        "sap",
    ],
    "tfp_vae.training": [
        "LRSchedule",
        "TensorBoardLogs",
        "load_data_for",
        "make_optimizer",
        "make_strategy",
        "op_determinism",
        "train",
    ],
    "tfp_vae.studies": [
        "SweepPoint",
        "export_run",
        "grid_points",
        "load_results",
        "runs_table",
        "shard_points",
        "family_table",
        "study_kl_per_dim",
        "study_summary",
        "study_table",
        "sweep",
    ],
    "tfp_vae.plots": [
        "active_units_vs_beta",
        "compare_reconstructions",
        "compare_samples",
        "disentanglement_vs_beta",
        "factor_traversals",
        "principal_traversals",
        "rate_distortion",
        "study_vs_beta",
        "kl_per_dim_by_beta",
        "traversals_by_beta",
        "validation_curves",
        "bits_per_dim_ranking",
    ],
}
_HOME = {name: home for home, names in _HOMES.items() for name in names}
_SUBPACKAGES = (
    "choices",
    "cli",
    "config",
    "data",
    "errors",
    "evaluation",
    "model",
    "plots",
    "quiet",
    "registry",
    "runs",
    "studies",
    "training",
)

__all__ = sorted(_HOME)


def exported_by(home: str) -> list[str]:
    """The public names whose home is the sub-package `home`: the `__all__` of its `__init__`."""
    return _HOMES[home]


def __getattr__(name: str) -> Any:
    if name in _HOME:
        value = getattr(importlib.import_module(_HOME[name]), name)
    elif name in _SUBPACKAGES:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module 'tfp_vae' has no attribute {name!r}")
    globals()[name] = value  # the next look-up is an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, *_SUBPACKAGES})
