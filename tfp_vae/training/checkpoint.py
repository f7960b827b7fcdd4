"""Resumable training: checkpoints committed atomically into the run dir, with checksums.

Layout added to RUN_DIR (see `tfp_vae.runs.files` for the rest):
    checkpoints/latest.json        {"epoch": e, "step": s, "dir": ...}: the newest commit
    checkpoints/epoch-000e/        tf.train.Checkpoint of model + optimizer (and the epoch's
                                   running metric means) after e epochs, history.json of those
                                   e epochs, and manifest.json: the SHA-256 and size of each file
    checkpoints/epoch-000e-step-0000000s/   the same, s steps into epoch e + 1 (a timed
                                   checkpoint, `VAEConfig.checkpoint_minutes`, a signal, or
                                   `max_steps`)
    status.json                    "training", "complete" (all epochs, max_steps, or early
                                   stopping), "paused" (a time budget or a signal: rerun to
                                   resume) or "stopped" (non-finite loss, a full disk), and why;
                                   steps_done; with early stopping the best epoch;
                                   epoch_seconds, the wall seconds of each completed epoch
                                   (training and validation, carried over by a resume; an epoch
                                   resumed mid-way counts from its resume)

A commit writes the checkpoint into a temporary folder (its manifest last), fsyncs it, renames
it into place, then rewrites `latest.json` atomically, and keeps the previous checkpoint beside
it (two in all): a crash at any moment leaves at least one whole checkpoint. A resume checks the
newest checkpoint's files against its manifest; a damaged one (truncated, a flipped byte) is
reported and the previous one used; when none is whole, `RunDirError` names the files before
anything is written. After a commit, model.weights.h5 and history.json/csv are rewritten
(atomically) from the same state. Checkpoints hold only tensors (no pickles, no code).

`RunCheckpoint(run_dir, config)` refuses a run directory that holds another config, so rerunning
the same command resumes and a changed command cannot silently mix two runs; the one change it
accepts is a larger value of a field in `tfp_vae.runs.files.MAY_GROW` (`epochs`), which trains a
finished run further (config.json then records the new total).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tensorflow as tf
import tf_keras

from tfp_vae.config import VAEConfig
from tfp_vae.errors import NonFiniteLossError, RunDirError, RunWriteError
from tfp_vae.runs import files as runs
from tfp_vae.training.protocol import best_epoch, criterion, stop_reason

CHECKPOINTS = "checkpoints"
LATEST = "latest.json"
MANIFEST = "manifest.json"
STATUS_FILE = "status.json"
STATE_PREFIX = "state"  # tf.train.Checkpoint files: state.index, state.data-*
KEEP = 2  # committed checkpoints kept: the newest and the one before it
_NAME = re.compile(r"epoch-(\d{4,})(?:-step-(\d{7,}))?")


@dataclasses.dataclass(frozen=True, order=True)
class Position:
    """Where training stands: `epoch` epochs completed and `step` steps into the next one;
    `steps_done` optimizer steps in all (0 when unknown, for checkpoints of older versions)."""

    epoch: int
    step: int = 0
    steps_done: int = dataclasses.field(default=0, compare=False)

    @property
    def folder(self) -> str:
        return f"epoch-{self.epoch:04d}" + (f"-step-{self.step:07d}" if self.step else "")

    def describe(self, steps_per_epoch: int | None = None) -> str:
        if not self.step:
            return f"after epoch {self.epoch}"
        of = f" of {steps_per_epoch}" if steps_per_epoch else ""
        return f"at step {self.step}{of} of epoch {self.epoch + 1}"


@dataclasses.dataclass
class Resumed:
    """What `RunCheckpoint.resume` restored: the position, the history of the completed epochs,
    and the running sums of the epoch's metrics when it stopped mid-epoch ({name: [values]})."""

    position: Position
    history: dict
    metrics: dict | None = None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def damage(folder: Path) -> str | None:
    """What is wrong with the checkpoint in `folder` (None if every file matches its manifest)."""
    manifest = folder / MANIFEST
    try:
        record = json.loads(manifest.read_text())
        files = record["files"]
    except FileNotFoundError:
        return f"{manifest} is missing (the commit never finished)"
    except (ValueError, KeyError, TypeError) as err:
        return f"{manifest} is unreadable ({err})"
    problems = []
    for name, want in sorted(files.items()):
        path = folder / name
        if not path.is_file():
            problems.append(f"{path} is missing")
        elif path.stat().st_size != want["bytes"]:
            problems.append(f"{path} has {path.stat().st_size} of {want['bytes']} bytes (truncated?)")
        elif _sha256(path) != want["sha256"]:
            problems.append(f"{path} does not match its SHA-256 (a changed byte)")
    return "; ".join(problems) or None


