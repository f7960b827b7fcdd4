"""Reproducible training: a run resumed at epoch e follows exactly the path of a run never stopped.

  * The data order of epoch e is a stateless shuffle keyed by (seed, e) (`shuffled_batches`).
  * Every random draw of a step is seeded from the model's checkpointed generator
    (`tfp_vae.model.streams`).
`op_determinism` additionally pins TensorFlow's kernels to deterministic implementations.

>>> full = [b.numpy().tolist() for b in shuffled_batches(np.arange(5), 2, 0, initial_epoch=0, epochs=2)]
>>> resumed = [b.numpy().tolist() for b in shuffled_batches(np.arange(5), 2, 0, initial_epoch=1, epochs=2)]
>>> len(full), resumed == full[3:]      # 3 batches an epoch; epoch 1 is the same when resumed
(6, True)
>>> mid = [b.numpy().tolist() for b in shuffled_batches(np.arange(5), 2, 0, 0, 2, first_step=2)]
>>> mid == full[2:]                    # and so is a resume after batch 2 of epoch 0
True
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import tensorflow as tf
from tensorflow.python.framework import config as tf_config  # the only home of disable_op_determinism

from tfp_vae.data.streamed import ScaledImages


def shuffled_batches(
    x, batch_size: int, seed: int, initial_epoch: int, epochs: int, first_step: int = 0
) -> tf.data.Dataset:
    """Batches of `x` [N, ...] for epochs initial_epoch .. epochs-1, each epoch one reshuffled pass,
    starting with batch `first_step` of epoch initial_epoch (a resume mid-epoch).

    Epoch e visits the images in a permutation that depends only on (seed, e): ceil(N / batch_size)
    batches, the last one short if batch_size does not divide N. Built like tf_keras's own NumPy
    adapter (index batches, then a gather from one copy of `x`), so tf.distribute splits every batch
    across replicas and workers the same way it splits `fit(x)`. `x` may be `ScaledImages` (uint8
    scaled on access, `tfp_vae.data.streamed`): its batches are gathered and scaled by NumPy.
    """
    n = int(np.shape(x)[0])
    full, rest = divmod(n, batch_size)

    def epoch_batches(epoch):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(n, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), epoch])
        )
        batches = tf.data.Dataset.from_tensor_slices(
            tf.reshape(order[: full * batch_size], [full, batch_size])
        )
        if rest:
            batches = batches.concatenate(tf.data.Dataset.from_tensors(order[full * batch_size :]))
        return batches

    indices = tf.data.Dataset.range(initial_epoch, epochs).flat_map(epoch_batches).skip(first_step)
    if isinstance(x, ScaledImages):
        # Gathered and scaled on the NumPy side, batch by batch: captured as a tensor, the 2.8 GB
        # of full dSprites' uint8 images became 12 GB resident (two more copies).
        data = indices.map(
            lambda i: tf.ensure_shape(
                tf.numpy_function(x.__getitem__, [i], tf.float32, stateful=False), [None, *x.shape[1:]]
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    else:
        images = tf.data.Dataset.from_tensors(x).repeat()
        data = tf.data.Dataset.zip((indices, images)).map(
            lambda i, all_images: tf.gather(all_images, i),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return data.with_options(options).prefetch(tf.data.AUTOTUNE)


def steps_per_epoch(n: int, batch_size: int) -> int:
    return -(-n // batch_size)


@contextlib.contextmanager
def op_determinism(enabled: bool) -> Iterator[None]:
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
