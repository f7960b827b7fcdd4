"""The names of every variant whose entry needs TensorFlow, declared without it.

`VAEConfig` validates its fields against these registries and the command line offers their names
as choices, both without importing TensorFlow; the entries themselves are registered by each
registry's `home` module (the first look-up imports it). Adding a variant is two steps: declare
its name here (with a line of help and the facts validation needs), then register its entry in
the home module; `tests/test_layout.py` checks that every declared name has one.

>>> sorted(PRIORS), PRIORS.fact("vamp", "analytic_kl")
(['mixture', 'standard', 'vamp'], False)
"""

from __future__ import annotations

from typing import Any

from tfp_vae.registry import Registry, hint

# Entries are typed Any here: their classes live in the home modules, which import TensorFlow.
LIKELIHOODS: Registry[Any] = Registry("likelihood", "likelihood family", home="tfp_vae.model.likelihoods")
# Each family says how uint8 images are scaled for it and which values it supports; both are
# numpy work done by `tfp_vae.data.pixels` (registries SCALINGS and SUPPORTS). `on_8bit` says what
# `evaluate`'s bits_per_dim of 8-bit images is for it (`EIGHT_BIT_KINDS`).
LIKELIHOODS.declare(
    "bernoulli",
    "IndependentBernoulli over pixels, from logits.",
    scaling="unit",
    support="binary",
    on_8bit="binarized",
    synonyms=("binary", "logistic", "sigmoid", "bce"),
)
LIKELIHOODS.declare(
    "beta",
    "Independent(Beta) over pixels, two softplus concentrations per pixel.",
    scaling="bin_centres",
    support="open_unit",
    on_8bit="dequantization bound",
)
LIKELIHOODS.declare(
    "normal_fixed",
    "Independent(Normal) over pixels: decoder mean, fixed sigma VAEConfig.normal_sigma.",
    scaling="unit",
    support="reals",
    on_8bit="dequantization bound",
    synonyms=("gaussian", "gauss", "mse", "l2"),
)
LIKELIHOODS.declare(
    "normal",
    "Independent(Normal) over pixels: decoder mean and learned per-pixel softplus sigma.",
    scaling="unit",
    support="reals",
    on_8bit="dequantization bound",
    synonyms=("gaussian", "gauss"),
)
LIKELIHOODS.declare(
    "continuous_bernoulli",
    "Independent(ContinuousBernoulli) over pixels, from logits: a normalised density for grey "
    "levels in [0, 1].",
    scaling="unit",
    support="closed_unit",
    on_8bit="dequantization bound",
    synonyms=("cb",),
)
LIKELIHOODS.declare(
    "discretized_logistic",
    "Independent mixture of likelihood_components discretized logistics per pixel over the grey "
    "levels 0..255, the edge levels taking the tails (PixelCNN++): a probability of 8-bit images.",
    scaling="levels",
    support="levels",
    on_8bit="exact",
    synonyms=("dlogistic", "dmol", "pixelcnn", "discretized", "quantized"),
)
# What bits_per_dim of 8-bit images is for a family (its fact `on_8bit`): the exact probability of
# the discrete images, the uniform-dequantization lower bound of a density, or nothing (the
# Bernoulli models binarized images: its bits_per_dim is of those, another data set).
EIGHT_BIT_KINDS = ("exact", "dequantization bound", "binarized")

ENCODERS: Registry[Any] = Registry("encoder", "encoder/decoder body", home="tfp_vae.model.encoders")
# Fact `xla`: the training step runs as an XLA program (True), or as a plain tf.function graph whose
# kernels are TensorFlow's own (oneDNN). Chosen by measurement (issue 25, 2 Zen 4 cores): the dense
# bodies gain from XLA's fusion and its loop of steps; XLA's CPU convolutions are ~3x slower than
# oneDNN's, and inside a loop of steps it emits the filter-gradient convolution in a layout its
# Eigen kernel does not take (dim_labels f01b_i01o->01bf), a naive loop ~20x slower still.
ENCODERS.declare(
    "mlp", "dense layers VAEConfig.hidden_units; the decoder mirrors them", synonyms=("dense",), xla=True
)
ENCODERS.declare(
    "conv",
    "stride-2 convolutions, then dense layers; transposed convolutions back",
    synonyms=("cnn",),
    xla=False,
)
ENCODERS.declare("linear", "no hidden layer: affine posterior and decoder (probabilistic PCA)", xla=True)

