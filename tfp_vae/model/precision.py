"""Numeric precision of the bodies (`VAEConfig.precision`): 'float32' or 'mixed_bfloat16'.

Under 'mixed_bfloat16' the encoder's and decoder's body layers compute in bfloat16 with float32
weights (tf_keras' mixed precision policy); the posterior's and likelihood's parameters are cast
back to float32 before the distribution layers, so log-likelihoods, KL, the loss, the gradients
and the optimizer's state are float32. bfloat16 keeps float32's exponent range: no loss scaling.

>>> from tfp_vae.config import VAEConfig
>>> with body_precision(VAEConfig(precision="mixed_bfloat16")):
...     layer = tf_keras.layers.Dense(3)
>>> layer.compute_dtype, layer.variable_dtype, tf_keras.mixed_precision.global_policy().name
('bfloat16', 'float32', 'float32')
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import tf_keras

from tfp_vae.config import VAEConfig


@contextlib.contextmanager
def body_precision(cfg: VAEConfig) -> Iterator[None]:
    """Layers made inside take `cfg.precision` as their dtype policy; the global policy is
    restored on exit (it is process-wide state, so it is set only while the body is built)."""
    if cfg.precision == "float32":
        yield
        return
    before = tf_keras.mixed_precision.global_policy()
    tf_keras.mixed_precision.set_global_policy(cfg.precision)
    try:
        yield
    finally:
        tf_keras.mixed_precision.set_global_policy(before)


def to_float32(cfg: VAEConfig) -> list:
    """[] for float32 models, else one weightless layer casting the body's output to float32
    (the distribution layer after it then computes in float32)."""
    if cfg.precision == "float32":
        return []
    return [tf_keras.layers.Activation("linear", dtype="float32", name="to_float32")]