class RunCheckpoint:
    """The resumable state of one training run.

    run_dir: the run directory (its config.json decides whether this is a resume).
    config: the config about to be trained; a different saved config raises `RunDirError`.
    write_dir: where this process writes (default run_dir); a non-chief worker writes a private
      copy elsewhere but resumes from `run_dir`, the chief's.
    message: where notes on damaged checkpoints go (default: stderr).
    """

    def __init__(
        self, run_dir, config: VAEConfig, write_dir=None, message: Callable[[str], Any] | None = None
    ):
        self.run_dir = Path(run_dir)
        self.write_dir = Path(write_dir) if write_dir is not None else self.run_dir
        self.config = config
        self.message = message or (lambda line: print(line, file=sys.stderr))
        self.steps_per_epoch: int | None = None  # set by `train`, for the status' words
        self.committed: Position | None = None  # the newest whole checkpoint in write_dir
        self.kept: Position | None = None  # the whole one before it, kept beside it
        self.epoch_seconds: list[float] = []  # wall seconds per completed epoch, into status.json
        if (self.run_dir / runs.CONFIG_FILE).is_file():
            saved = runs.load_config(self.run_dir)
            if not runs.grown_only(saved, config):  # a larger MAY_GROW field continues the run
                raise RunDirError(
                    f"{self.run_dir} holds a run with another config "
                    f"({runs.config_differences(saved, config)}). Rerun with the flags it was trained "
                    f"with to resume it (only {' or '.join(runs.MAY_GROW)} may change, and only grow, "
                    "to train it further), or train into a new --out directory."
                )

    # ------------------------------------------------------------------ reading
    def candidates(self, root=None) -> list[Position]:
        """Positions of the checkpoint folders in `root` (default run_dir), newest first."""
        folder = Path(root or self.run_dir) / CHECKPOINTS
        found = []
        for path in folder.iterdir() if folder.is_dir() else ():
            match = _NAME.fullmatch(path.name)
            if match and path.is_dir():
                found.append(Position(int(match[1]), int(match[2] or 0)))
        return sorted(found, reverse=True)

    def _legacy(self, root: Path, position: Position) -> bool:
        # A checkpoint of the version before manifests, named by its latest.json: trusted as it was.
        try:
            record = json.loads((root / CHECKPOINTS / LATEST).read_text())
        except (OSError, ValueError):
            return False
        folder = root / CHECKPOINTS / position.folder
        return (
            isinstance(record, dict)
            and "step" not in record
            and record.get("dir") == position.folder
            and not (folder / MANIFEST).exists()
            and (folder / f"{STATE_PREFIX}.index").is_file()
        )

    def newest_whole(self, root=None) -> Position | None:
        """The newest checkpoint in `root` (default run_dir) whose files match its manifest."""
        root = Path(root or self.run_dir)
        for position in self.candidates(root):
            if self._legacy(root, position) or damage(root / CHECKPOINTS / position.folder) is None:
                return position
        return None

    def latest(self, root=None) -> int | None:
        """Epochs completed by the newest whole checkpoint in `root` (default run_dir), or None."""
        newest = self.newest_whole(root)
        return None if newest is None else newest.epoch

    def restore(self, model) -> tuple[int, dict]:
        """`resume` as (epochs completed, history {metric: [value per completed epoch]})."""
        resumed = self.resume(model)
        return resumed.position.epoch, resumed.history

    def resume(self, model) -> Resumed:
        """Loads the newest whole checkpoint into `model` (compiled, optimizer included).

        Checks each checkpoint, newest first, against its manifest: a damaged one is reported
        (`message`) and the one before it tried. Returns `Resumed` (position, history); position
        (0, 0) and the model untouched when there is nothing to resume. Raises `RunDirError`
        naming the damaged files when checkpoints exist but none is whole, before anything is
        written. Call inside the strategy's scope.
        """
        root = self.run_dir / CHECKPOINTS
        damaged = []
        for position in self.candidates():
            folder = root / position.folder
            problem = None if self._legacy(self.run_dir, position) else damage(folder)
            if problem is not None:
                damaged.append(f"{folder}: {problem}")
                self.message(f"{folder} is damaged ({problem}); trying the checkpoint before it.")
                continue
            model.optimizer.build(model.trainable_variables)  # idempotent; slots must exist to restore
            try:
                state = str(folder / STATE_PREFIX)
                # The draw apart: checkpoints older than it have none (the next block draws anew).
                _trackable(model, draw=False).read(state).assert_existing_objects_matched().expect_partial()
                tf.train.Checkpoint(block_draw=model.block_draw).read(state).expect_partial()
            except Exception as err:  # whole files, yet another architecture
                raise RunDirError(
                    f"checkpoint {folder} cannot be restored into the model of "
                    f"{self.run_dir / runs.CONFIG_FILE} ({type(err).__name__}: {err}); delete "
                    f"{root} to restart."
                ) from err
            history = json.loads((folder / runs.HISTORY_JSON).read_text())
            history = {k: [float(v) for v in vals[: position.epoch]] for k, vals in history.items()}
            steps = int(model.optimizer.iterations.numpy())
            position = Position(position.epoch, position.step, steps)
            if damaged:
                self.message(
                    f"{root}: resuming from {folder.name}, the newest whole checkpoint "
                    f"({position.describe(self.steps_per_epoch)}); the damaged one(s) will be replaced."
                )
            own = position if self.write_dir == self.run_dir else self.newest_whole(self.write_dir)
            if own == position:  # this process' own copy holds that state already
                self.committed = position
            metrics = None
            if position.step:
                metrics = {name: [v.numpy() for v in t.variables] for name, t in model._trackers.items()}
            self.epoch_seconds = recorded_seconds(self.run_dir)[: position.epoch]
            return Resumed(position, history, metrics)
        if damaged:
            raise RunDirError(
                f"no whole checkpoint to resume from in {root}: " + "; ".join(damaged) + ". Nothing "
                f"was written. Restore these files from a copy, or delete {root} to train from scratch."
            )
        return Resumed(Position(0, 0, 0), {})

    # ------------------------------------------------------------------ writing
    def commit(self, model, position: Position, history: dict, paused: str | None = None) -> None:
        """Records `model` (weights, optimizer, running metrics) at `position`, with the history
        of the completed epochs, keeping the checkpoint before it; then `publish`es. A full disk
        raises `RunWriteError`, the earlier checkpoints and files untouched."""
        if position == self.committed:  # resumed here: that state is on disk already
            self.publish(model, position, history, paused, weights=not self._published(position))
            return
        root = self.write_dir / CHECKPOINTS
        final = root / position.folder
        tmp = root / f".tmp-{position.folder}-{os.getpid()}"
        try:
            with runs.writing(tmp, f"the checkpoint {position.describe(self.steps_per_epoch)}"):
                root.mkdir(parents=True, exist_ok=True)
                shutil.rmtree(tmp, ignore_errors=True)
                tmp.mkdir()
                _trackable(model).write(str(tmp / STATE_PREFIX))
                (tmp / runs.HISTORY_JSON).write_text(json.dumps(history))
                files = {}
                for path in sorted(tmp.iterdir()):
                    with open(path, "rb+") as f:
                        os.fsync(f.fileno())
                    files[path.name] = {"sha256": _sha256(path), "bytes": path.stat().st_size}
                record = {"epoch": position.epoch, "step": position.step, "steps_done": position.steps_done}
                (tmp / MANIFEST).write_text(json.dumps({**record, "files": files}, indent=2))
                with open(tmp / MANIFEST, "rb+") as f:
                    os.fsync(f.fileno())
                runs.fsync_dir(tmp)
                shutil.rmtree(final, ignore_errors=True)  # damaged, or a leftover no record names
                os.replace(tmp, final)
                runs.fsync_dir(root)
            runs.atomic_write_text(root / LATEST, json.dumps({**record, "dir": final.name}))
        except RunWriteError as err:
            shutil.rmtree(tmp, ignore_errors=True)  # give the space back
            raise self._kept_note(err) from err.__cause__
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        previous = self.committed
        self.committed, self.kept = position, previous
        for old in root.iterdir():  # older checkpoints, damaged ones and abandoned temporaries
            keep = {position.folder, previous.folder if previous else None, LATEST}
            if old.name not in keep:
                shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)
        self.publish(model, position, history, paused)

    def _published(self, position: Position) -> bool:
        # model.weights.h5 was rewritten for `position` already: a status written after it says so
        # (a failed write leaves "stopped" instead).
        try:
            status = json.loads((self.write_dir / STATUS_FILE).read_text())
        except (OSError, ValueError):
            return False
        return (
            isinstance(status, dict)
            and status.get("state") in ("training", "paused", "complete")
            and status.get("steps_done") == position.steps_done
            and (self.write_dir / runs.WEIGHTS_FILE).is_file()
        )

    def _kept_note(self, err: RunWriteError) -> RunWriteError:
        kept = (
            f"{self.write_dir / CHECKPOINTS / self.committed.folder} (the last committed checkpoint, "
            f"{self.committed.describe(self.steps_per_epoch)}) is whole: rerunning resumes from it."
            if self.committed is not None
            else "No checkpoint was committed yet: rerunning starts the run again."
        )
        note = RunWriteError(f"{err} {kept}", path=err.path, what=err.what, free_bytes=err.free_bytes)
        try:  # a status file is a page: often still writable once the temporaries are gone
            self.set_status(
                "stopped",
                reason=f"could not write {err.what}: {err}",
                steps_done=self.committed.steps_done if self.committed else 0,
            )
        except (RunWriteError, OSError):
            pass
        return note

    def publish(
        self, model, position: Position | int, history: dict, paused: str | None = None, weights: bool = True
    ) -> None:
        """Rewrites history.json/csv, config.json, model.weights.h5 and status.json for `position`.

        With early stopping, model.weights.h5 is rewritten only when `position` ends the best
        epoch so far (`tfp_vae.training.protocol.best_epoch`), so it always holds the best
        weights; the checkpoint keeps the latest. paused: why training paused resumably here (its
        time budget, a signal), if it did. History goes first: it is the smallest file.
        weights=False keeps model.weights.h5 as it is (it holds this state already).
        """
        if not isinstance(position, Position):
            position = Position(position, 0, int(model.optimizer.iterations.numpy()))
        epoch = position.epoch
        try:
            best = best_epoch(self.config, history) if self.config.early_stopping_patience else None
            kept = epoch if best is None else best + 1
            runs.save_history(history, self.write_dir)
            if not weights and (self.write_dir / runs.WEIGHTS_FILE).is_file():
                pass  # it holds this state already
            elif (
                (kept == epoch and not position.step)
                or best is None
                or not (self.write_dir / runs.WEIGHTS_FILE).is_file()
            ):
                runs.save(model, self.write_dir)
            finished = stop_reason(self.config, history, position.steps_done)
            state = (
                "complete"
                if finished
                else "paused"
                if paused
                else "stopped"
                if getattr(model, "stop_training", False) and not position.step
                else "training"
            )
            if best is None:
                where = (
                    f"{position.steps_done} steps, {position.describe(self.steps_per_epoch)}"
                    if position.step
                    else f"{epoch} of {self.config.epochs} epoch(s)"
                )
                if self.config.max_steps:
                    where = f"{position.steps_done} of {self.config.max_steps} steps ({epoch} whole epoch(s))"
                note = f"model.weights.h5 holds the weights after {where}" + (
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
            if position.step:
                fields["step_in_epoch"] = position.step
            self.set_status(state, epochs_done=epoch, steps_done=position.steps_done, **fields, note=note)
        except RunWriteError as err:
            raise self._kept_note(err) from err.__cause__

    def set_status(self, state: str, **fields) -> None:
        if self.epoch_seconds:  # kept by every status, so that a resume carries the timings over
            fields.setdefault("epoch_seconds", self.epoch_seconds)
        runs.atomic_write_text(self.write_dir / STATUS_FILE, json.dumps({"state": state, **fields}, indent=2))


def recorded_seconds(run_dir) -> list[float]:
    """RUN_DIR/status.json's epoch_seconds: wall seconds of each completed epoch ([] if none)."""
    try:
        status = json.loads((Path(run_dir) / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return []
    seconds = status.get("epoch_seconds") if isinstance(status, dict) else None
    return [float(s) for s in seconds] if isinstance(seconds, list) else []


class CommitCheckpoints(tf_keras.callbacks.Callback):
    """During `fit`: commits a checkpoint after every epoch, every `minutes` at the end of a block
    of steps, and before it stops; stops at the first non-finite loss, after exactly
    `max_steps` optimizer steps, at the end of the block in which a stop signal came, or at the
    end of the first block (or epoch) that ends after `deadline` (`out_of_time` then says so).

    Block boundaries: fit runs `steps_per_execution` steps per call and calls
    `on_train_batch_end` once per call, so that is where a checkpoint can be taken. A run
    resumed at `resumed.position` (mid-epoch) starts its first epoch at that step (through
    Keras' own `_training_state` hook, the one `BackupAndRestore` uses) with the epoch's running
    metric sums restored, so its history and weights are those of a run never stopped.
    Leaving mid-epoch raises `StopTraining` out of `fit` (no validation of a partial epoch).

    history: {metric: [per completed epoch]} so far; extended in place with each epoch's logs.
    checkpoint: a `RunCheckpoint`, or None to keep nothing on disk.
    stop: a `tfp_vae.runs.interrupts.StopRequests` (or None): its signal stops training.
    deadline: a `time.monotonic()` time (or None): a time budget, checked at every block's end
      (at epoch ends only if not `blocks`) because an epoch of a large data set can outlast any
      slice of a shared machine.
    """

    def __init__(
        self,
        checkpoint: RunCheckpoint | None,
        history: dict,
        steps: int,
        resumed: Resumed | None = None,
        minutes: float = 0.0,
        max_steps: int = 0,
        stop=None,
        deadline: float | None = None,
        blocks: bool = True,
    ):
        super().__init__()
        self.checkpoint = checkpoint
        self.history = history
        self.steps = steps
        self.resumed = resumed or Resumed(Position(0), {})
        self.minutes, self.max_steps, self.stop = minutes, max_steps, stop
        self.deadline, self.blocks = deadline, blocks
        self.out_of_time = False
        self.bad: tuple | None = None  # (epoch, step, loss) of the first non-finite loss
        self.last_commit = time.monotonic()
        self.compiled: int | None = None  # steps_per_execution as compiled
        self.shortened: int | None = None  # the block's length before max_steps shortened it
        self.position = self.resumed.position

    # -------------------------------------------------------------- Keras' resume hook
    def maybe_load_initial_counters_from_ckpt(self, steps_per_epoch, initial_epoch, mode=None):
        """(epoch, step) `fit` starts at: the resumed position's step within its epoch."""
        position = self.resumed.position
        return (initial_epoch, position.step if position.epoch == initial_epoch else 0)

    def on_train_begin(self, logs=None):
        self.model._training_state = self
        self.compiled = int(self.model._steps_per_execution.numpy())
        self.last_commit = time.monotonic()

    def on_train_end(self, logs=None):
        self.finish()

    def finish(self) -> None:
        """Undoes what `fit` was given (also when `StopTraining` left it)."""
        if self.model is not None and getattr(self.model, "_training_state", None) is self:
            self.model._training_state = None
        if self.compiled is not None:
            self.model._steps_per_execution.assign(self.compiled)
            self.compiled = self.shortened = None

    # -------------------------------------------------------------- the steps
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self.epoch_started = time.monotonic()
        metrics, position = self.resumed.metrics, self.resumed.position
        if metrics and epoch == position.epoch:  # the running sums of the epoch it stopped in
            for name, values in metrics.items():
                for variable, value in zip(self.model._trackers[name].variables, values):
                    variable.assign(value)
            self.resumed = Resumed(position, {}, None)

    def _done(self) -> int:
        return int(self.model.optimizer.iterations.numpy())

    def on_train_batch_begin(self, batch, logs=None):
        if self.stop is not None and self.stop.received is not None:
            self._leave(f"stopped by {self.stop.name}")  # came before this block began
        if self.max_steps:
            left = self.max_steps - self._done()
            block = int(self.model._steps_per_execution.numpy())
            if left < block:  # the budget ends inside this block: run only what is left
                self.shortened = block
                self.model._steps_per_execution.assign(max(left, 1))

    def on_train_batch_end(self, batch, logs=None):
        if self.shortened is not None:  # as Keras set it for this block
            self.model._steps_per_execution.assign(self.shortened)
            self.shortened = None
        # logs["loss"] is the epoch's running mean: it turns non-finite at the first bad step.
        loss = (logs or {}).get("loss")
        if self.bad is None and loss is not None and not math.isfinite(float(loss)):
            # With steps_per_execution = n Keras reports once per block of n steps: the bad step
            # lies in the block that ends here.
            block = getattr(self.model, "_steps_per_execution", None)
            block = 1 if block is None else int(block)
            self.bad = (self.epoch, (max(batch + 2 - block, 1), batch + 1), float(loss))
            self.model.stop_training = True
            return
        done = self._done()
        step = done - self.epoch * self.steps
        if step >= self.steps:  # the epoch's last block: on_epoch_end validates and commits
            if self.stop is not None and self.stop.received is not None:
                self.model.stop_training = True
            return
        self.position = Position(self.epoch, step, done)
        if self.max_steps and done >= self.max_steps:
            self._leave(None)
        if self.stop is not None and self.stop.received is not None:
            self._leave(f"stopped by {self.stop.name}")
        if self.blocks and self._past_deadline():
            self.out_of_time = True
            self._leave(TIME_BUDGET)
        if self.minutes and time.monotonic() - self.last_commit >= 60 * self.minutes:
            self._commit(self.position)

    def _past_deadline(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def _commit(self, position: Position, paused: str | None = None) -> None:
        if self.checkpoint is not None:
            self.checkpoint.commit(self.model, position, self.history, paused)
        self.last_commit = time.monotonic()

    def _leave(self, paused: str | None) -> None:
        position = Position(self.epoch, self._done() - self.epoch * self.steps, self._done())
        self.position = position
        self._commit(position, paused)
        raise StopTraining(position, paused)

    def on_epoch_end(self, epoch, logs=None):
        if self.bad is not None:
            return
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        if self.checkpoint is not None:  # validation included: what an epoch of this run costs
            self.checkpoint.epoch_seconds.append(round(time.monotonic() - self.epoch_started, 3))
        self.position = Position(epoch + 1, 0, self._done())
        paused = None
        if self.stop is not None and self.stop.received is not None:
            paused = f"stopped by {self.stop.name}"
        self._commit(self.position, paused)
        if paused:
            raise StopTraining(self.position, paused)
        if self._past_deadline():  # after validation: fit ends here, the epoch committed
            self.out_of_time = self.model.stop_training = True

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


TIME_BUDGET = "time budget reached"  # `StopTraining.paused` when the deadline passed mid-epoch


class StopTraining(Exception):
    """Raised by `CommitCheckpoints` out of `fit` after committing `position`: `paused` says why
    (a signal, or `TIME_BUDGET`), None when `max_steps` was reached."""

    def __init__(self, position: Position, paused: str | None):
        super().__init__(paused or "max_steps reached")
        self.position, self.paused = position, paused


def _trackable(model, draw: bool = True) -> tf.train.Checkpoint:
    # Everything the next step depends on: weights, optimizer slots and step count, the random
    # generator, the epoch's running metric sums, any state the model tracks (e.g. a KL
    # schedule's variables), and (draw) the running block's training-image draw.
    parts = {"block_draw": model.block_draw} if draw else {}
    return tf.train.Checkpoint(model=model, optimizer=model.optimizer, **parts)
