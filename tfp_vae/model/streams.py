"""Random streams: every random draw of a step is stateless, seeded from the model's generator.

  * Every random draw of a training or validation step (posterior draw, sampled KL, dynamic
    binarization) is a stateless draw whose seed comes from the model's `tf.random.Generator`
    (`VAE.sampler`, seeded by config.seed and saved in every checkpoint): `random_stream` and
    `stream_seed`. Stateless kernels honour their seed under XLA too (stateful ones do not), so
    the default, compiled step resumes bit for bit, and it is traced once, not once per epoch.
  * `fit` draws a block's training images (dynamic binarization, dequantization) at once, from
    one seed (`VAE.update_block`); `BlockDraw` keeps that draw's seed and rows, so a run whose
    step budget ended inside a block goes on with the rest of the same draw (`block_end`).
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


def block_end(step: int, steps_per_epoch: int, block: int, program: int) -> int:
    """The global step (exclusive) at which an uninterrupted `fit` ends the `update_block` program
    it starts at global `step`: `fit`'s blocks of `block` steps start at each epoch's start and
    every `block` steps after it (the epoch's last block cut at the epoch's end), and run in
    programs of at most `program` steps.

    >>> block_end(0, 100, 64, 64), block_end(1, 100, 64, 64), block_end(64, 100, 64, 64)
    (64, 64, 100)
    >>> block_end(70, 100, 64, 32), block_end(130, 100, 64, 64)  # 130: step 30 of epoch 1
    (96, 164)
    """
    epoch_start = step - step % steps_per_epoch
    at = step - epoch_start
    block_start = at - at % block
    program_start = block_start + (at - block_start) // program * program
    return epoch_start + min(program_start + program, block_start + block, steps_per_epoch)


class BlockDraw(tf.Module):
    """The training-image draw of the running block of steps: its seed, the global step of its row
    0 (`start`), the next step to run from it (`next`) and the step an uninterrupted run stops
    using it at (`end`, `block_end`). Saved in every checkpoint: a run whose budget ended at
    `next` < `end` is continued from row next - start of the same draw when it is grown."""

    def __init__(self) -> None:
        super().__init__(name="block_draw")
        self.seed = tf.Variable([0, 0], dtype=tf.int32, trainable=False, name="seed")
        self.start = tf.Variable(0, dtype=tf.int64, trainable=False, name="start")
        self.next = tf.Variable(-1, dtype=tf.int64, trainable=False, name="next")
        self.end = tf.Variable(-1, dtype=tf.int64, trainable=False, name="end")

    def plan(self, step: int, available: int, end: int) -> tuple[int, int | None]:
        """(steps, row) of the program that starts at global `step` with `available` batches at
        hand: the rest of an unfinished draw from its row `row`, or, with row None, a fresh draw
        that an uninterrupted run would use until `end`. Records what the program will use."""
        if int(self.next.numpy()) == step < int(self.end.numpy()):
            steps, row = min(available, int(self.end.numpy()) - step), step - int(self.start.numpy())
        else:
            steps, row = min(available, end - step), None
            self.start.assign(step)
            self.end.assign(end)
        self.next.assign(step + steps)
        return steps, row
