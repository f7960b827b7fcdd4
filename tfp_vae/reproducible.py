"""Reproducible training: every random draw of epoch e depends only on (config.seed, e).

That makes a run resumed at epoch e follow exactly the path of a run that was never stopped:
  * the data order of epoch e is a stateless shuffle keyed by (seed, e) (`shuffled_batches`);
  * the stateful samplers inside the step (posterior draws, dynamic binarization) are re-seeded
    with `epoch_seed(seed, e)` at the start of every epoch, and the step function is re-traced so
    their kernels restart from that seed (`ReseedEachEpoch`).
`op_determinism` additionally pins TensorFlow's kernels to deterministic implementations, so the
same config and seed give bit-identical weights on CPU.

>>> epoch_seed(0, 3) == epoch_seed(0, 3) != epoch_seed(0, 4)
True
"""

from __future__ import annotations

import contextlib

import numpy as np
import tensorflow as tf
import tf_keras
from tensorflow.python.framework import config as tf_config  # the only home of disable_op_determinism


def epoch_seed(seed: int, epoch: int) -> int:
    """A seed in [0, 2**31) for epoch `epoch` of a run seeded with `seed`."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0] % 2**31)


def shuffled_batches(x, batch_size: int, seed: int, initial_epoch: int, epochs: int) -> tf.data.Dataset:
    """Batches of `x` [N, ...] for epochs initial_epoch .. epochs-1, each epoch one reshuffled pass.

    Epoch e visits the images in a permutation that depends only on (seed, e): ceil(N / batch_size)
    batches, the last one short if batch_size does not divide N. Built like tf_keras's own NumPy
    adapter (index batches, then a gather from one copy of `x`), so tf.distribute splits every batch
    across replicas and workers the same way it splits `fit(x)`.
    """
    n = int(np.shape(x)[0])
    full, rest = divmod(n, batch_size)

    def epoch_batches(epoch):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(n, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), epoch])
        )
        batches = tf.data.Dataset.from_tensor_slices(tf.reshape(order[: full * batch_size], [full, batch_size]))
        if rest:
            batches = batches.concatenate(tf.data.Dataset.from_tensors(order[full * batch_size:]))
        return batches

    indices = tf.data.Dataset.range(initial_epoch, epochs).flat_map(epoch_batches)
    images = tf.data.Dataset.from_tensors(x).repeat()
    data = tf.data.Dataset.zip((indices, images)).map(
        lambda i, all_images: tf.gather(all_images, i), num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return data.with_options(options).prefetch(tf.data.AUTOTUNE)


def steps_per_epoch(n: int, batch_size: int) -> int:
    return -(-n // batch_size)


class ReseedEachEpoch(tf_keras.callbacks.Callback):
    """Seeds TensorFlow with `epoch_seed(seed, epoch)` at the start of every epoch and re-traces
    the train and test steps, so the samplers inside them draw the same numbers in epoch e whether
    the run started at epoch 0 or was resumed at e. (A traced step keeps its random kernels' state
    across calls; only a fresh trace restarts them from the global seed.)"""

    def __init__(self, seed: int):
        super().__init__()
        self.seed = seed

    def on_epoch_begin(self, epoch, logs=None):
        tf_keras.utils.set_random_seed(epoch_seed(self.seed, epoch))
        self.model.make_train_function(force=True)
        self.model.test_function = None  # fit's validation rebuilds it on first use


@contextlib.contextmanager
def op_determinism(enabled: bool):
    """Within the block, TensorFlow ops are deterministic if `enabled`; the previous setting is
    restored afterwards (determinism is process-wide state)."""
    was = tf_config.is_op_determinism_enabled()
    if enabled and not was:
        tf_config.enable_op_determinism()
    try:
        yield
    finally:
        if enabled and not was:
            tf_config.disable_op_determinism()
