"""Random streams: every random draw of a step is stateless, seeded from the model's generator.

  * Every random draw of a training or validation step (posterior draw, sampled KL, dynamic
    binarization) is a stateless draw whose seed comes from the model's `tf.random.Generator`
    (`VAE.sampler`, seeded by config.seed and saved in every checkpoint): `random_stream` and
    `stream_seed`. Stateless kernels honour their seed under XLA too (stateful ones do not), so
    the default, compiled step resumes bit for bit, and it is traced once, not once per epoch.
(The data order and deterministic kernels are `tfp_vae.training.reproducible`'s.)

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

import tensorflow as tf

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
