"""tfp_vae: variational autoencoders from TensorFlow Probability's probabilistic layers.

    import tf_keras, tfp_vae
    cfg = tfp_vae.VAEConfig(latent_dim=2, likelihood="bernoulli", kl="exact", beta=1.0)
    model = tfp_vae.build_vae(cfg)
    (x, y), (xt, yt) = tfp_vae.load_fashion_mnist(likelihood="bernoulli")
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-3))
    model.fit(x, epochs=5, batch_size=32, validation_data=(xt,))
    tfp_vae.save(model, "runs/a"); model2 = tfp_vae.load("runs/a")

Every loss and metric is in nats per example.
"""

from tfp_vae.quiet import before_tensorflow as _before_tensorflow

_before_tensorflow()  # in the `tfp-vae` command only: TensorFlow's C++ notices off (tfp_vae.quiet)

from tfp_vae.config import VAEConfig  # noqa: E402
from tfp_vae.data import (
    CLASS_NAMES,
    DATASETS,
    binarize_images,
    check_images,
    check_labels,
    load_dataset,
    load_fashion_mnist,
    load_mnist,
    load_uint8,
    scale_images,
)
from tfp_vae.decoders import build_decoder
from tfp_vae.disentanglement import dci, disentanglement_metrics, factor_vae_score, mig, model_metrics, sap
from tfp_vae.disentanglement_plots import disentanglement_vs_beta, factor_traversals, principal_traversals
from tfp_vae.distribute import STRATEGIES, make_strategy
from tfp_vae.divergence import KLDivergence, standard_normal_prior
from tfp_vae.dsprites import DSprites, load_dsprites
from tfp_vae.encoders import ENCODERS, build_encoder
from tfp_vae.errors import ConfigError, DataError, NonFiniteLossError, RunDirError, TfpVaeError
from tfp_vae.evaluate import evaluate, posterior_means
from tfp_vae.evaluation_shards import evaluate_run
from tfp_vae.hidden import HIDDEN_ACTIVATIONS, Gated
from tfp_vae.likelihoods import LIKELIHOODS, Likelihood, NonBinaryBernoulliWarning
from tfp_vae.locks import RunDirBusyError, run_lock
from tfp_vae.model import VAE, build_vae
from tfp_vae.plots import (
    active_units_vs_beta,
    compare_reconstructions,
    compare_samples,
    rate_distortion,
    traversals_by_beta,
    validation_curves,
)
from tfp_vae.priors import PRIORS, GaussianMixtureTriL, build_prior
from tfp_vae.protocol import LR_SCHEDULES, LRSchedule
from tfp_vae.reproducible import op_determinism
from tfp_vae.runs import load, load_config, load_history, save
from tfp_vae.schedules import SCHEDULES, KLSchedule, KLScheduleCallback
from tfp_vae.show import runs_table
from tfp_vae.sources import SOURCES
from tfp_vae.sweep import SweepPoint, grid_points, load_results, shard_points, sweep
from tfp_vae.tensorboard_logs import TensorBoardLogs
from tfp_vae.train import load_data_for, make_optimizer, train

__version__ = "0.1.0"

__all__ = [
    "CLASS_NAMES",
    "DATASETS",
    "ENCODERS",
    "LIKELIHOODS",
    "SCHEDULES",
    "STRATEGIES",
    "ConfigError",
    "DataError",
    "KLDivergence",
    "KLSchedule",
    "KLScheduleCallback",
    "Likelihood",
    "NonBinaryBernoulliWarning",
    "NonFiniteLossError",
    "RunDirError",
    "TfpVaeError",
    "VAE",
    "VAEConfig",
    "binarize_images",
    "build_decoder",
    "build_encoder",
    "build_vae",
    "check_images",
    "check_labels",
    "evaluate",
    "load",
    "load_config",
    "load_data_for",
    "load_dataset",
    "load_fashion_mnist",
    "load_history",
    "load_mnist",
    "load_uint8",
    "make_optimizer",
    "make_strategy",
    "op_determinism",
    "posterior_means",
    "save",
    "scale_images",
    "standard_normal_prior",
    "train",
    # beta-VAE studies (sweeps and their pictures)
    "SweepPoint",
    "active_units_vs_beta",
    "compare_reconstructions",
    "compare_samples",
    "grid_points",
    "load_results",
    "rate_distortion",
    "shard_points",
    "sweep",
    "traversals_by_beta",
    "validation_curves",
    # disentanglement metrics on data with known factors
    "dci",
    "disentanglement_metrics",
    "disentanglement_vs_beta",
    "factor_traversals",
    "factor_vae_score",
    "mig",
    "model_metrics",
    "principal_traversals",
    "sap",
    # data sets: own images (the sources registry) and dSprites
    "SOURCES",
    "DSprites",
    "load_dsprites",
    # learned priors and gated bodies (issue 9)
    "HIDDEN_ACTIVATIONS",
    "PRIORS",
    "GaussianMixtureTriL",
    "Gated",
    "build_prior",
    # calm, shareable runs
    "RunDirBusyError",
    "TensorBoardLogs",
    "run_lock",
    "runs_table",
    # training protocol and resumable evaluation (issue 9)
    "LR_SCHEDULES",
    "LRSchedule",
    "evaluate_run",
]
