"""Reproducible training: a run resumed at epoch e follows exactly the path of a run never stopped.

  * The data order of epoch e is a stateless shuffle keyed by (seed, e) (`shuffled_batches`).
  * Every random draw of a training or validation step (posterior draw, sampled KL, dynamic
    binarization) is a stateless draw whose seed comes from the model's `tf.random.Generator`
    (`VAE.sampler`, seeded by config.seed and saved in every checkpoint): `random_stream` and
    `stream_seed`. Stateless kernels honour their seed under XLA too (stateful ones do not), so
    the default, compiled step resumes bit for bit, and it is traced once, not once per epoch.
`op_determinism` additionally pins TensorFlow's kernels to deterministic implementations.

>>> g = tf.random.Generator.from_seed(0)
>>> with random_stream(g):
...     a = stream_seed()
>>> stream_seed() is None       # outside a stream: an ordinary (stateful) draw
True
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import numpy as np
import tensorflow as tf
from tensorflow.python.framework import config as tf_config  # the only home of disable_op_determinism

# The generator random draws take their seeds from, per thread: tf.distribute runs each replica's
# step in its own thread.
_STREAM = threading.local()


@contextlib.contextmanager
def random_stream(generator: tf.random.Generator) -> Iterator[None]:
    """Within the block (in this thread), `stream_seed()` draws its seeds from `generator`."""
    previous = getattr(_STREAM, "generator", None)
    _STREAM.generator = generator
    try:
        yield generator
    finally:
        _STREAM.generator = previous


def stream_seed():
    """A shape-[2] int32 seed for one stateless draw (e.g. `dist.sample(seed=stream_seed())`),
    taken from the current `random_stream`'s generator; None outside one (a stateful draw).

    Under tf.distribute the replica id is folded in, so every replica draws different samples.
    """
    generator = getattr(_STREAM, "generator", None)
    if generator is None:
        return None
    seed = generator.uniform_full_int([2], tf.int32)  # TFP's samplers take int32 seeds
    if tf.distribute.has_strategy() and not tf.distribute.in_cross_replica_context():
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        seed = tf.random.experimental.stateless_fold_in(seed, tf.cast(replica, tf.int32))
    return seed


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
        batches = tf.data.Dataset.from_tensor_slices(
            tf.reshape(order[: full * batch_size], [full, batch_size])
        )
        if rest:
            batches = batches.concatenate(tf.data.Dataset.from_tensors(order[full * batch_size :]))
        return batches

    indices = tf.data.Dataset.range(initial_epoch, epochs).flat_map(epoch_batches)
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
