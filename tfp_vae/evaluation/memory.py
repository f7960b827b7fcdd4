"""Evaluation memory that does not depend on timing: large glibc blocks go back to the system when freed.

Where `evaluate`'s memory goes (Fashion-MNIST MLPs, K = 5000, 1,000 images): about 750 MB is
TensorFlow itself after import, the data loading peaks about 400 MB above that for a moment, and
the chunks (tensors of up to 32 MB, 2^23 pixel values) add 100 to 200 MB. With oneDNN on (the
default on x86), TensorFlow's tensors of 256 KB or more come from oneDNN's BFC pool, which keeps
and reuses its memory (73 MB at most in use here); smaller blocks, numpy's arrays and TensorFlow's
tensors when oneDNN's pool is off (TF_ONEDNN_USE_SYSTEM_ALLOCATOR=1 or TF_ENABLE_ONEDNN_OPTS=0)
come from the C library's `malloc`.

glibc serves a block of at least its mmap threshold with its own `mmap`, which `free` returns to
the system at once; smaller blocks are carved from an arena, and their free space stays resident.
The threshold is dynamic: freeing an mmapped block of up to 32 MiB raises it to that block's size
(and the trim threshold to twice it). glibc gives threads up to 8 arenas per core, a thread
allocates from the arena it last used (another one when that is locked), so how many arenas keep
how many freed large blocks depends on how the threads were scheduled: 12 threads allocating and
freeing 32 MB blocks leave 430 MB resident after all are freed (tests/evaluation/test_memory.py).

`return_large_blocks()` fixes both thresholds (a fixed value turns glibc's adjustment off):
blocks of `LARGE_BLOCK` bytes or more are mapped and unmapped whatever thread frees them, and an
arena gives back free space above `TRIM_THRESHOLD`. It changes no number, only where the
allocator puts a block. It is process-wide and stays on (glibc cannot be asked to resume its
adjustment), and does nothing where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

# mallopt parameters, from glibc's malloc.h.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# Blocks of 1 MiB or more are mapped: every per-chunk tensor of `evaluate` (the decoder's
# activations and outputs, 10 to 32 MB each) and none of the many small ones.
LARGE_BLOCK = 1 << 20
# An arena returns free space at its top beyond 2 MiB.
TRIM_THRESHOLD = 2 << 20

_done = False


def return_large_blocks() -> bool:
    """Sets glibc's mmap threshold to `LARGE_BLOCK` and its trim threshold to `TRIM_THRESHOLD`
    for this process, once; True if they are set (on glibc), False elsewhere (nothing done)."""
    global _done
    if not _done:
        _done = _set_thresholds()
    return _done


def _set_thresholds() -> bool:
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt returns 1 on success.
    return mallopt(_M_MMAP_THRESHOLD, LARGE_BLOCK) == 1 and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
