"""The probabilistic model: likelihood families, bodies, the posterior and its KL, priors, the VAE.

    likelihoods   decoder families p(x|z) (entries of `tfp_vae.choices.LIKELIHOODS`)
    hidden        hidden layers of the bodies: relu or gated
    encoders      body + MultivariateNormalTriL posterior with its one KL loss
    decoders      z -> raw parameters -> the family's distribution
    posterior     q(z|x), `KLDivergence` (exact or sampled, beta-weighted), N(0, I)
    priors        p(z): standard, learned mixture, VampPrior
    kl_schedules  how beta (and the capacity C) move during training
    streams       the seeded random stream every draw of a step takes its seed from
    vae           `VAE` (the train step, in nats per example) and `build_vae`

May use `tfp_vae.config` and `tfp_vae.data`; nothing above (runs, training, evaluation, ...).
"""

import tfp_vae
from tfp_vae import quiet

quiet.import_tensorflow()  # TensorFlow's import-time C++ notices off, before its first import

from tfp_vae.model.decoders import build_decoder
from tfp_vae.model.encoders import build_encoder
from tfp_vae.model.hidden import Gated
from tfp_vae.model.kl_schedules import KLSchedule, KLScheduleCallback
from tfp_vae.model.likelihoods import Likelihood
from tfp_vae.model.posterior import KLDivergence, standard_normal_prior
from tfp_vae.model.priors import GaussianMixtureTriL, build_prior
from tfp_vae.model.vae import STEPS_PER_EXECUTION, VAE, build_vae

__all__ = [*tfp_vae.exported_by(__name__), "STEPS_PER_EXECUTION"]
