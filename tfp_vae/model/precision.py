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
import sys
from collections.abc import Iterator
from pathlib import Path

import tensorflow as tf
import tf_keras

from tfp_vae.config import VAEConfig
from tfp_vae.errors import SlowPrecisionWarning, warn_once

# x86 flags (Linux's /proc/cpuinfo) of CPUs that compute bfloat16 in hardware; without them oneDNN
# emulates it. Measured 2026-12-03 on an AMD EPYC Zen 3 (AVX2 only): the β-VAE study's conv model
# took 980 ms a step in mixed_bfloat16 against 135 ms in float32.
BFLOAT16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def native_bfloat16(cpuinfo: str | None = None) -> bool | None:
    """Whether the CPU computes bfloat16 in hardware, from the flags in `cpuinfo` (default: Linux's
    /proc/cpuinfo); None where that cannot be told (another OS, or no x86 flags line).

    >>> native_bfloat16("flags : fpu sse2 avx2 avx512f avx512_bf16"), native_bfloat16("flags : avx2")
    (True, False)
    """
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        if not sys.platform.startswith("linux") or not path.exists():
            return None
        cpuinfo = path.read_text()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return bool(BFLOAT16_FLAGS & set(value.split()))
    return None


def warn_if_emulated(cfg: VAEConfig) -> None:
    """Warns (`SlowPrecisionWarning`) when `cfg` trains in bfloat16 on CPUs that would emulate it."""
    if cfg.precision == "float32" or tf.config.list_physical_devices("GPU"):
        return
    if native_bfloat16() is False:
        warn_once(
            f"VAEConfig.precision={cfg.precision!r}: this CPU has no bfloat16 instructions "
            f"({' or '.join(sorted(BFLOAT16_FLAGS))}), so TensorFlow emulates bfloat16 and training "
            "runs several times slower than in float32 (7x on a conv model here); use "
            "precision='float32' on this machine.",
            SlowPrecisionWarning,
        )


@contextlib.contextmanager
def body_precision(cfg: VAEConfig) -> Iterator[None]:
    """Layers made inside take `cfg.precision` as their dtype policy; the global policy is
    restored on exit (it is process-wide state, so it is set only while the body is built)."""
    if cfg.precision == "float32":
        yield
        return
    warn_if_emulated(cfg)
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
