"""`VAE`: encoder + decoder + prior as one tf_keras Model whose loss is the negative ELBO.

    loss = mean over the batch of [ -log p(x|z) + beta * KL(q(z|x) || p(z)) ],  z ~ q(z|x)

in nats per example, log p summed over pixels and KL over latent dimensions. The KL part is the
one loss the encoder carries (`model.encoder.losses`), in whichever style the config chose.

>>> import numpy as np, tf_keras
>>> from tfp_vae.config import VAEConfig
>>> model = build_vae(VAEConfig(latent_dim=2, input_shape=(8, 8, 1), hidden_units=(16,)))
>>> x = (np.random.default_rng(0).random([64, 8, 8, 1]) < 0.5).astype("float32")  # binary images
>>> model.compile(optimizer=tf_keras.optimizers.Adam(1e-3))
>>> hist = model.fit(x, epochs=1, batch_size=32, verbose=0)
>>> sorted(hist.history)
['kl', 'loss', 'nll']
>>> bool(np.isclose(hist.history["loss"][0], hist.history["nll"][0] + hist.history["kl"][0]))  # beta = 1
True
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras
from tensorflow_probability import distributions as tfd

from tfp_vae.choices import ENCODERS, PRIORS
from tfp_vae.config import VAEConfig
from tfp_vae.data.pixels import DEQUANTIZE_MARGIN, check_images, dequantize, grey_levels
from tfp_vae.errors import DataError, NonBinaryBernoulliWarning
from tfp_vae.model.decoders import build_decoder
from tfp_vae.model.encoders import build_encoder, posterior_without_kl
from tfp_vae.model.kl_schedules import KLScheduleCallback, assign_schedule
from tfp_vae.model.posterior import standard_normal_prior
from tfp_vae.model.priors import build_prior
from tfp_vae.model.streams import BlockDraw, block_end, random_stream, stream_seed

# Training steps per call into TensorFlow in `fit` (see `VAE.compile`), run as one program
# (`VAE.update_block`; XLA for the dense bodies): at batch 32 a block of 64 steps takes half the
# time of 64 separately launched compiled steps, at batch 100 (the density models) ~20% less.
STEPS_PER_EXECUTION = 64
# Largest block of images (in float32 values, 128 MB) `fit` stacks for one `update_block`
# program; bigger blocks (large images at large batches) are split into several programs.
BLOCK_VALUES = 2**25


class VAE(tf_keras.Model):
    """A VAE built from `config`. Calling it on images [B, H, W, C] returns p(x|z), z ~ q(z|x).

    Attributes: `encoder` (images -> q(z|x)), `decoder` (z -> p(x|z)), `prior` (p(z), see
    `VAE.prior`), `prior_layer` (the layer holding a learned prior's variables), `config`,
    `sampler` (the `tf.random.Generator` every training and validation draw is seeded from; a
    tracked dependency, so checkpoints hold its state and a resumed run draws what an
    uninterrupted one would).
    `fit` reports `loss`, `nll` (distortion) and `kl` (rate, unweighted), and `val_` versions.
    """

    def __init__(self, config: VAEConfig, **kwargs: Any) -> None:
        super().__init__(name=kwargs.pop("name", "vae"), **kwargs)
        self.config = config
        # The VampPrior encodes its pseudo-inputs with the encoder built next (read when called).
        self.prior_layer = build_prior(
            config, lambda images: posterior_without_kl(self.encoder, images, config.latent_dim)
        )
        # Building the encoder runs its layers once symbolically, before a VampPrior could encode
        # through it; that pass's KL is never used (every call recomputes it), so it sees N(0, I).
        # From then on the KL reads the model's current prior.
        self.encoder = build_encoder(config, standard_normal_prior(config.latent_dim))
        self.encoder.divergence.prior = lambda: self.prior
        self.decoder = build_decoder(config)
        self.sampler = tf.random.Generator.from_seed(config.seed)
        # The running block's training-image draw; checkpointed beside the model (not one of its
        # weights: weights files of older runs load unchanged).
        object.__setattr__(self, "block_draw", BlockDraw())
        # Compiled step functions by (method name, XLA or not) (see `_compiled`); a plain dict
        # Keras does not track.
        object.__setattr__(self, "_step_functions", {})
        # The prior of the running `one_prior`, per thread: tf.distribute runs replicas in threads.
        object.__setattr__(self, "_one_prior", threading.local())
        # Steps per epoch of the running `fit`, for the per-step KL schedule; set by its callback,
        # kept out of the weights (object.__setattr__: Keras does not track it).
        object.__setattr__(self, "_steps_per_epoch", tf.Variable(1, trainable=False, dtype=tf.int64))
        self._trackers = {name: tf_keras.metrics.Mean(name=name) for name in ("loss", "nll", "kl")}

    @property
    def prior(self) -> tfd.Distribution:
        """p(z), event [latent_dim]: N(0, I), or a learned prior built from its current variables
        (a new distribution at every read outside `one_prior`, so read it once per computation)."""
        in_use = getattr(self._one_prior, "prior", None)
        return in_use if in_use is not None else self.prior_layer.distribution()

    @contextlib.contextmanager
    def one_prior(self) -> Iterator[tfd.Distribution]:
        """Within it, every read of `prior` (the KL penalty's and the `kl` metric's) returns the same
        distribution, built once: a VampPrior is then encoded once per training step, not twice.
        Nested, the outermost one's prior is used throughout."""
        outer = getattr(self._one_prior, "prior", None)
        self._one_prior.prior = outer if outer is not None else self.prior_layer.distribution()
        try:
            yield self._one_prior.prior
        finally:
            self._one_prior.prior = outer

    def get_config(self) -> dict[str, Any]:
        # Weights files record the config (tf_keras asks for it on every save); never code.
        return {"config": self.config.to_dict()}

    def call(self, x: tf.Tensor, training: bool | None = None) -> tfd.Distribution:
        return self.decoder(self.encoder(x, training=training), training=training)

    def compile(
        self,
        optimizer: str | tf_keras.optimizers.Optimizer = "adam",
        loss: object = None,
        steps_per_execution: int = STEPS_PER_EXECUTION,
        **kwargs: Any,
    ) -> None:
        """Like `tf_keras.Model.compile`; the loss is the model's own negative ELBO.

        `steps_per_execution` defaults to `STEPS_PER_EXECUTION`: `fit` runs that many training
        steps per call into TensorFlow, so per-step Python overhead is paid once per block
        (batch-level callbacks and the progress bar then update once per block).
        Each block of full-size batches runs as one XLA program (`update_block`).
        """
        if loss is not None:
            raise ValueError(
                "VAE.compile: do not pass `loss`; the VAE's loss is its negative ELBO "
                "(nll + beta * KL). Call compile(optimizer=...) only."
            )
        super().compile(optimizer=optimizer, steps_per_execution=steps_per_execution, **kwargs)
        object.__setattr__(self, "_block_steps", int(steps_per_execution))

    # ------------------------------------------------------------------ the objective
    def loss_terms(self, x: tf.Tensor, training: bool = False) -> dict[str, tf.Tensor]:
        """Per-example parts of the objective for images x [B, H, W, C].

        Returns dict with
          z    [B, latent_dim]  the posterior draw the decoder saw,
          nll  [B]  -log p(x|z), nats,
          kl   [B]  KL(q(z|x) || p(z)), unweighted, nats: analytic, or for a prior without a closed
                    form the one-draw estimate log q(z|x) - log p(z) at z,
          penalty   scalar, the encoder's KL loss: beta * mean_B KL (sampled KL in "sampled" mode),
          loss      scalar, mean_B nll + penalty (+ any weight regularizers), nats per example.
        """
        with self.one_prior() as prior, random_stream(self.sampler):  # the posterior's and KL's draws
            q = self.encoder(x, training=training)  # leaves beta * mean KL in encoder.losses
            z = tf.convert_to_tensor(q)  # the draw z ~ q(z|x) the posterior layer made
            kl = self._kl_metric(q, z, prior)
        p = self.decoder(z, training=training)
        nll = -p.log_prob(x)
        penalty = tf.add_n(self.encoder.losses)
        extra = self.decoder.losses  # weight regularizers, if a user added any
        loss = tf.reduce_mean(nll) + penalty + (tf.add_n(extra) if extra else 0.0)
        return {
            "z": z,
            "nll": nll,
            "kl": kl,
            "penalty": penalty,
            "loss": loss,
        }

    def _kl_metric(self, q, z, prior):
        if PRIORS.fact(self.config.prior, "analytic_kl"):
            return tfd.kl_divergence(q, prior)
        return q.log_prob(z) - prior.log_prob(z)

    def _record(self, terms) -> dict:
        # Weighted by batch size, so an epoch's figure is the mean over examples even when the
        # last batch is short (Keras would otherwise weight every batch equally).
        size = tf.cast(tf.shape(terms["nll"])[0], tf.float32)

        # Under tf.distribute a replica can get an empty slice of a short last batch: its means
        # are NaN and weigh nothing, so they are recorded as 0 with weight 0.
        def record(name, value):
            self._trackers[name].update_state(tf.where(size > 0, value, 0.0), sample_weight=size)

        record("loss", terms["loss"])
        record("nll", tf.reduce_mean(terms["nll"]))
        record("kl", tf.reduce_mean(terms["kl"]))
        return {name: t.result() for name, t in self._trackers.items()}

    @property
    def metrics(self):
        return list(self._trackers.values())

    def _images(self, data):
        x, _, sample_weight = tf_keras.utils.unpack_x_y_sample_weight(data)
        if sample_weight is not None:
            raise ValueError("VAE does not support sample weights; pass images only (fit(x)).")
        return tf.convert_to_tensor(x, dtype=self.compute_dtype)

    # ------------------------------------------------------------------ the training step
    # `fit` runs `train_step` `steps_per_execution` times per call (see `compile`); each step is
    # one XLA-compiled function (binarization, loss terms, gradients, Adam update, metrics),
    # traced once per model and batch shape. The arithmetic is exactly `loss_terms`'.
    @property
    def draws_training_images(self) -> bool:
        """Whether training images are random draws (binarize="dynamic" or dequantize="uniform")."""
        return self.config.binarize == "dynamic" or self.config.dequantize == "uniform"

    def training_draw_seed(self) -> tf.Tensor | None:
        """The seed of one draw of training images, from `sampler`; None if the config draws none."""
        if not self.draws_training_images:
            return None
        with random_stream(self.sampler):
            return stream_seed()

    def training_images(self, x: tf.Tensor, seed: tf.Tensor | None = None) -> tf.Tensor:
        """The images a training step fits: x itself, or, for binarize="dynamic", a fresh binary
        draw with P(pixel = 1) = x (each epoch sees new draws of the same grey images), or, for
        dequantize="uniform", a fresh dequantization (`dequantized_images`). The draw's seed:
        `seed`, or a new one from `sampler`."""
        seed = self.training_draw_seed() if seed is None else seed
        if self.config.binarize == "dynamic":
            x = tf.cast(tf.random.stateless_uniform(tf.shape(x), seed) < x, x.dtype)
        return self.dequantized_images(x, seed)

    def dequantized_images(self, x: tf.Tensor, seed: tf.Tensor | None = None) -> tf.Tensor:
        """For dequantize="uniform", 8-bit images x (scaled for the family) -> (v + u) / 256, u a
        stateless uniform draw per pixel seeded by `seed` (default: a new seed from `sampler`;
        `tfp_vae.data.pixels.dequantize` says where the family puts it); x itself otherwise."""
        if self.config.dequantize != "uniform":
            return x
        seed = self.training_draw_seed() if seed is None else seed
        u = tf.random.stateless_uniform(
            tf.shape(x), seed, DEQUANTIZE_MARGIN, 1 - DEQUANTIZE_MARGIN, dtype=x.dtype
        )
        return dequantize(x, u, self.config.likelihood)

    def loss_and_gradients(
        self, x: tf.Tensor, drawn: bool = False
    ) -> tuple[dict[str, tf.Tensor], list[tf.Tensor]]:
        """images [B, H, W, C] -> (terms of `loss_terms` on `training_images(x)`, d loss / d
        `trainable_variables`). Pure computation, no variable changes: XLA-compiled in `fit`.
        drawn: x already is a `training_images` draw (`update_block` draws a whole block at once)."""
        with tf.GradientTape() as tape:
            terms = self.loss_terms(x if drawn else self.training_images(x), training=True)
        return terms, tape.gradient(terms["loss"], self.trainable_variables)

    def apply_gradients(self, gradients: list[tf.Tensor]) -> None:
        """One optimizer update of `trainable_variables` with `gradients` (same order)."""
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))

    def _xla(self, name):
        """`getattr(self, name)` as a `tf.function(jit_compile=True)`, made once per model."""
        return self._compiled(name, xla=True)

    def _compiled(self, name, xla: bool | None = None):
        """`getattr(self, name)` as a `tf.function`, made once per model: an XLA program if `xla`
        (default: the body's `xla` fact, chosen by measurement; see `tfp_vae.choices.ENCODERS`),
        else a plain graph of TensorFlow's kernels (oneDNN). Both compute the same arithmetic;
        random draws are stateless ops with explicit seeds either way."""
        xla = ENCODERS.fact(self.config.encoder, "xla") if xla is None else xla
        if (name, xla) not in self._step_functions:
            self._step_functions[name, xla] = tf.function(getattr(self, name), jit_compile=xla)
        return self._step_functions[name, xla]

    def update(self, x: tf.Tensor, loss_and_gradients: Callable | None = None) -> dict[str, tf.Tensor]:
        """One training step on images x: gradients (by `loss_and_gradients`, default
        `self.loss_and_gradients`), one optimizer update, metrics; returns the metrics."""
        terms, gradients = (loss_and_gradients or self.loss_and_gradients)(x)
        self.apply_gradients(gradients)
        return self._record(terms)

    def update_block(
        self, xs: tf.Tensor, count: tf.Tensor, first: tf.Tensor | None = None
    ) -> dict[str, tf.Tensor]:
        """`count` training steps on xs[first], ..., xs[first + count - 1] (xs [S, B, H, W, C]), each
        following the KL schedule; returns the metrics after the last. Compiled in `fit` (XLA or
        a graph, `_compiled`): one program per block instead of one launch per step.

        The block's training images (dynamic binarization, dequantization) are drawn at once,
        before the loop, [S, B, H, W, C] from one seed: XLA runs a random draw inside its loops
        several times slower than outside them. first None (row 0): a fresh draw, its seed kept
        in `block_draw`; a row: the rest of the draw `block_draw` holds (a grown budget).
        """
        if first is None:
            seed, first = self.training_draw_seed(), 0
            if seed is not None:
                self.block_draw.seed.assign(seed)
        else:
            seed = self.block_draw.seed.read_value()
        xs = self.training_images(xs, seed)
        # A `while` on tensors, not `for i in tf.range(...)`: the Range op autograph leaves in the
        # graph makes XLA take `count` as a compile-time constant, one compilation per count.
        i = tf.convert_to_tensor(first, tf.int32)
        while i < first + count:
            self.follow_kl_schedule()
            self.update(xs[i], lambda x: self.loss_and_gradients(x, drawn=True))
            i += 1
        return {name: tracker.result() for name, tracker in self._trackers.items()}

    def make_train_function(self, force: bool = False):
        """`fit`'s function for one block of `steps_per_execution` steps.

        The default path (not deterministic, no distribution strategy, not eager) reads the
        block's batches, runs the full-size ones as one `update_block` XLA program (in pieces of at
        most `BLOCK_VALUES` image values) and an epoch's short last batch as one unfused step,
        traced only if an epoch has one: a second XLA compilation for a single step per epoch
        would cost more than it saves. Elsewhere, Keras' own loop of `train_step`s.
        """
        cached = getattr(self, "train_function", None)  # set by Keras' compile (None) and below
        if cached is not None and not force:
            return cached
        if (
            self.config.deterministic
            or self.run_eagerly
            or tf.distribute.has_strategy()
            or self._cluster_coordinator is not None
            or getattr(self, "_block_steps", 1) < 2
        ):
            return super().make_train_function(force)
        capacity, pixels = self._block_steps, int(np.prod(self.config.input_shape))
        block = self._compiled("update_block")
        if isinstance(self.optimizer, tf_keras.optimizers.Optimizer):
            # Adam's slots made now: a tf.function that creates variables in its first call is
            # traced twice (about 1 s for the density MLP's block).
            self.optimizer.build(self.trainable_variables)

        @tf.function(reduce_retracing=True)
        def short_step(x):
            self.follow_kl_schedule()
            return self.update(x)

        def train_function(iterator):
            batches, exhausted = [], None
            for _ in range(int(self._steps_per_execution.numpy())):  # < capacity at an epoch's end
                try:
                    batches.append(self._images(next(iterator)))
                except (StopIteration, tf.errors.OutOfRangeError) as error:  # data of unknown size
                    exhausted = error
                    break
            size = batches[0].shape[0] if batches else 0
            full = next((i for i, x in enumerate(batches) if x.shape[0] != size), len(batches))
            per_program = max(1, min(capacity, BLOCK_VALUES // max(1, size * pixels)))
            start = 0
            while start < full:
                n, row = self._plan_program(full - start, capacity, per_program)
                xs = tf.stack(batches[start : start + n])  # [n, B, H, W, C], rows row .. row + n - 1
                pad = [[row or 0, per_program - (row or 0) - n]] + [[0, 0]] * (len(xs.shape) - 1)
                block(tf.pad(xs, pad), tf.constant(n), *(() if row is None else (tf.constant(row),)))
                start += n
            for x in batches[full:]:  # the epoch's short last batch
                short_step(x)
            self._train_counter.assign_add(len(batches))
            if exhausted is not None:
                raise exhausted
            return {name: tracker.result() for name, tracker in self._trackers.items()}

        self.train_function = train_function
        return train_function

    def _plan_program(self, available: int, capacity: int, per_program: int) -> tuple[int, int | None]:
        """(steps, row) of the next `update_block` program, `available` batches at hand: as many
        as fit one program, row None (a fresh draw). A model that draws its training images runs
        its programs where an uninterrupted `fit` does (`block_end`), so that a run grown from a
        budget that ended inside a block first finishes that block's draw from its `row`."""
        if not self.draws_training_images:
            return min(available, per_program), None
        step = int(self.optimizer.iterations.numpy())
        end = block_end(step, int(self._steps_per_epoch.numpy()), capacity, per_program)
        return self.block_draw.plan(step, available, end)

    def _replica_loss_and_gradients(self, x):
        """`loss_and_gradients` (XLA-compiled) for one replica of a tf.distribute step."""
        terms, gradients = self._compiled("loss_and_gradients")(x)
        # tf.distribute sums the replicas' gradients: weighting each replica's mean by its share
        # of the global batch keeps the update that of the global per-example mean.
        share = replica_share(tf.shape(x)[0])
        return terms, [g * share for g in gradients]

    def follow_kl_schedule(self) -> None:
        """Sets the KL schedule's beta / capacity for the step about to run, from the optimizer's
        step count (`tfp_vae.model.kl_schedules.assign_schedule`); nothing for the constant schedule."""
        if self.config.kl_schedule == "constant":
            return

        def assign(*_):
            return assign_schedule(
                self.config, self.encoder.divergence, self.optimizer.iterations, self._steps_per_epoch
            )

        if tf.distribute.has_strategy():  # a mirrored variable is set once, in cross-replica context
            tf.distribute.get_replica_context().merge_call(assign)
        else:
            assign()

    def train_step(self, data: Any) -> dict[str, tf.Tensor]:
        x = self._images(data)
        self.follow_kl_schedule()
        if self.config.deterministic:
            # Op determinism covers TensorFlow's kernels, not XLA's: the step runs unfused.
            return self.update(x)
        if tf.distribute.has_strategy():
            # Under a distribution strategy the optimizer sums gradients across replicas, which
            # cannot happen inside XLA: only the per-replica computation is compiled.
            return self.update(x, self._replica_loss_and_gradients)
        # One program for the whole step (optimizer update and metrics included); as XLA, half
        # the CPU time of compiling only the gradient part at batch 32, where op launches dominate.
        return self._compiled("update")(x)

    def test_step(self, data: Any) -> dict[str, tf.Tensor]:
        # Validation scores what training optimizes: dequantized images drawn afresh each pass.
        x = self.dequantized_images(self._images(data))
        loss_terms = self.loss_terms if self.config.deterministic else self._compiled("loss_terms")
        return self._record(loss_terms(x))

    # ------------------------------------------------------------------ input checks
    def _check(self, x, training=False):
        if isinstance(x, np.ndarray):
            if training:
                check_training_images(x, self.config)
            else:
                check_images(x, self.config.input_shape, self.config.likelihood)

    def fit(self, x: Any = None, y: Any = None, *args: Any, **kwargs: Any) -> tf_keras.callbacks.History:
        """`tf_keras.Model.fit` with NumPy images checked first; fit(x) and fit(x, x) both work.

        The config's KL schedule follows the optimizer's step count (`follow_kl_schedule`); its
        callback, the first, tells the step the steps per epoch and logs beta / capacity.
        """
        self._check(x, training=True)
        schedule = KLScheduleCallback(self.config, self.encoder.divergence, self._steps_per_epoch)
        kwargs["callbacks"] = [schedule, *(kwargs.get("callbacks") or [])]
        validation = kwargs.get("validation_data")
        if isinstance(validation, (tuple, list)) and validation:
            self._check(validation[0])
        elif isinstance(validation, np.ndarray):
            self._check(validation)
            kwargs["validation_data"] = (validation,)
        return super().fit(x, y, *args, **kwargs)

    def evaluate(self, x: Any = None, y: Any = None, *args: Any, **kwargs: Any) -> Any:
        self._check(x)
        return super().evaluate(x, y, *args, **kwargs)


def replica_share(batch_size) -> tf.Tensor | float:
    """This replica's fraction of the global batch, local / sum over replicas of local sizes.

    1.0 outside a multi-replica step. Multiply a replica's per-example mean loss by it before the
    gradients are summed across replicas: the sum is then the mean over the global batch.
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return 1.0
    local = tf.cast(batch_size, tf.float32)
    return local / context.all_reduce(tf.distribute.ReduceOp.SUM, local)


def check_training_images(x, config: VAEConfig) -> None:
    """`check_images` for images a model of `config` is trained on (8-bit ones to dequantize)."""
    if config.dequantize is not None and grey_levels(np.asarray(x), config.likelihood) is None:
        raise DataError(
            f"VAEConfig.dequantize={config.dequantize!r} needs 8-bit images (uint8 scaled with "
            f"tfp_vae.scale_images(x, {config.likelihood!r})); these are not: set dequantize=None."
        )
    with warnings.catch_warnings():
        if config.binarize == "dynamic":
            # Grey training images are the pixel probabilities of the binary draws the
            # likelihood actually sees (train_step binarizes them): no grey-level warning.
            warnings.simplefilter("ignore", NonBinaryBernoulliWarning)
        check_images(x, config.input_shape, config.likelihood)


def build_vae(config: VAEConfig | None = None, **overrides: Any) -> VAE:
    """A built (weights created) `VAE` for `config`; keyword overrides change config fields.

    Seeds TensorFlow, NumPy and Python with `config.seed` first, so the same config gives the same
    initial weights.
    """
    config = config or VAEConfig()
    if overrides:
        config = config.replace(**overrides)
    tf_keras.utils.set_random_seed(config.seed)
    model = VAE(config)
    model(tf.zeros([1, *config.input_shape]))  # create the weights
    return model


def float32_twin(model):
    """`model` itself if it computes in float32, else a float32 copy of it holding its current
    weights, e.g. for evaluation, which always runs in float32. The copy is built once per model
    (kept on it) and its weights refreshed at every call."""
    if getattr(model.config, "precision", "float32") == "float32":
        return model
    twin = getattr(model, "_float32_twin", None)
    if twin is None:
        twin = build_vae(model.config.replace(precision="float32"))
        object.__setattr__(model, "_float32_twin", twin)  # not a tracked part of the model
    twin.set_weights(model.get_weights())
    return twin
