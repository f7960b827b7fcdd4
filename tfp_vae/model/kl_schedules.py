"""KL schedules: how the KL term's weight beta (and capacity C) move during training.

Registry `tfp_vae.choices.SCHEDULES`, keyed by `VAEConfig.kl_schedule`. A schedule gives, for the training
progress in epochs, the values of the `KLDivergence` variables it drives. They are non-trainable
`tf.Variable`s that the train step itself sets before each update (`VAE.follow_kl_schedule`), from
the optimizer's step count (which the checkpoint keeps) and the steps per epoch: the schedule moves
every step, never retraces, and a run resumed mid-ramp continues exactly where it stopped. With
N = `kl_schedule_epochs` and t the epochs completed after the step (t = (step + 1) / steps per
epoch), ramp(t) = min(1, t / N):

* "constant": loss = nll + beta * KL every step (drives nothing).
* "warmup":   loss = nll + beta * ramp(t) * KL, reaching beta at the end of epoch N (Bowman et
              al. 2016).
* "capacity": loss = nll + beta * |KL - C| with C = capacity_max * ramp(t) nats (Burgess et al.
              2018, "Understanding disentangling in beta-VAE"); KL is the batch mean per example.

At the end of epoch e (0-based) this is the per-epoch value ramp = (e + 1) / N; history records each
driven variable's value at the end of the epoch. A built model carries the objective its schedule
ends at (beta, C = capacity_max).

>>> from tfp_vae.config import VAEConfig
>>> cfg = VAEConfig(beta=4.0, kl_schedule="warmup", kl_schedule_epochs=4)
>>> [float(SCHEDULES["warmup"].values(cfg, t)["beta"]) for t in (0.5, 1, 2, 4, 6)]
[0.5, 1.0, 2.0, 4.0, 4.0]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import tensorflow as tf
import tf_keras

from tfp_vae.choices import SCHEDULES

if TYPE_CHECKING:
    from tfp_vae.config import VAEConfig
    from tfp_vae.model.posterior import KLDivergence


def ramp(progress, epochs: int):
    """Fraction of the way through a linear ramp of `epochs` epochs after `progress` epochs
    (a float or a float32 tensor): min(1, progress / epochs), a tensor."""
    return tf.minimum(1.0, tf.cast(progress, tf.float32) / epochs)


@dataclasses.dataclass(frozen=True)
class KLSchedule:
    """One KL schedule.

    Attributes:
      name: registry key (`VAEConfig.kl_schedule`).
      values: (config, epochs of progress) -> {KLDivergence variable name ("beta", "capacity"):
        value}; progress and values are floats or scalar tensors.
      capacity: whether the objective is beta * |KL - C| rather than beta * KL.
    """

    name: str
    values: Callable[..., dict]
    capacity: bool = False


for _schedule in (
    KLSchedule("constant", lambda cfg, progress: {}),
    KLSchedule("warmup", lambda cfg, progress: {"beta": cfg.beta * ramp(progress, cfg.kl_schedule_epochs)}),
    KLSchedule(
        "capacity",
        lambda cfg, progress: {"capacity": cfg.capacity_max * ramp(progress, cfg.kl_schedule_epochs)},
        capacity=True,
    ),
):
    SCHEDULES.register(_schedule.name, _schedule)


def assign_schedule(config, divergence, step, steps_per_epoch) -> None:
    """Sets `divergence`'s scheduled variables for the training step `step` (0-based, int tensor),
    inside a compiled step: the values after step + 1 of `steps_per_epoch` (int tensor) steps."""
    progress = tf.cast(step + 1, tf.float32) / tf.cast(steps_per_epoch, tf.float32)
    for name, value in SCHEDULES[config.kl_schedule].values(config, progress).items():
        getattr(divergence, name).assign(value)


class KLScheduleCallback(tf_keras.callbacks.Callback):
    """Tells the model the steps per epoch its train step walks the schedule by, and logs the
    values the schedule drives at each epoch's end into the history.

    Logged keys are the variables the schedule drives ("beta" for warm-up, "capacity" for the
    capacity objective), so history.csv shows the weight each epoch ended with.
    """

    def __init__(self, config: VAEConfig, divergence: KLDivergence, steps_per_epoch: tf.Variable) -> None:
        super().__init__()
        self.config = config
        self.schedule = SCHEDULES[config.kl_schedule]
        self.divergence = divergence
        self.steps_per_epoch = steps_per_epoch
        self._names = list(self.schedule.values(config, 0.0))

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        steps = self.params.get("steps")
        if self._names and not steps:
            raise ValueError(
                f"the {self.config.kl_schedule!r} KL schedule moves per step and needs "
                "the steps per epoch: pass steps_per_epoch to fit."
            )
        self.steps_per_epoch.assign(steps or 1)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is not None:
            logs.update(
                {
                    name: float(tf_keras.backend.get_value(getattr(self.divergence, name)))
                    for name in self._names
                }
            )
