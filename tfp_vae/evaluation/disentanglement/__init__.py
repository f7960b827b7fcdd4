"""Disentanglement metrics on data with known generative factors, one estimator a module.

Each metric follows the estimator of disentanglement_lib (Locatello et al. 2019), with its
defaults, so the numbers are comparable with the published tables; each takes `seed` (an int or a
`np.random.Generator`).

    codes    float [N, latent_dim]   posterior means E_q[z|x] (`tfp_vae.posterior_means`)
    factors  int   [N, num_factors]  the class index of every generative factor

    information              the 20-bin histogram discretizer, discrete entropy, mutual information
    mutual_info_gap          `mig(codes, factors)`: MIG (Chen et al. 2018), 10,000 points
    importance               `dci(codes, factors)`: DCI (Eastwood & Williams 2018), 10,000 / 5,000
    predictability           `sap(codes, factors)`: SAP (Kumar et al. 2018), 10,000 / 5,000
    modularity_explicitness  `modularity_explicitness(codes, factors)`: Ridgeway & Mozer (2018)
    factor_vae               `factor_vae_score(model, ds)`: Kim & Mnih (2018), 10,000 / 5,000 votes
    beta_vae                 `beta_vae_score(model, ds)`: Higgins et al. (2017), 10,000 / 5,000
    observations             a model as a compiled representation function; images encoded in chunks
    suite                    METRICS, FACTOR_DATASETS, `disentanglement_metrics`, `model_metrics`
    resumable                `evaluate_factors`: a run's metrics kept group by group (resumable)

May use `tfp_vae.evaluation.elbo` and `shards`, `tfp_vae.runs`, `tfp_vae.model` and `tfp_vae.data`.

>>> rng = np.random.default_rng(0)
>>> factors = rng.integers(0, 4, [600, 2])                               # two factors, 4 classes each
>>> codes = np.concatenate([factors[:, ::-1], rng.normal(size=[600, 1])], axis=1)  # swapped + noise
>>> good, noise = mig(codes, factors), mig(rng.normal(size=[600, 3]), factors)
>>> good > 0.9 > 0.1 > noise, round(dci(codes, factors, 400, 200)["disentanglement"], 2)
(True, 1.0)
"""

import numpy as np  # noqa: F401  (the doctest above uses it)

from tfp_vae.evaluation.disentanglement.beta_vae import (
    BETA_VAE_BATCH,
    BETA_VAE_EVAL,
    BETA_VAE_TRAIN,
    beta_vae_score,
)
from tfp_vae.evaluation.disentanglement.checks import Seed, check_codes_factors
from tfp_vae.evaluation.disentanglement.factor_vae import (
    FACTOR_VAE_BATCH,
    FACTOR_VAE_EVAL,
    FACTOR_VAE_MIN_SD,
    FACTOR_VAE_TRAIN,
    FACTOR_VAE_VARIANCE_POINTS,
    factor_vae_score,
)
from tfp_vae.evaluation.disentanglement.importance import (
    NUM_TEST,
    NUM_TRAIN,
    dci,
    dci_scores,
    importance_matrix,
)
from tfp_vae.evaluation.disentanglement.information import discrete_entropy, discretize, mutual_information
from tfp_vae.evaluation.disentanglement.modularity_explicitness import (
    explicitness,
    modularity,
    modularity_explicitness,
)
from tfp_vae.evaluation.disentanglement.mutual_info_gap import MIG_BINS, MIG_POINTS, mig
from tfp_vae.evaluation.disentanglement.observations import ENCODE_BATCH, representation
from tfp_vae.evaluation.disentanglement.predictability import sap, sap_matrix
from tfp_vae.evaluation.disentanglement.resumable import evaluate_factors
from tfp_vae.evaluation.disentanglement.suite import (
    FACTOR_DATASETS,
    GROUP_METRICS,
    GROUPS,
    METRICS,
    TABLE_METRICS,
    disentanglement_metrics,
    factor_data,
    model_metrics,
)

__all__ = [
    "BETA_VAE_BATCH",
    "BETA_VAE_EVAL",
    "BETA_VAE_TRAIN",
    "ENCODE_BATCH",
    "FACTOR_DATASETS",
    "FACTOR_VAE_BATCH",
    "FACTOR_VAE_EVAL",
    "FACTOR_VAE_MIN_SD",
    "FACTOR_VAE_TRAIN",
    "FACTOR_VAE_VARIANCE_POINTS",
    "GROUPS",
    "GROUP_METRICS",
    "METRICS",
    "MIG_BINS",
    "MIG_POINTS",
    "NUM_TEST",
    "NUM_TRAIN",
    "TABLE_METRICS",
    "Seed",
    "beta_vae_score",
    "check_codes_factors",
    "dci",
    "dci_scores",
    "evaluate_factors",
    "discrete_entropy",
    "discretize",
    "disentanglement_metrics",
    "explicitness",
    "factor_data",
    "factor_vae_score",
    "importance_matrix",
    "mig",
    "model_metrics",
    "modularity",
    "modularity_explicitness",
    "mutual_information",
    "representation",
    "sap",
    "sap_matrix",
]
