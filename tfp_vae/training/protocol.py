"""The training protocol: what `train` decides between epochs, derived from the history alone.

The criterion is the validation negative ELBO at beta = 1, `val_nll + val_kl` per epoch (nats per
example; `val_loss` carries the training beta and is not used). Epochs still inside a KL warm-up or
capacity ramp (the first `kl_schedule_epochs - 1` of a non-constant schedule) train another
objective and are never "best". Everything here is a function of the saved history
({metric: [per epoch]}, with an `lr` column: the rate each epoch trained with), so a resumed run
takes exactly the decisions an uninterrupted one would, without storing any counter twice:

* early stopping: stop once `early_stopping_patience` epochs have passed since the best one;
* `LR_SCHEDULES`, keyed by `VAEConfig.lr_schedule`, give the learning rate of the next epoch:
  "constant", or "plateau" (Keras' ReduceLROnPlateau rule: multiply by `lr_factor`, not below
  `lr_min`, once `lr_patience` epochs passed without improvement since the best epoch or the last
  reduction, whichever is later).

>>> from tfp_vae.config import VAEConfig
>>> cfg = VAEConfig(validation_examples=10, early_stopping_patience=2, lr_schedule="plateau",
...                 lr_patience=2, learning_rate=1e-3)
>>> h = {"val_nll": [5.0, 4.0, 4.5, 4.2], "val_kl": [1.0, 1.0, 1.0, 1.0], "lr": [1e-3] * 4}
>>> best_epoch(cfg, h), LR_SCHEDULES["plateau"].next_lr(cfg, h)
(1, 0.0005)
>>> stop_reason(cfg, h)
'early stopping after epoch 4: the validation negative ELBO has not improved for 2 epoch(s) since epoch 2'

"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import tf_keras

from tfp_vae.choices import LR_SCHEDULES

LR = "lr"  # history column: the learning rate each epoch trained with


def criterion(history: dict) -> np.ndarray:
    """Validation negative ELBO at beta = 1 per epoch, nats per example: [epochs]."""
    return np.asarray(history.get("val_nll", []), float) + np.asarray(history.get("val_kl", []), float)


def first_candidate(config) -> int:
    """0-based index of the first epoch that ends at the final objective (after a KL ramp)."""
    return 0 if config.kl_schedule == "constant" else config.kl_schedule_epochs - 1


def best_epoch(config, history: dict) -> int | None:
    """0-based index of the epoch with the lowest criterion (the first such), or None if no epoch
    after the KL ramp has finished yet."""
    values = criterion(history)[first_candidate(config) :]
    return None if not len(values) else first_candidate(config) + int(np.argmin(values))


def _since(config, history: dict, start: int | None) -> int:
    # Epochs completed after epoch `start` (0 before any candidate epoch).
    return 0 if start is None else len(criterion(history)) - 1 - start


def stop_reason(config, history: dict, steps_done: int | None = None) -> str | None:
    """Why training must not continue after `history` and `steps_done` optimizer steps (early
    stopping, `config.max_steps` steps done, or else all epochs done), or None."""
    done = len(next(iter(history.values()), []))
    best = best_epoch(config, history)
    patience = config.early_stopping_patience
    if patience and best is not None and _since(config, history, best) >= patience:
        return (
            f"early stopping after epoch {done}: the validation negative ELBO has not improved "
            f"for {patience} epoch(s) since epoch {best + 1}"
        )
    if config.max_steps:  # a step budget replaces the epoch budget
        if steps_done is not None and steps_done >= config.max_steps:
            return f"completed max_steps = {config.max_steps} optimizer steps ({done} whole epoch(s))"
        return None
    if done >= config.epochs:
        return f"completed {done} epochs"
    return None


def _constant(config, history: dict) -> float:
    return history[LR][-1]


def _plateau(config, history: dict) -> float:
    lrs = history[LR]
    cuts = [i - 1 for i in range(1, len(lrs)) if lrs[i] < lrs[i - 1]]  # reduced after epoch i - 1
    best = best_epoch(config, history)
    start = None if best is None else max([best, *cuts])
    if _since(config, history, start) >= config.lr_patience:
        return max(lrs[-1] * config.lr_factor, config.lr_min)
    return lrs[-1]


@dataclasses.dataclass(frozen=True)
class LRSchedule:
    """One learning-rate schedule: `next_lr(config, history)` is the rate of the next epoch."""

    name: str
    next_lr: Callable[..., float]


for _schedule in (LRSchedule("constant", _constant), LRSchedule("plateau", _plateau)):
    LR_SCHEDULES.register(_schedule.name, _schedule)


class ProtocolCallback(tf_keras.callbacks.Callback):
    """During `fit`, after each epoch: logs `lr`, sets the next epoch's learning rate, and stops
    training on early stopping or a spent budget (`stop_reason`). (A time budget is not the
    protocol's: `tfp_vae.training.checkpoint.CommitCheckpoints` leaves at the block it ends in.)

    history: the run's history so far (not yet holding the epoch that ends; a later callback
      appends it). Runs before the callback that commits the epoch, so the checkpoint holds the
      next epoch's learning rate in the optimizer.
    """

    def __init__(self, config, history: dict):
        super().__init__()
        self.config, self.history = config, history
        self.best_epoch, self.best_weights = None, None  # in memory: a run may have no directory

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        optimizer = self.model.optimizer
        logs[LR] = float(tf_keras.backend.get_value(optimizer.learning_rate))
        seen = {k: [*self.history.get(k, []), float(v)] for k, v in logs.items()}
        optimizer.learning_rate.assign(LR_SCHEDULES[self.config.lr_schedule].next_lr(self.config, seen))
        if self.config.early_stopping_patience and best_epoch(self.config, seen) == epoch:
            self.best_epoch, self.best_weights = epoch, self.model.get_weights()
        if stop_reason(self.config, seen, int(optimizer.iterations.numpy())) is not None:
            self.model.stop_training = True
