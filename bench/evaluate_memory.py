"""Peak resident memory of `tfp-vae evaluate`, each evaluation a fresh process, on an idle machine
and with both cores busy with another job, against the 1.5 GB target (1536 MB).

    TFP_VAE_DATA_DIR=../shared/fashion-mnist python bench/evaluate_memory.py \\
        experiments/results/fashion_mnist_density_finetune --processes 5     # ~20 min on 2 cores

Each process runs `tfp-vae evaluate RUN --num-samples K --limit N --verbose 0` on a fresh copy of
the run directory (config, data record and weights only: no shards to resume), and its peak is the
kernel's high-water mark of its resident set (`ru_maxrss` of `os.wait4`), Python and TensorFlow
included. Conditions alternate process by process:

  idle   nothing else started by this script
  busy   another job on every core for the whole evaluation: `--burner tensorflow` (default) runs
         one process of eager TensorFlow matmuls per core, each with its own thread pools, as other
         jobs (tests, training) do; `--burner spin` one pure-Python busy loop per core

`--glibc-default` runs the evaluations with glibc's dynamic mmap threshold left on (the toolkit
before `tfp_vae.evaluation.memory`), for comparison. Every process's
test-set iwae is printed too: it must be the same number in all of them. Prints one table, the
load average beside every row, and whether the target is met in every process.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_MB = 1536
RUN_FILES = ("config.json", "data.json", "model.weights.h5")

# A fresh process running the command line; `skip` leaves glibc's thresholds as they are (the
# module's once-flag set as if it had run).
CHILD = (
    "import sys\n"
    "from tfp_vae.evaluation import memory\n"
    "memory._done = sys.argv.pop(1) == 'skip'\n"
    "from tfp_vae.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)
BURNERS = {
    "tensorflow": (
        "import os, sys, time\n"
        "os.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'\n"
        "import tensorflow as tf\n"
        "a = tf.random.normal([400, 400])\n"
        "while True:\n"
        "    b = tf.reduce_sum(tf.nn.relu(tf.matmul(a, a)), axis=0)\n"
    ),
    "spin": "while True:\n    pass\n",
}


def copy_run(run_dir: Path, parent: Path, i: int) -> Path:
    """A fresh directory with the run's config, data record and weights (nothing to resume)."""
    out = parent / f"run-{i}"
    out.mkdir()
    for name in RUN_FILES:
        if (run_dir / name).is_file():
            shutil.copy2(run_dir / name, out / name)
    return out


def evaluate_once(run_dir: Path, num_samples: int, images: int, glibc_default: bool) -> dict:
    """One fresh `tfp-vae evaluate` process: its peak RSS (MB), seconds and iwae."""
    command = [sys.executable, "-c", CHILD, "skip" if glibc_default else "fix", "evaluate", str(run_dir)]
    command += ["--num-samples", str(num_samples), "--limit", str(images), "--verbose", "0"]
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(child.pid, 0)  # the exact high-water mark of this child alone
    child.returncode = os.waitstatus_to_exitcode(status)
    out, err = child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"evaluate failed ({child.returncode}):\n{out}\n{err[-3000:]}")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {
        "peak_mb": usage.ru_maxrss / 1024,  # KiB -> MB as VmHWM / 1024 (the README's unit)
        "seconds": time.perf_counter() - start,
        "iwae": metrics["iwae"],
    }


def start_burners(kind: str) -> list[subprocess.Popen]:
    """One burner process per core."""
    code = BURNERS[kind]
    return [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(os.cpu_count() or 1)
    ]


def stop(burners: list[subprocess.Popen]) -> None:
    for burner in burners:
        burner.kill()
        burner.wait()


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="a trained run directory")
    parser.add_argument("--processes", type=int, default=5, help="fresh processes per condition")
    parser.add_argument("--images", type=int, default=1000, help="test images (--limit)")
    parser.add_argument("--num-samples", type=int, default=5000, help="K (--num-samples)")
    parser.add_argument("--conditions", nargs="+", default=["idle", "busy"], choices=["idle", "busy"])
    parser.add_argument("--burner", default="tensorflow", choices=sorted(BURNERS))
    parser.add_argument("--glibc-default", action="store_true", help="without the allocator fix")
    args = parser.parse_args(argv)
    rows = []
    print(
        f"tfp-vae evaluate {args.run_dir} --num-samples {args.num_samples} --limit {args.images}; "
        f"allocator: {'glibc default' if args.glibc_default else 'tfp_vae.evaluation.memory'}; "
        f"burner: {args.burner}"
    )
    print(
        f"{'#':>3} {'condition':<10}{'peak MB':>9}{'seconds':>9}{'iwae':>14}  load average at start  target"
    )
    with tempfile.TemporaryDirectory() as parent:
        for _ in range(args.processes):
            for condition in args.conditions:  # alternating, so both see the same outside load
                run = copy_run(args.run_dir, Path(parent), len(rows))
                burners = start_burners(args.burner) if condition == "busy" else []
                try:
                    time.sleep(2 if burners else 0)  # the burners up before the evaluation starts
                    load = os.getloadavg()
                    row = evaluate_once(run, args.num_samples, args.images, args.glibc_default)
                finally:
                    stop(burners)
                row.update(condition=condition, load=load)
                rows.append(row)
                met = "met" if row["peak_mb"] <= TARGET_MB else "NOT MET"
                print(
                    f"{len(rows):>3} {condition:<10}{row['peak_mb']:>9.0f}{row['seconds']:>9.1f}"
                    f"{row['iwae']:>14.6f}  {' '.join(f'{v:.2f}' for v in load):<22} {met}",
                    flush=True,
                )
    worst = max(row["peak_mb"] for row in rows)
    same = len({row["iwae"] for row in rows}) == 1
    print(
        f"\npeak RSS over {len(rows)} processes: {min(r['peak_mb'] for r in rows):.0f} to {worst:.0f} MB; "
        f"target <= {TARGET_MB} MB in every process: {'met' if worst <= TARGET_MB else 'not met'}; "
        f"iwae {'identical in every process' if same else 'DIFFERS between processes'}; "
        f"load average at the end {' '.join(f'{v:.2f}' for v in os.getloadavg())}"
    )
    return rows


if __name__ == "__main__":
    main()
