"""Resumable training: a checkpoint per completed epoch, committed atomically into the run dir.

Layout added to RUN_DIR (see `tfp_vae.runs.files` for the rest):
    checkpoints/latest.json        {"epoch": k, "dir": "epoch-000k"}: the commit record
    checkpoints/epoch-000k/        tf.train.Checkpoint of model + optimizer after k epochs, and
                                   history.json of those k epochs
    status.json                    "training", "complete" (all epochs, or early stopping),
                                   "paused" (time budget: rerun to resume) or "stopped"
                                   (non-finite loss), and why; with early stopping the best epoch

A commit writes the checkpoint into a temporary folder, renames it to `epoch-000k`, then rewrites
`latest.json` atomically: a crash at any moment leaves `latest.json` naming a complete checkpoint.
After it, model.weights.h5 and history.json/csv are rewritten (atomically) from the same state.
Checkpoints hold only tensors (no pickles, no code), like the HDF5 weights.

`RunCheckpoint(run_dir, config)` refuses a run directory that holds another config, so rerunning
the same command resumes and a changed command cannot silently mix two runs; the one change it
accepts is a larger value of a field in `tfp_vae.runs.files.MAY_GROW` (`epochs`), which trains a
finished run further (config.json then records the new total).
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

import tensorflow as tf
import tf_keras

from tfp_vae.config import VAEConfig
from tfp_vae.errors import NonFiniteLossError, RunDirError
from tfp_vae.runs import files as runs
from tfp_vae.training.protocol import best_epoch, criterion, stop_reason

CHECKPOINTS = "checkpoints"
LATEST = "latest.json"
STATUS_FILE = "status.json"
STATE_PREFIX = "state"  # tf.train.Checkpoint files: state.index, state.data-*


class RunCheckpoint:
    """The resumable state of one training run.

    run_dir: the run directory (its config.json decides whether this is a resume).
    config: the config about to be trained; a different saved config raises `RunDirError`.
    write_dir: where this process writes (default run_dir); a non-chief worker writes a private
      copy elsewhere but resumes from `run_dir`, the chief's.
    """

    def __init__(self, run_dir, config: VAEConfig, write_dir=None):
        self.run_dir = Path(run_dir)
        self.write_dir = Path(write_dir) if write_dir is not None else self.run_dir
        self.config = config
        if (self.run_dir / runs.CONFIG_FILE).is_file():
            saved = runs.load_config(self.run_dir)
            if not runs.grown_only(saved, config):  # a larger MAY_GROW field continues the run
                raise RunDirError(
                    f"{self.run_dir} holds a run with another config "
                    f"({runs.config_differences(saved, config)}). Rerun with the flags it was trained "
                    f"with to resume it (only {', '.join(runs.MAY_GROW)} may change, and only grow, "
                    "to train it further), or train into a new --out directory."
                )

    # ------------------------------------------------------------------ reading
    def latest(self, root=None) -> int | None:
        """Epochs completed by the last checkpoint committed in `root` (default run_dir)."""
        path = Path(root or self.run_dir) / CHECKPOINTS / LATEST
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text())
            epoch, folder = int(record["epoch"]), record["dir"]
        except (ValueError, KeyError, TypeError) as err:
            raise RunDirError(
                f"{path} is unreadable ({err}); delete {path.parent} to restart training from scratch."
            ) from err
        if folder != _epoch_dir(epoch) or not (path.parent / folder).is_dir():
            raise RunDirError(
                f"{path} names checkpoint {folder!r}, which is missing; delete "
                f"{path.parent} to restart training from scratch."
            )
        return epoch

    def restore(self, model) -> tuple[int, dict]:
        """Loads the last committed state into `model` (compiled, optimizer included).

        Returns (epochs completed, history {metric: [value per completed epoch]}); (0, {}) and the
        model untouched when there is nothing to resume. Call inside the strategy's scope.
        """
        epoch = self.latest()
        if epoch is None:
            return 0, {}
        folder = self.run_dir / CHECKPOINTS / _epoch_dir(epoch)
        model.optimizer.build(model.trainable_variables)  # idempotent; slots must exist to restore
        try:
            _trackable(model).read(str(folder / STATE_PREFIX)).assert_existing_objects_matched()
        except Exception as err:  # truncated files or another architecture
            raise RunDirError(
                f"checkpoint {folder} cannot be restored into the model of {self.run_dir / runs.CONFIG_FILE} "
                f"({type(err).__name__}: {err}); delete {self.run_dir / CHECKPOINTS} to restart."
            ) from err
        history = json.loads((folder / runs.HISTORY_JSON).read_text())
        return epoch, {k: [float(v) for v in vals[:epoch]] for k, vals in history.items()}

    # ------------------------------------------------------------------ writing
    def commit(self, model, epoch: int, history: dict) -> None:
        """Records `model` (weights + optimizer) after `epoch` completed epochs, with their history."""
        if self.latest(self.write_dir) == epoch:  # resumed here: that state is on disk already
            self.publish(model, epoch, history)
            return
        root = self.write_dir / CHECKPOINTS
        root.mkdir(parents=True, exist_ok=True)
        tmp = root / f".tmp-{_epoch_dir(epoch)}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        _trackable(model).write(str(tmp / STATE_PREFIX))
        runs.atomic_write_text(tmp / runs.HISTORY_JSON, json.dumps(history))
        final = root / _epoch_dir(epoch)
        shutil.rmtree(final, ignore_errors=True)  # a leftover no commit record points to
        os.replace(tmp, final)
        runs.atomic_write_text(root / LATEST, json.dumps({"epoch": epoch, "dir": final.name}))
        for old in root.iterdir():  # earlier epochs and abandoned temporaries
            if old.is_dir() and old.name != final.name:
                shutil.rmtree(old, ignore_errors=True)
        self.publish(model, epoch, history)

    def publish(self, model, epoch: int, history: dict, paused: str | None = None) -> None:
        """Rewrites config.json, model.weights.h5, history.json/csv and status.json for `epoch`.

        With early stopping, model.weights.h5 is rewritten only when `epoch` is the best so far
        (`tfp_vae.training.protocol.best_epoch`), so it always holds the best weights; the checkpoint keeps
        the latest. paused: why training paused resumably here (e.g. its time budget), if it did.
        """
        best = best_epoch(self.config, history) if self.config.early_stopping_patience else None
        kept = epoch if best is None else best + 1
        if kept == epoch or not (self.write_dir / runs.WEIGHTS_FILE).is_file():
            runs.save(model, self.write_dir)
        runs.save_history(history, self.write_dir)
        finished = stop_reason(self.config, history)
        state = (
            "complete"
            if finished
            else "paused"
            if paused
            else "stopped"
            if getattr(model, "stop_training", False)
            else "training"
        )
        if best is None:
            note = f"model.weights.h5 holds the weights after {epoch} of {self.config.epochs} epoch(s)" + (
                " (a callback stopped training)." if state == "stopped" else "."
            )
            fields: dict[str, Any] = {}
        else:
            note = (
                f"model.weights.h5 holds the weights after epoch {kept} of {epoch}, the best by "
                "validation negative ELBO (val_nll + val_kl)."
            )
            fields = {"best_epoch": kept, "best_val_neg_elbo": float(criterion(history)[best])}
        reason = finished or paused
        if reason:
            fields["reason"] = reason
        self.set_status(state, epochs_done=epoch, **fields, note=note)

    def set_status(self, state: str, **fields) -> None:
        runs.atomic_write_text(self.write_dir / STATUS_FILE, json.dumps({"state": state, **fields}, indent=2))


class CommitEachEpoch(tf_keras.callbacks.Callback):
    """During `fit`: stops at the first non-finite loss, and commits a checkpoint after every
    epoch that finished with finite losses.

    history: {metric: [per completed epoch]} so far; extended in place with each epoch's logs.
    checkpoint: a `RunCheckpoint`, or None to keep nothing on disk.
    """

    def __init__(self, checkpoint: RunCheckpoint | None, history: dict, steps: int):
        super().__init__()
        self.checkpoint = checkpoint
        self.history = history
        self.steps = steps
        self.bad: tuple | None = None  # (epoch, step, loss) of the first non-finite loss

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        # logs["loss"] is the epoch's running mean: it turns non-finite at the first bad step.
        loss = (logs or {}).get("loss")
        if self.bad is None and loss is not None and not math.isfinite(float(loss)):
            # With steps_per_execution = n Keras reports once per block of n steps: the bad step
            # lies in the block that ends here.
            block = getattr(self.model, "_steps_per_execution", None)
            block = 1 if block is None else int(block)
            self.bad = (self.epoch, (max(batch + 2 - block, 1), batch + 1), float(loss))
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.bad is not None:
            return
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        if self.checkpoint is not None:
            self.checkpoint.commit(self.model, epoch + 1, self.history)

    def raise_if_stopped(self, good_epochs: int) -> None:
        """After fit: raises `NonFiniteLossError` naming epoch and step if training was stopped."""
        if self.bad is None:
            return
        epoch, (first, last), loss = self.bad
        steps = f"step {last}" if first == last else f"one of steps {first}-{last}"
        where = f"epoch {epoch + 1}, {steps} of {self.steps}"
        if self.checkpoint is None:
            kept = "no run directory was given, so nothing was saved"
        else:
            self.checkpoint.set_status(
                "stopped", reason=f"non-finite loss ({loss}) at {where}", epochs_done=good_epochs
            )
            kept = (
                f"{self.checkpoint.write_dir} keeps the last good weights, those after "
                f"{good_epochs} epoch(s) (model.weights.h5 and its checkpoint)"
            )
        raise NonFiniteLossError(
            f"training stopped: the loss became {loss} at {where}; {kept}. Lower the learning "
            "rate or set clip_norm (--clip-norm), and train into a new run directory."
        )


def _epoch_dir(epoch: int) -> str:
    return f"epoch-{epoch:04d}"


def _trackable(model) -> tf.train.Checkpoint:
    # Everything the next epoch depends on: weights, optimizer slots and step count, and any state
    # the model tracks (e.g. a KL schedule's variables).
    return tf.train.Checkpoint(model=model, optimizer=model.optimizer)
