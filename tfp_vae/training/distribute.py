"""Training on several devices and machines with TensorFlow's own `tf.distribute`.

Strategies by name (registry `tfp_vae.choices.STRATEGIES`, the `--strategy` flag of `tfp-vae train`):
  "default"      the current (usually single-device) strategy;
  "mirrored"     `tf.distribute.MirroredStrategy`: every GPU (or logical device) of this machine;
  "multiworker"  `tf.distribute.MultiWorkerMirroredStrategy`: several machines, described by the
                 TF_CONFIG environment variable; create it before any other TensorFlow work.

Every strategy splits each global batch of `config.batch_size` images across replicas and sums
the replicas' gradients. `tfp_vae.model.vae.replica_share` weights each replica's mean loss by
its share of the global batch, so the summed objective is still exactly the per-example mean over the global
batch, in nats per example, even when the replicas' batches differ in size.

Writing: only the chief (task "chief", or worker 0 when there is none) writes RUN_DIR; the other
workers write identical copies under RUN_DIR/workers/<task>-<index>/ (saving is a collective step
that every worker takes). Resuming reads the chief's checkpoint, so RUN_DIR must be a folder all
workers share.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from tfp_vae.choices import STRATEGIES
from tfp_vae.errors import ConfigError

STRATEGIES.register("default", tf.distribute.get_strategy)
STRATEGIES.register("mirrored", tf.distribute.MirroredStrategy)
STRATEGIES.register("multiworker", tf.distribute.MultiWorkerMirroredStrategy)


def make_strategy(strategy: tf.distribute.Strategy | str | None = None) -> tf.distribute.Strategy:
    """A `tf.distribute.Strategy` from a name in `STRATEGIES`, a strategy (returned as is) or None."""
    if strategy is None:
        return tf.distribute.get_strategy()
    if isinstance(strategy, tf.distribute.Strategy):
        return strategy
    STRATEGIES.check(strategy)
    if strategy == "multiworker" and not os.environ.get("TF_CONFIG"):
        raise ConfigError(
            "strategy 'multiworker' needs the TF_CONFIG environment variable describing the "
            'cluster, e.g. {"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
            '"task": {"type": "worker", "index": 0}}; set it on every machine.'
        )
    return STRATEGIES[strategy]()


def worker_task(strategy: tf.distribute.Strategy) -> tuple[str, int] | None:
    """(task type, index) of this process in a multi-worker cluster; None on a single machine."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return None
    return resolver.task_type, int(resolver.task_id or 0)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True for the one process that writes the run directory."""
    task = worker_task(strategy)
    if task is None:
        return True
    kind, index = task
    has_chief = "chief" in json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    return kind == "chief" or (kind == "worker" and index == 0 and not has_chief)


def worker_subdir(strategy: tf.distribute.Strategy) -> str | None:
    """Where a non-chief worker writes inside RUN_DIR ("workers/worker-1"); None for the chief."""
    task = worker_task(strategy)
    if task is None or is_chief(strategy):
        return None
    kind, index = task
    return os.path.join("workers", f"{kind}-{index}")


def agree(strategy: tf.distribute.Strategy, value: int, what: str) -> int:
    """Returns `value` once every replica of every worker has reached this point with the same one.

    A barrier (an all-reduce), so no worker writes before all have read; and a check: workers that
    disagree (e.g. resuming from different checkpoints) raise instead of training apart.
    """
    if strategy.num_replicas_in_sync == 1:
        return value
    per_replica = strategy.run(lambda: tf.constant([float(value), 1.0]))
    total, count = strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None).numpy()
    if total != value * count:
        raise ConfigError(
            f"the workers disagree on {what} (this one: {value}, mean over all: {total / count:g}); "
            "give every worker the same command and a run directory they all share."
        )
    return value
