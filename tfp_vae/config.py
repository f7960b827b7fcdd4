"""`VAEConfig`: the one frozen, self-validating description of a model and its training run.

A run directory stores this config as JSON; `VAEConfig.from_json(cfg.to_json()) == cfg`, so every
result can be rebuilt from its directory.

>>> cfg = VAEConfig(latent_dim=2, beta=0.5)
>>> VAEConfig.from_json(cfg.to_json()) == cfg
True
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from tfp_vae.choices import ENCODERS, HIDDEN_ACTIVATIONS, LIKELIHOODS, LR_SCHEDULES, PRIORS, SCHEDULES
from tfp_vae.data.idx import DATASETS
from tfp_vae.data.sources import describe_sources, source_for
from tfp_vae.errors import ConfigError

KL_MODES = ("exact", "sampled")
KL_STYLES = ("regularizer", "add_loss")
BINARIZE = (None, "static", "dynamic")
DEQUANTIZE = (None, "uniform")
PRIOR_INITS = ("random", "data")
CONV_DECODERS = ("mirror", "transpose")
PRECISIONS = ("float32", "mixed_bfloat16")
POSTERIORS = ("full", "diagonal")


def _field(default, help: str, **kw):
    return dataclasses.field(default=default, metadata={"help": help, **kw})


@dataclasses.dataclass(frozen=True)
class VAEConfig:
    """Everything needed to rebuild a model and repeat its training run.

    The defaults reproduce the classic Fashion-MNIST example: MLP encoder 256-64, z = 2, Bernoulli
    decoder, exact KL, beta = 1.
    """

    # Model.
    latent_dim: int = _field(2, "Dimension of the latent code z.")
    encoder: str = _field("mlp", "Encoder/decoder body: one of the names in tfp_vae.ENCODERS.")
    likelihood: str = _field("bernoulli", "Decoder family: one of the names in tfp_vae.LIKELIHOODS.")
    kl: str = _field("exact", "KL estimator: 'exact' (analytic) or 'sampled' (Monte Carlo).")
    kl_samples: int = _field(10, "Posterior draws per example for the sampled KL.")
    kl_style: str = _field(
        "regularizer",
        "How the encoder attaches its KL: 'regularizer' (activity regularizer on the posterior "
        "layer) or 'add_loss' (a pass-through layer after it).",
    )
    beta: float = _field(1.0, "Weight of the KL term (beta-VAE); 1 gives the ELBO.")
    kl_schedule: str = _field(
        "constant",
        "KL schedule (tfp_vae.SCHEDULES): 'constant' (beta throughout), 'warmup' (beta grows "
        "linearly over kl_schedule_epochs) or 'capacity' (beta * |KL - C|, C growing linearly to "
        "capacity_max over kl_schedule_epochs; Burgess et al. 2018).",
    )
    kl_schedule_epochs: int = _field(10, "Epochs over which the KL schedule ramps up.")
    capacity_max: float = _field(25.0, "Final KL capacity C_max in nats ('capacity' schedule).")
    normal_sigma: float = _field(
        0.1, "Pixel standard deviation of the 'normal_fixed' likelihood (images in [0, 1])."
    )
    input_shape: tuple[int, ...] = _field((28, 28, 1), "Image shape H W C.")
    hidden_units: tuple[int, ...] = _field(
        (256, 64), "MLP encoder hidden layer widths; the decoder mirrors them."
    )
    conv_filters: int | tuple[int, ...] = _field(
        32,
        "Filters of the stride-2 conv layers: an int (the first layer's, doubling per layer) or "
        "one int per layer, e.g. (32, 32, 64, 64) with conv_layers=4.",
        int_or_ints=True,
    )
    conv_layers: int = _field(2, "Number of stride-2 conv layers.")
    conv_kernel: int | tuple[int, ...] = _field(
        3,
        "Conv kernel size: one for every conv layer, or one per layer (conv_layers of them).",
        int_or_ints=True,
    )
    conv_dense: int | tuple[int, ...] = _field(
        256,
        "Width(s) of the dense layer(s) between conv stack and posterior; the decoder runs them "
        "in reverse before the dense layer to the first feature map.",
        int_or_ints=True,
    )
    # Data and training.
    dataset: str = _field(
        "fashion_mnist",
        "Data set: 'fashion_mnist', 'mnist', 'dsprites', 'dsprites_small', a path to an .npz/.npy "
        "file, or a path to a folder of images (class subfolders give labels).",
    )
    binarize: str | None = _field(
        None,
        "Bernoulli data only: 'static' (binarize once, fixed seed) or 'dynamic' (training "
        "images re-drawn every epoch; test images binarized once).",
    )
    epochs: int = _field(5, "Training epochs.")
    batch_size: int = _field(32, "Examples per training step.")
    learning_rate: float = _field(1e-3, "Adam learning rate.")
    seed: int = _field(0, "Random seed for weights, sampling and data order.")
    train_examples: int = _field(
        0, "Train on the first N training images only (0: all); for quick runs and tests."
    )
    clip_norm: float = _field(0.0, "Clip each step's gradients to this global norm (0: no clipping).")
    deterministic: bool = _field(
        False,
        "Make TensorFlow ops deterministic (tf.config.experimental.enable_op_determinism) and "
        "run the training step outside XLA; slower. (Every run resumes bit for bit: its random "
        "draws are seeded from a checkpointed generator.)",
    )
    # Priors and bodies (issue 9).
    prior: str = _field(
        "standard",
        "Prior p(z) (tfp_vae.PRIORS): 'standard' N(0, I), 'mixture' (learned Gaussian mixture) or "
        "'vamp' (VampPrior: learned pseudo-inputs through the encoder); the learned ones need "
        "kl='sampled'.",
    )
    prior_components: int = _field(
        10,
        "Components K of a learned prior: Gaussians of 'mixture', pseudo-inputs of 'vamp' (the "
        "VampPrior paper uses 500). The sampled KL costs K posterior log-densities per draw.",
    )
    prior_init: str = _field(
        "random",
        "How a learned prior starts: 'random' (the VampPrior's pseudo-inputs are noise images) "
        "or 'data' (they are prior_components training images drawn at random, so a warm-started "
        "model's prior starts as a mixture of its own posteriors); 'data' is for 'vamp'. Applied by "
        "`tfp_vae.train` (and `tfp-vae train`); a model built with `build_vae` starts 'random' "
        "until `tfp_vae.model.priors.start_prior(model.prior_layer, config, images)`.",
    )
    hidden_activation: str = _field(
        "relu",
        "Hidden layers of the bodies (tfp_vae.HIDDEN_ACTIVATIONS): 'relu' or 'gated' "
        "(h = (W x + b) * sigmoid(V x + c)).",
    )

    # Own images and generated data sets (tfp_vae.data.sources).
    test_fraction: float = _field(
        0.1,
        "Share of the images held out (fixed seed) as the test split when the data set "
        "gives none (own images, dSprites).",
    )
    resize: bool = _field(
        False,
        "Resize folder images bilinearly, whole (no crop), to input_shape's height and "
        "width and convert them to its channels; without it their shape must equal input_shape.",
    )

    # Training protocol (issue 9).
    validation_examples: int = _field(
        0,
        "Hold out the last N training images (after train_examples) as the validation split; "
        "0 validates on the test split, as before.",
    )
    early_stopping_patience: int = _field(
        0,
        "Stop when the validation negative ELBO at beta = 1 (val_nll + val_kl) has not improved "
        "for this many epochs, keeping the best weights (0: off; needs validation_examples).",
    )
    lr_schedule: str = _field(
        "constant",
        "Learning-rate schedule (tfp_vae.LR_SCHEDULES): 'constant' or 'plateau' (multiply by "
        "lr_factor when the validation negative ELBO has not improved for lr_patience epochs).",
    )
    lr_factor: float = _field(0.5, "Factor in (0, 1) the 'plateau' schedule multiplies the learning rate by.")
    lr_patience: int = _field(10, "Epochs without validation improvement before 'plateau' lowers the rate.")
    lr_min: float = _field(1e-5, "Lowest learning rate the 'plateau' schedule goes down to.")
    init_from: str = _field(
        "",
        "Run directory whose trained encoder and decoder a new run starts from (tfp_vae.training.warm_start; "
        "e.g. experiments/results/fashion_mnist_density, relative to the current directory); its "
        "model needs this one's encoder and decoder shapes. Its prior is copied too if it is the "
        "same (prior and shapes), else the prior starts as prior_init says. '' starts from random "
        "weights.",
    )

    # Conv decoder layout and numeric precision (issue 25).
    conv_decoder: str = _field(
        "mirror",
        "Layout of the conv decoder: 'mirror' (each transposed conv keeps the encoder's filters "
        "at its resolution, then a stride-1 conv to the likelihood's parameters) or 'transpose' "
        "(each transposed conv undoes one encoder conv, filters f_i -> f_(i-1), the last one "
        "emitting the parameters: disentanglement_lib's decoder).",
    )
    precision: str = _field(
        "float32",
        "Arithmetic of the encoder and decoder bodies in training: 'float32' or 'mixed_bfloat16' "
        "(bodies compute in bfloat16 with float32 weights; the posterior and likelihood "
        "parameters, log-likelihoods, KL, loss and optimizer state stay float32). Evaluation "
        "always runs in float32.",
    )

    # Likelihood families on one scale (issue 26).
    dequantize: str | None = _field(
        None,
        "How 8-bit images meet a density family (beta, normal, normal_fixed, continuous_bernoulli): "
        "'uniform' trains on (x + u) / 256 with u ~ U[0, 1) per pixel, redrawn every step (and for "
        "every validation pass), so the loss is the uniform-dequantization bound on the 8-bit "
        "images' -log P(x) (plus D log 256); None trains on the family's own scaling.",
    )
    likelihood_components: int = _field(
        5, "Logistic components per pixel of the 'discretized_logistic' likelihood (PixelCNN++ uses 5 to 10)."
    )

    # Long runs (issue 23; max_steps also issue 24).
    checkpoint_minutes: float = _field(
        10.0,
        "Commit a resumable checkpoint at the end of a block of steps once this many minutes have "
        "passed since the last one, as well as at every epoch's end (0: only at epoch ends). A "
        "resume continues from the next batch of the same data order, bit for bit.",
    )
    max_steps: int = _field(
        0,
        "Stop after exactly this many optimizer steps in all, mid-epoch if need be (0: no step "
        "budget; epochs decides). The reference beta-VAE studies count steps, not epochs.",
    )

    # The posterior's covariance (issue 24).
    posterior: str = _field(
        "full",
        "Covariance of q(z|x), a tfp.layers.MultivariateNormalTriL either way: 'full' (a learned "
        "lower-triangular scale) or 'diagonal' (the scale's off-diagonal fixed at 0: independent "
        "latents given x, as in the beta-VAE literature). With an isotropic prior a full-covariance "
        "objective is unchanged by rotating the latent space, so it prefers no axes; a diagonal "
        "posterior breaks that symmetry, which axis-aligned disentanglement metrics need.",
    )

    def __post_init__(self):
        # Lists from JSON or the CLI become tuples so the config stays hashable and comparable.
        for name in ("input_shape", "hidden_units", "conv_filters", "conv_kernel", "conv_dense"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        if self.max_steps is None:  # JSON null: no step budget, like 0
            object.__setattr__(self, "max_steps", 0)
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Raises `ConfigError` (a `ValueError`) naming the first bad field and how to fix it."""

        def need(ok: bool, field: str, message: str):
            if not ok:
                raise ConfigError(f"VAEConfig.{field}={getattr(self, field)!r}: {message}", field=field)

        def choice(field: str, registry) -> None:
            need(getattr(self, field) in registry, field, registry.hint(getattr(self, field)))

        def positive_int(field: str):
            value = getattr(self, field)
            need(
                isinstance(value, int) and not isinstance(value, bool) and value >= 1,
                field,
                "must be an integer >= 1.",
            )

        for name in (
            "latent_dim",
            "kl_samples",
            "conv_layers",
            "epochs",
            "batch_size",
            "kl_schedule_epochs",
        ):
            positive_int(name)
        choice("encoder", ENCODERS)
        choice("likelihood", LIKELIHOODS)
        need(self.kl in KL_MODES, "kl", f"unknown KL mode; choose one of {list(KL_MODES)}.")
        need(self.kl_style in KL_STYLES, "kl_style", f"unknown KL style; choose one of {list(KL_STYLES)}.")
        need(_is_real(self.beta) and self.beta >= 0, "beta", "must be a finite number >= 0.")
        choice("kl_schedule", SCHEDULES)
        need(
            _is_real(self.capacity_max) and self.capacity_max >= 0,
            "capacity_max",
            "must be a finite number of nats >= 0.",
        )
        need(
            _is_real(self.normal_sigma) and self.normal_sigma > 0,
            "normal_sigma",
            "must be a finite number > 0.",
        )
        need(
            _is_real(self.learning_rate) and self.learning_rate > 0,
            "learning_rate",
            "must be a finite number > 0.",
        )
        for name in ("seed", "train_examples"):
            value = getattr(self, name)
            need(
                isinstance(value, int) and not isinstance(value, bool) and value >= 0,
                name,
                "must be an integer >= 0.",
            )
        need(
            _is_real(self.clip_norm) and self.clip_norm >= 0,
            "clip_norm",
            "must be a finite number >= 0 (0 turns clipping off).",
        )
        need(isinstance(self.deterministic, bool), "deterministic", "must be True or False.")
        need(
            isinstance(self.input_shape, tuple)
            and len(self.input_shape) == 3
            and all(_is_int(s) and s >= 1 for s in self.input_shape),
            "input_shape",
            "must be three positive integers (height, width, channels), "
            "e.g. (28, 28, 1); add the channel axis for grayscale images.",
        )
        need(
            isinstance(self.hidden_units, tuple)
            and len(self.hidden_units) >= 1
            and all(_is_int(u) and u >= 1 for u in self.hidden_units),
            "hidden_units",
            "must be one or more positive integers, e.g. (256, 64).",
        )
        need(
            source_for(self.dataset) is not None,
            "dataset",
            f"unknown data set; give one of {sorted(DATASETS)}, {describe_sources()}"
            + (
                f" (for the folder {self.dataset!r} here, write './{self.dataset}')."
                if isinstance(self.dataset, str) and Path(self.dataset).is_dir()
                else "."
            ),
        )
        need(
            _is_real(self.test_fraction) and 0 < self.test_fraction < 1,
            "test_fraction",
            "must be a number between 0 and 1 (exclusive), e.g. 0.1.",
        )
        need(isinstance(self.resize, bool), "resize", "must be True or False.")
        need(self.binarize in BINARIZE, "binarize", "must be None, 'static' or 'dynamic'.")
        need(
            self.binarize is None or self.likelihood == "bernoulli",
            "binarize",
            f"binarization only makes sense for the 'bernoulli' likelihood, not "
            f"{self.likelihood!r}; set binarize=None.",
        )
        choice("prior", PRIORS)
        positive_int("prior_components")
        need(
            self.kl == "sampled" or PRIORS.fact(self.prior, "analytic_kl"),
            "kl",
            f"the {self.prior!r} prior has no analytic KL against the posterior; set "
            f"kl='sampled' (the Monte Carlo estimate with kl_samples draws).",
        )
        need(
            self.prior_init in PRIOR_INITS,
            "prior_init",
            f"unknown prior start; choose one of {list(PRIOR_INITS)}.",
        )
        need(
            self.prior_init != "data" or PRIORS.fact(self.prior, "starts_from_data"),
            "prior_init",
            f"the {self.prior!r} prior cannot start from training images; use "
            f"prior_init='random', or prior='vamp'.",
        )
        choice("hidden_activation", HIDDEN_ACTIVATIONS)
        # Training protocol (issue 9).
        for name in ("validation_examples", "early_stopping_patience"):
            value = getattr(self, name)
            need(
                isinstance(value, int) and not isinstance(value, bool) and value >= 0,
                name,
                "must be an integer >= 0 (0 turns it off).",
            )
        need(
            not self.train_examples or self.validation_examples < self.train_examples,
            "validation_examples",
            f"must be smaller than train_examples={self.train_examples} (the "
            "validation split is the last validation_examples of the training images); lower it "
            "or train on more images.",
        )
        choice("lr_schedule", LR_SCHEDULES)
        need(
            _is_real(self.lr_factor) and 0 < self.lr_factor < 1,
            "lr_factor",
            "must be a number between 0 and 1 (exclusive), e.g. 0.5.",
        )
        positive_int("lr_patience")
        need(
            _is_real(self.lr_min) and 0 <= self.lr_min <= self.learning_rate,
            "lr_min",
            f"must be a number between 0 and learning_rate={self.learning_rate}.",
        )
        for name, on in (
            ("early_stopping_patience", self.early_stopping_patience > 0),
            ("lr_schedule", self.lr_schedule != "constant"),
        ):
            need(
                not on or self.validation_examples > 0,
                name,
                "needs a validation split: set validation_examples (e.g. 10000), so that no "
                "training decision looks at the test split.",
            )

        need(
            self.dequantize in DEQUANTIZE,
            "dequantize",
            "must be None or 'uniform' (u ~ U[0, 1) added to each grey level, redrawn every step).",
        )
        need(
            self.dequantize is None or LIKELIHOODS.fact(self.likelihood, "on_8bit") == "dequantization bound",
            "dequantize",
            f"dequantization is for density families on 8-bit images ("
            f"{', '.join(n for n in LIKELIHOODS if LIKELIHOODS.fact(n, 'on_8bit') == 'dequantization bound')}"
            f"), not {self.likelihood!r}, "
            + (
                "a model of binarized images (use binarize)"
                if self.likelihood == "bernoulli"
                else "a probability of the grey levels already"
            )
            + "; set dequantize=None.",
        )
        # (binarize needs the Bernoulli and dequantize refuses it: the two never meet.)
        positive_int("likelihood_components")

        need(
            isinstance(self.init_from, str),
            "init_from",
            "must be a run directory's path as a string, or '' to start from random weights.",
        )
        # Conv body and precision (issue 25).
        for name, per_layer in (("conv_filters", True), ("conv_kernel", True), ("conv_dense", False)):
            value = getattr(self, name)
            need(
                _is_count(value) or _are_counts(value),
                name,
                "must be an integer >= 1 or a non-empty tuple of them"
                + (", one per conv layer." if per_layer else ", e.g. 256 or (256,)."),
            )
            need(
                not per_layer or not isinstance(value, tuple) or len(value) == self.conv_layers,
                name,
                f"gives {len(value) if isinstance(value, tuple) else 1} layers but "
                f"conv_layers={self.conv_layers}; give one value per layer or set "
                f"conv_layers={len(value) if isinstance(value, tuple) else 1}.",
            )
        need(
            self.conv_decoder in CONV_DECODERS,
            "conv_decoder",
            f"unknown conv decoder layout; choose one of {list(CONV_DECODERS)}.",
        )
        need(
            self.precision in PRECISIONS,
            "precision",
            f"unknown precision; choose one of {list(PRECISIONS)}.",
        )
        need(
            self.posterior in POSTERIORS,
            "posterior",
            f"unknown posterior covariance; choose one of {list(POSTERIORS)}.",
        )
        # Long runs (issue 23).
        need(
            _is_real(self.checkpoint_minutes) and self.checkpoint_minutes >= 0,
            "checkpoint_minutes",
            "must be a finite number of minutes >= 0 (0 commits checkpoints at epoch ends only).",
        )
        need(
            _is_int(self.max_steps) and self.max_steps >= 0,
            "max_steps",
            "must be an integer >= 0 (0 or null: no step budget).",
        )
        need(  # TensorFlow's random ops take seeds as 32- and 64-bit integers
            self.seed < 2**31, "seed", "must be below 2**31 = 2147483648."
        )

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VAEConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown VAEConfig field(s) {unknown}; known fields are {sorted(known)}.")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> VAEConfig:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(f"config is not valid JSON ({err}); rewrite it or rerun training.") from err
        if not isinstance(data, dict):
            raise ConfigError("config JSON must be an object of VAEConfig fields.")
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> VAEConfig:
        """A copy with some fields changed, validated like any new config."""
        return dataclasses.replace(self, **changes)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _are_counts(value) -> bool:
    return isinstance(value, tuple) and len(value) > 0 and all(map(_is_count, value))


def _jsonable(value):
    return list(value) if isinstance(value, tuple) else value
