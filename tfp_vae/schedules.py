"""KL schedules: how the KL term's weight beta (and capacity C) move during training.

Registry `SCHEDULES`, keyed by `VAEConfig.kl_schedule`. A schedule gives, for the start of each
epoch, the values of the `KLDivergence` variables it drives; `KLScheduleCallback` assigns them.
They are non-trainable `tf.Variable`s read inside the compiled train step, so changing them never
retraces it. With N = `kl_schedule_epochs` and e the 0-based epoch, ramp(e) = min(1, (e + 1) / N):

* "constant": loss = nll + beta * KL every epoch (drives nothing).
* "warmup":   loss = nll + beta * ramp(e) * KL, reaching beta in epoch N (Bowman et al. 2016).
* "capacity": loss = nll + beta * |KL - C| with C = capacity_max * ramp(e) nats (Burgess et al.
              2018, "Understanding disentangling in beta-VAE"); KL is the batch mean per example.

A built model carries the objective its schedule ends at (beta, C = capacity_max); `VAE.fit` walks
the schedule from epoch 0 (or `initial_epoch`).

>>> from tfp_vae.config import VAEConfig
>>> cfg = VAEConfig(beta=4.0, kl_schedule="warmup", kl_schedule_epochs=4)
>>> [SCHEDULES["warmup"].values(cfg, e)["beta"] for e in range(5)]
[1.0, 2.0, 3.0, 4.0, 4.0]
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import tf_keras


def ramp(epoch: int, epochs: int) -> float:
    """Fraction of the way through a linear ramp of `epochs` epochs at the start of `epoch` (0-based)."""
    return min(1.0, (epoch + 1) / epochs)


@dataclasses.dataclass(frozen=True)
class KLSchedule:
    """One KL schedule.

    Attributes:
      name: registry key (`VAEConfig.kl_schedule`).
      values: (config, epoch) -> {KLDivergence variable name ("beta", "capacity"): value}.
      capacity: whether the objective is beta * |KL - C| rather than beta * KL.
      description: one line for help texts.
    """

    name: str
    values: Callable[..., dict]
    capacity: bool = False
    description: str = ""


SCHEDULES: dict[str, KLSchedule] = {
    s.name: s
    for s in (
        KLSchedule("constant", lambda cfg, epoch: {}, description="beta throughout"),
        KLSchedule(
            "warmup",
            lambda cfg, epoch: {"beta": cfg.beta * ramp(epoch, cfg.kl_schedule_epochs)},
            description="beta grows linearly over kl_schedule_epochs epochs",
        ),
        KLSchedule(
            "capacity",
            lambda cfg, epoch: {"capacity": cfg.capacity_max * ramp(epoch, cfg.kl_schedule_epochs)},
            capacity=True,
            description="beta * |KL - C|, C grows linearly to capacity_max over kl_schedule_epochs",
        ),
    )
}


def get(name: str) -> KLSchedule:
    try:
        return SCHEDULES[name]
    except KeyError:
        raise ValueError(f"unknown KL schedule {name!r}; choose one of {sorted(SCHEDULES)}.") from None


class KLScheduleCallback(tf_keras.callbacks.Callback):
    """Sets the divergence's beta / capacity at each epoch start; logs them into the history.

    Logged keys are the variables the schedule drives ("beta" for warm-up, "capacity" for the
    capacity objective), so history.csv shows the weight each epoch was trained with.
    """

    def __init__(self, config, divergence):
        super().__init__()
        self.config = config
        self.schedule = get(config.kl_schedule)
        self.divergence = divergence
        self._current: dict = {}

    def on_epoch_begin(self, epoch, logs=None):
        self._current = self.schedule.values(self.config, epoch)
        for name, value in self._current.items():
            getattr(self.divergence, name).assign(value)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.update(self._current)
