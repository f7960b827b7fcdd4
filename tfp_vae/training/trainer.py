"""`train`: one training run from a `VAEConfig` into a run directory.

>>> import os, tempfile, numpy as np
>>> x = (np.random.default_rng(0).random([64, 8, 8, 1]) < 0.5).astype("float32")
>>> config = VAEConfig(input_shape=(8, 8, 1), hidden_units=(16,), epochs=1)
>>> out = tempfile.mkdtemp()
>>> model, history = train(config, out_dir=out, data=((x, None), (x[:16], None)), verbose=0)
>>> sorted(history)
['kl', 'loss', 'lr', 'nll', 'val_kl', 'val_loss', 'val_nll']
>>> sorted(f for f in os.listdir(out) if f.endswith(".json"))
['config.json', 'history.json', 'status.json']

With the Fashion-MNIST files (`tfp-vae train --out runs/quick --epochs 1`, as tests/cli/test_cli.py does):

>>> model, history = train(VAEConfig(epochs=1), out_dir="runs/quick")   # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras

from tfp_vae.config import VAEConfig
from tfp_vae.data.idx import Splits
from tfp_vae.data.load import prepare
from tfp_vae.data.pixels import binarize_images, check_images, check_labels
from tfp_vae.data.streamed import ScaledImages
from tfp_vae.errors import ConfigError, RunDirError, RunPaused
from tfp_vae.evaluation.elbo import posterior_means
from tfp_vae.model.priors import start_prior
from tfp_vae.model.vae import STEPS_PER_EXECUTION, VAE, build_vae, check_training_images
from tfp_vae.runs import files as runs
from tfp_vae.runs.fingerprint import load_checked, read_record, write_record
from tfp_vae.runs.interrupts import stop_requests
from tfp_vae.runs.locks import holds_run_lock
from tfp_vae.training.checkpoint import CommitCheckpoints, Position, Resumed, RunCheckpoint, StopTraining
from tfp_vae.training.distribute import agree, make_strategy, worker_subdir, worker_task
from tfp_vae.training.protocol import ProtocolCallback, best_epoch, stop_reason
from tfp_vae.training.reproducible import op_determinism, shuffled_batches, steps_per_epoch
from tfp_vae.training.tensorboard import TensorBoardLogs, require_tensorboard
from tfp_vae.training.warm_start import copy_body, source_model


def load_data_for(
    config: VAEConfig, data_dir: str | os.PathLike | None = None, run_dir: str | os.PathLike | None = None
) -> Splits:
    """The data set of `config`, scaled for its likelihood and binarized as it says; with
    `run_dir`, refused (`DataError`) if it differs from the data recorded in RUN_DIR/data.json."""
    loaded = load_checked(config, data_dir, run_dir)
    return prepare(loaded, config.likelihood, config.binarize, config.seed)


def make_optimizer(config: VAEConfig) -> tf_keras.optimizers.Optimizer:
    """Adam at `config.learning_rate`, clipping each step's global gradient norm to
    `config.clip_norm` when it is > 0 (under tf.distribute: the norm of the summed gradient)."""
    return tf_keras.optimizers.Adam(config.learning_rate, global_clipnorm=config.clip_norm or None)


@holds_run_lock("training", "out_dir")  # a second process training into out_dir stops at once
def train(
    config: VAEConfig,
    out_dir: str | os.PathLike | None = None,
    data: Splits | None = None,
    data_dir: str | os.PathLike | None = None,
    verbose: int = 1,
    callbacks: Sequence[tf_keras.callbacks.Callback] = (),
    strategy: tf.distribute.Strategy | str | None = None,
    tensorboard: bool = False,
    max_minutes: float | None = None,
) -> tuple[VAE, dict[str, list[float]]]:
    """Trains a model for `config`; returns (model, history {metric: [per epoch]}).

    data: ((x_train, y_train), (x_test, y_test)) to use instead of loading `config.dataset`
      (labels may be None); checked against the config before anything is built or written.
    out_dir: if given, receives config.json, model.weights.h5, history.csv, history.json,
      status.json and checkpoints (`tfp_vae.training.checkpoint`): one per epoch, and one every
      `config.checkpoint_minutes` at the end of a block of steps. Training into a directory that
      holds a run of the same config resumes it from its newest whole checkpoint, mid-epoch if
      need be, bit for bit; a larger `epochs` or `max_steps` (the fields of
      `tfp_vae.runs.files.MAY_GROW`) trains a finished run further; another config is an error.
      A write that fails for lack of space or permission raises `RunWriteError` (naming the
      path, the free space and what was written) with everything committed before whole:
      rerunning resumes.
    strategy: None, a `tf.distribute.Strategy`, or a name in `tfp_vae.training.distribute.STRATEGIES`.
    tensorboard: True writes TensorBoard logs into out_dir/tensorboard/ (`tfp_vae.training.tensorboard`).
    `config.init_from` (a run directory) gives a new run that run's trained encoder and decoder,
      and its prior if it is the same (`tfp_vae.training.warm_start`), checked before any data is read;
      otherwise `config.prior_init="data"` starts a VampPrior's pseudo-inputs at training images
      (`tfp_vae.model.priors.start_prior`).
    max_minutes: stop cleanly at the end of the first block of steps (or epoch) that ends after
      this many minutes, with a checkpoint, mid-epoch if need be (status "paused"); training into
      the same out_dir again resumes, bit for bit. (A multi-worker run stops at an epoch's end.)
    `config.max_steps` > 0: stop after exactly that many optimizer steps, mid-epoch if need be
      (status "complete", reason naming the steps); the epochs then only follow from it.
    SIGTERM or SIGINT (Ctrl-C) while it trains (in the main thread): the block of steps under way
      finishes, a checkpoint is committed, status.json says "paused" with the reason and the
      command that resumes, and `RunPaused` (a `KeyboardInterrupt`) is raised; a second signal
      stops at once (`tfp_vae.runs.interrupts`). The previous signal handlers are restored.
    While it trains, out_dir is locked (`tfp_vae.runs.locks.run_lock`): another process training or
    evaluating into it gets a `RunDirError` naming this one.

    Validation (history keys val_loss, val_nll, val_kl) runs every epoch on the last
    `config.validation_examples` training images (after `train_examples`; the model trains on
    the ones before them, and the test split is not used), or on the test split when that is 0.
    With `early_stopping_patience` training stops early and the returned model and
    model.weights.h5 hold the best epoch's weights (`tfp_vae.training.protocol`); `lr` records the learning
    rate of each epoch. A non-finite loss stops training with `NonFiniteLossError` naming the
    epoch and step.
    """
    started = time.monotonic()
    if tensorboard and out_dir is None:
        raise ConfigError("tensorboard=True writes its logs into the run directory; give out_dir too.")
    if tensorboard:
        require_tensorboard()
    warm = source_model(config)  # before any data is read: a bad init_from fails at once
    loaded = None
    if data is None:
        loaded = load_checked(config, data_dir, out_dir)
        data = prepare(loaded, config.likelihood, config.binarize, config.seed)
    (x, y), (x_test, y_test) = data
    if config.train_examples:
        x, y = x[: config.train_examples], (None if y is None else y[: config.train_examples])
    # Streamed images (`ScaledImages`) are uint8 scaled by the family's own scaling, so inside its
    # support by construction: their shape and the config are checked on the first images.
    check_training_images(np.asarray(x[:256]) if isinstance(x, ScaledImages) else x, config)
    check_images(x_test, config.input_shape, config.likelihood)
    for images, labels, split in ((x, y, "training"), (x_test, y_test, "test")):
        check_labels(labels, images, f"{split} labels")
    x, x_val = validation_split(config, x, x_test)
    chosen = make_strategy(strategy)
    # One process decides alone when to take a timed checkpoint or to stop on a signal; the
    # workers of a multi-worker run save collectively, so they commit at epoch ends (and at
    # max_steps, where they all are at once) only.
    alone = worker_task(chosen) is None
    if isinstance(x, ScaledImages) and not alone:
        raise ConfigError(
            f"{len(x):,} training images too large to hold as floats are streamed through NumPy, which "
            "a multi-worker strategy cannot distribute; train on one machine or set train_examples."
        )
    checkpoint = None
    if out_dir is not None:
        sub = worker_subdir(chosen)
        checkpoint = RunCheckpoint(out_dir, config, Path(out_dir) / sub if sub else None)
        if loaded is not None and read_record(out_dir) is None:  # for evaluate / plot later
            write_record(out_dir, loaded.record)
    steps = steps_per_epoch(len(x), config.batch_size)
    if checkpoint is not None:
        checkpoint.steps_per_epoch = steps
    # A step budget replaces the epoch budget: as many epochs of data as it takes, the last cut short.
    epochs = -(-config.max_steps // steps) if config.max_steps else config.epochs
    with op_determinism(config.deterministic), stop_requests(enabled=alone) as stop:
        with chosen.scope():
            model: VAE = build_vae(config)
            # Keras calls batch-level callbacks once per `steps_per_execution` block: a caller's
            # own callbacks see every step, at the cost of the blocks' speed.
            per_call = 1 if callbacks else STEPS_PER_EXECUTION
            model.compile(optimizer=make_optimizer(config), steps_per_execution=per_call)
            # Every worker creates the optimizer's variables now, in the same order (creating a
            # distributed variable is a collective step), whether it resumes or not.
            model.optimizer.build(model.trainable_variables)
            resumed = checkpoint.resume(model) if checkpoint else Resumed(Position(0), {})
            position, history = resumed.position, resumed.history
            done = position.epoch
            if position == Position(0):  # a resumed run continues from its own checkpoint instead
                if not copy_body(warm, model):  # a prior of its own: started as prior_init says
                    start_prior(model.prior_layer, config, x)
            agree(chosen, done, "the number of completed epochs to resume from")
            agree(chosen, position.step, "the step within the epoch to resume from")
        expected = done * steps + position.step
        if position.steps_done and position.steps_done != expected:
            raise RunDirError(
                f"{out_dir}: its checkpoint holds {position.steps_done} optimizer steps, but "
                f"{position.describe(steps)} of {steps} steps per epoch makes {expected}; the "
                "training images changed since. Train into a new run directory."
            )
        resuming = position != Position(0)
        finished = stop_reason(config, history, done * steps + position.step) if resuming else None
        if checkpoint is not None:
            checkpoint.commit(model, position, history)  # the starting point is a good state too
            if not resuming:  # the untrained model's codes, for the before/after latent picture
                index = np.arange(min(len(x_test), runs.LATENT_EXAMPLES))
                runs.save_latents(posterior_means(model, x_test[index]), index, out_dir)
            if resuming and verbose:
                budget = f"{config.max_steps} steps" if config.max_steps else f"{config.epochs} epochs"
                print(
                    f"{out_dir}: already trained ({finished})"
                    if finished
                    else f"{out_dir}: resuming {position.describe(steps)} of {budget}"
                )
        keeper = CommitCheckpoints(
            checkpoint,
            history,
            steps,
            resumed,
            minutes=config.checkpoint_minutes if alone else 0.0,
            max_steps=config.max_steps,
            stop=stop,
            deadline=None if max_minutes is None else started + 60 * max_minutes,
            blocks=alone,  # the workers leave together, at an epoch's end
        )
        # TensorBoard's pictures come from the validation images (the test split only when
        # validation_examples = 0, where validation is the test split anyway).
        board = [TensorBoardLogs(out_dir, x_val[:8], config.seed)] if tensorboard and out_dir else []
        protocol = ProtocolCallback(config, history)
        left: StopTraining | None = None
        if not finished:
            try:
                model.fit(
                    shuffled_batches(x, config.batch_size, config.seed, done, epochs, position.step),
                    steps_per_epoch=steps,
                    initial_epoch=done,
                    epochs=epochs,
                    validation_data=(x_val,),
                    validation_batch_size=config.batch_size,
                    verbose=verbose,
                    callbacks=[*callbacks, *board, protocol, keeper],
                )
            except StopTraining as stopped:  # mid-epoch, or a signal: committed already
                left = stopped
                for callback in board:
                    callback.on_train_end()
                if verbose:
                    print()  # the progress bar's line
            finally:
                keeper.finish()
        completed = len(next(iter(history.values()), []))
        keeper.raise_if_stopped(completed)
        now = keeper.position
        paused = None
        resume = None
        if out_dir is not None:
            resume = (
                f"tfp-vae train --config {Path(out_dir) / runs.CONFIG_FILE} --out {out_dir}"
                + (f" --max-minutes {max_minutes}" if max_minutes is not None else "")
                + (f" --data-dir {data_dir}" if data_dir is not None else "")
            )
        spent = stop_reason(config, history, now.steps_done)
        if left is not None and left.paused and not keeper.out_of_time and not spent:
            reason = f"{left.paused} {now.describe(steps)} ({now.steps_done} steps done)"
            if checkpoint is not None:
                reason += ", checkpoint committed"
                checkpoint.publish(model, now, history, f"{reason}; resume with: {resume}")
            else:
                reason += "; nothing was saved (no out_dir)"
            raise RunPaused(reason, resume or "", stop.name)
        if keeper.out_of_time and not spent:
            paused = f"time budget of {max_minutes} minute(s) reached {now.describe(steps)}"
            paused += f" ({now.steps_done} steps done)"
            if out_dir is not None:
                paused += f"; resume with: {resume}"
            if verbose:
                print(paused)
        if checkpoint is not None and not finished:
            # Again after fit: a callback may have changed the weights at the end or stopped
            # training early.
            checkpoint.publish(model, now, history, paused)
        best = best_epoch(config, history) if config.early_stopping_patience else None
        if best is not None and best + 1 != completed:  # return the best weights, as saved
            if protocol.best_epoch == best:
                model.set_weights(protocol.best_weights)
            else:  # trained before this process resumed the run, so saved in out_dir
                assert out_dir is not None
                model.set_weights(runs.load(out_dir).get_weights())
    return model, history


def validation_split(config: VAEConfig, x, x_test):
    """(training images, validation images): the last `config.validation_examples` of the
    training images x validate, binarized once (seed + 2) if the model re-binarizes its training
    images; with validation_examples = 0, (x, x_test). Raises ConfigError if no training image
    would be left."""
    n = config.validation_examples
    if not n:
        return x, x_test
    if n >= len(x):
        raise ConfigError(
            f"VAEConfig.validation_examples={n}: must be smaller than the {len(x)} training images "
            "(after train_examples); lower validation_examples or train on more images."
        )
    x, x_val = x[:-n], np.asarray(x[-n:])  # floats even when x is streamed (`ScaledImages`)
    if config.binarize == "dynamic":  # "static" images are binary already
        x_val = binarize_images(x_val, config.seed + 2)
    return x, x_val
