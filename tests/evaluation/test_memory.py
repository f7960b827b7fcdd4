"""`return_large_blocks`: freed large blocks leave the process whatever thread allocated them.

The scenario of `tfp_vae.evaluation.memory`, without TensorFlow: once glibc has freed one mmapped
32 MB block its threshold rises, and 12 threads each allocating and freeing 32 MB blocks at the
same time leave them in their arenas. Each case runs in a fresh interpreter, since the setting is
process-wide and permanent.
"""

import platform
import subprocess
import sys
from pathlib import Path

import pytest

MODULE = Path(__file__).resolve().parents[2] / "tfp_vae" / "evaluation" / "memory.py"
SCENARIO = """
import importlib.util, sys, threading
import numpy as np, psutil
spec = importlib.util.spec_from_file_location("memory", sys.argv[1])  # no TensorFlow import
memory = importlib.util.module_from_spec(spec)
spec.loader.exec_module(memory)
if sys.argv[2] == "fix":
    assert memory.return_large_blocks() is True
base = psutil.Process().memory_info().rss
block = np.ones(32_000_000 // 8)  # one mmapped block freed: the dynamic threshold rises to 32 MB
del block
barrier = threading.Barrier(12)
def work():
    for _ in range(3):
        barrier.wait()
        x = np.ones(32_000_000 // 8)
        barrier.wait()
        del x
threads = [threading.Thread(target=work) for _ in range(12)]
[t.start() for t in threads]
[t.join() for t in threads]
print((psutil.Process().memory_info().rss - base) / 2**20)
"""


def _retained_mb(mode: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", SCENARIO, str(MODULE), mode], check=True, capture_output=True, text=True
    )
    return float(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the thresholds are glibc's")
def test_freed_large_blocks_are_returned_to_the_system():
    # 12 threads x 32 MB were live at once: glibc's default keeps most of them after they are freed.
    assert _retained_mb("default") > 150
    assert _retained_mb("fix") < 40
