"""Run-directory locks: one process at a time writes a run directory.

`run_lock(run_dir, what)` holds an exclusive `fcntl.flock` on RUN_DIR/.lock for the duration of
the work, and writes its holder into that file as JSON (pid, host, command, what, since). The
operating system drops the flock when the process ends however it ends, so:
  * another process asking for the lock meanwhile fails at once with a `RunDirError` naming the
    holder;
  * a record whose flock nobody holds was left by a killed process: the lock is taken over, with
    a message naming it.
The lock is re-entrant within a process (training inside a sweep point inside a sweep). Over a
network file system the flock is as good as the file system's locking (NFSv4 has it).

>>> import json, tempfile
>>> from pathlib import Path
>>> run_dir = Path(tempfile.mkdtemp()) / "a"
>>> with run_lock(run_dir, "training"):     # another process asking now gets a RunDirBusyError
...     print(json.loads((run_dir / LOCK_FILE).read_text())["what"])
training
>>> run_dir.exists()                        # the block wrote nothing: no trace is left
False
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import functools
import inspect
import json
import os
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ParamSpec, TypeVar

from tfp_vae.errors import RunDirError
from tfp_vae.runs.files import writing

LOCK_FILE = ".lock"


class RunDirBusyError(RunDirError):
    """Another process holds the run directory's lock."""


_held: dict[Path, int] = {}  # lock files this process holds -> nesting depth


def holder_text(record: dict) -> str:
    """'pid 123 on host h (tfp-vae train --out runs/a), training since 2026-11-23 05:30:00 UTC'."""
    return (
        f"pid {record.get('pid')} on host {record.get('host')} ({record.get('command')}), "
        f"{record.get('what')} since {record.get('since')}"
    )


def _read_record(fd: int) -> dict | None:
    text = os.pread(fd, 1 << 16, 0).decode(errors="replace").strip()
    if not text:
        return None
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        return {"pid": "?", "host": "?", "command": "?", "what": "an unreadable lock", "since": "?"}
    return record if isinstance(record, dict) else None


@contextlib.contextmanager
def run_lock(
    run_dir: str | os.PathLike, what: str, message: Callable[[str], object] | None = None
) -> Iterator[None]:
    """Holds RUN_DIR's lock within the block (creating RUN_DIR if missing, and removing it again
    if the block wrote nothing into it).

    what: the work, for other processes' error messages ("training", "evaluating", ...).
    message: called with a line when a lock left by a killed process is taken over (default:
      print to stderr).
    Raises `RunDirBusyError` (a `RunDirError`) at once, naming the holder, if another process holds the lock.
    """
    path = (Path(run_dir) / LOCK_FILE).resolve()
    if path in _held:
        _held[path] += 1
        try:
            yield
        finally:
            _held[path] -= 1
        return
    created = not path.parent.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_record(fd) or {}
            raise RunDirBusyError(
                f"{run_dir} is in use by another process: {holder_text(holder)}. Wait for it to "
                f"finish (or stop it: kill {holder.get('pid')}), or use another directory."
            ) from None
        left = _read_record(fd)
        if left is not None:  # a holder that ended without clearing its record: it was killed
            (message or (lambda line: print(line, file=sys.stderr)))(
                f"{run_dir}: taking over the lock left by {holder_text(left)}; that process is "
                "gone (killed?), so its work is resumed from what it committed."
            )
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": " ".join(sys.argv),
            "what": what,
            "since": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        }
        with writing(path, "the run directory's lock record"):
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(record).encode(), 0)
            os.fsync(fd)
        _held[path] = 1
        try:
            yield
        finally:
            del _held[path]
            os.ftruncate(fd, 0)  # an empty file: released cleanly
            fcntl.flock(fd, fcntl.LOCK_UN)
            if created and [p.name for p in path.parent.iterdir()] == [LOCK_FILE]:
                # Work that failed before writing anything (bad input) leaves no directory behind.
                path.unlink()
                path.parent.rmdir()
    finally:
        os.close(fd)


_P = ParamSpec("_P")
_R = TypeVar("_R")


def holds_run_lock(what: str, argument: str) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Decorator: the function runs holding `run_lock(<its argument named `argument`>, what)`;
    without one (None) it runs unlocked. A multi-worker run (TF_CONFIG set) takes no lock: its
    workers share RUN_DIR by design and coordinate through tf.distribute."""

    def decorate(function: Callable[_P, _R]) -> Callable[_P, _R]:
        signature = inspect.signature(function)

        @functools.wraps(function)
        def locked(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            run_dir = signature.bind(*args, **kwargs).arguments.get(argument)
            if run_dir is None or os.environ.get("TF_CONFIG"):
                return function(*args, **kwargs)
            with run_lock(run_dir, what):
                return function(*args, **kwargs)

        return locked

    return decorate
