"""Evaluation: test-set ELBO and IWAE log-likelihood, resumable shards, disentanglement metrics.

    elbo              `evaluate` (ELBO, IWAE with its standard error, active units), posterior means
    shards            `evaluate_run`: a run's evaluation in resumable shards of images
    disentanglement   MIG, DCI, SAP, modularity, the FactorVAE and BetaVAE scores (known factors)

May use `tfp_vae.runs`, `tfp_vae.model`, `tfp_vae.config` and `tfp_vae.data`.
"""

import tfp_vae
from tfp_vae import quiet

quiet.import_tensorflow()  # TensorFlow's import-time C++ notices off, before its first import

from tfp_vae.evaluation.disentanglement import (
    beta_vae_score,
    dci,
    disentanglement_metrics,
    factor_vae_score,
    mig,
    model_metrics,
    modularity_explicitness,
    sap,
)
from tfp_vae.evaluation.elbo import evaluate, posterior_means
from tfp_vae.evaluation.shards import evaluate_run

__all__ = tfp_vae.exported_by(__name__)