HIDDEN_ACTIVATIONS: Registry[Any] = Registry(
    "hidden_activation", "hidden activation", home="tfp_vae.model.hidden"
)
HIDDEN_ACTIVATIONS.declare("relu", "max(0, W x + b)")
HIDDEN_ACTIVATIONS.declare("gated", "(W x + b) * sigmoid(V x + c)", synonyms=("glu", "gate"))

PRIORS: Registry[Any] = Registry("prior", "prior", home="tfp_vae.model.priors")
# analytic_kl: KL(q(z|x) || p(z)) has a closed form (else VAEConfig.kl must be "sampled");
# starts_from_data: prior_init="data" can start it from training images.
PRIORS.declare("standard", "N(0, I)", analytic_kl=True, starts_from_data=False, synonyms=("normal",))
PRIORS.declare(
    "mixture",
    "a learned mixture of prior_components Gaussians",
    analytic_kl=False,
    starts_from_data=False,
    synonyms=("gmm",),
)
PRIORS.declare(
    "vamp",
    "VampPrior: prior_components learned pseudo-inputs through the encoder",
    analytic_kl=False,
    starts_from_data=True,
    synonyms=("vampprior",),
)

SCHEDULES: Registry[Any] = Registry("kl_schedule", "KL schedule", home="tfp_vae.model.kl_schedules")
SCHEDULES.declare("constant", "beta throughout")
SCHEDULES.declare("warmup", "beta grows linearly over kl_schedule_epochs epochs", synonyms=("annealing",))
SCHEDULES.declare("capacity", "beta * |KL - C|, C grows linearly to capacity_max over kl_schedule_epochs")

LR_SCHEDULES: Registry[Any] = Registry(
    "lr_schedule", "learning-rate schedule", home="tfp_vae.training.protocol"
)
LR_SCHEDULES.declare("constant", "learning_rate throughout")
LR_SCHEDULES.declare(
    "plateau",
    "times lr_factor after lr_patience epochs without validation improvement, down to lr_min",
    synonyms=("reduce_on_plateau",),
)

STRATEGIES: Registry[Any] = Registry("strategy", "distribution strategy", home="tfp_vae.training.distribute")
STRATEGIES.declare("default", "the current (usually single-device) strategy")
STRATEGIES.declare("mirrored", "every GPU (or logical device) of this machine", synonyms=("gpus",))
STRATEGIES.declare("multiworker", "several machines, described by $TF_CONFIG")

# The disentanglement metrics by group, one estimator each, in the order they run
# (`tfp_vae.evaluation.disentanglement.suite`, whose GROUP_METRICS this is): `tfp-vae evaluate
# --disentanglement-metrics` checks its names here, before TensorFlow loads.
METRIC_GROUPS: dict[str, tuple[str, ...]] = {
    "mig": ("mig",),
    "dci": ("dci_disentanglement", "dci_completeness", "dci_informativeness"),
    "sap": ("sap",),
    "modularity": ("modularity", "explicitness"),
    "factor_vae": ("factor_vae_score",),
    "beta_vae": ("beta_vae_score",),
}


def metric_groups(names) -> tuple[str, ...]:
    """The groups of `METRIC_GROUPS` (in its order) that compute `names`, each a group (`mig`,
    `factor_vae`, ...), one of its metrics (`factor_vae_score`, `dci_completeness`, ...) or
    "all".
    An unknown name, or none at all, raises `ValueError` naming the choices.

    >>> metric_groups(["factor_vae_score", "mig"])
    ('mig', 'factor_vae')
    """
    owner = {m: g for g, metrics in METRIC_GROUPS.items() for m in metrics}
    every = ["all", *METRIC_GROUPS, *owner]
    wanted: set[str] = set()
    for name in names:
        if name == "all":
            wanted.update(METRIC_GROUPS)
            continue
        if name not in METRIC_GROUPS and name not in owner:
            raise ValueError(f"{name!r}: {hint('disentanglement metric', name, names=every)}")
        wanted.add(owner.get(name, name))
    if not wanted:
        raise ValueError(f"no disentanglement metric named: choose from {every}.")
    return tuple(g for g in METRIC_GROUPS if g in wanted)
