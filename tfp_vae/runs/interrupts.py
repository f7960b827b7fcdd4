"""Stopping on a signal without losing work: SIGTERM and SIGINT become a request to stop.

Clusters stop a job with SIGTERM some seconds before they kill it; Ctrl-C sends SIGINT. Inside
`stop_requests()` the first of either only records itself (`StopRequests.received`): the work
(`tfp_vae.train`, `tfp_vae.evaluate_run`) looks at it between blocks of steps or shards, commits
what it has done, writes its status as paused and raises `tfp_vae.errors.RunPaused` (a
`KeyboardInterrupt`). A second signal stops at once, through the handler that was there before
(Python's own for SIGINT raises `KeyboardInterrupt`, `tfp-vae`'s ends the process with exit 130;
the default for SIGTERM ends the process):
the last committed checkpoint is still whole, as after `kill -9`. The previous handlers are back
when the block ends.

`tfp-vae` exits with 75 (`tfp_vae.cli.REQUEUE_EXIT`, EX_TEMPFAIL of sysexits.h, "temporary
failure: try again later") after such a pause: Slurm requeues a job that exits with it when slurm.conf sets
`RequeueExit=75`, and a Kubernetes Job's podFailurePolicy or a wrapper script can match it.

Signal handlers belong to the main thread: elsewhere (a training thread) the block installs
nothing and signals keep their usual effect.

>>> with stop_requests() as stop:
...     os.kill(os.getpid(), signal.SIGTERM)    # recorded, not fatal
...     stop.name
'SIGTERM'
>>> signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
True
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequests:
    """The first stop signal received inside `stop_requests()` (None until one comes)."""

    def __init__(self, what: str = "the current block of steps") -> None:
        self.what = what
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def name(self) -> str:
        return "" if self.received is None else signal.Signals(self.received).name

    def _handle(self, number: int, frame) -> None:
        if self.received is None:
            self.received = number
            print(
                f"\n{signal.Signals(number).name} received: finishing {self.what}, then committing it "
                "(send it again, or press Ctrl-C again, to stop at once)",
                file=sys.stderr,
                flush=True,
            )
            return
        previous = self._previous.get(number, signal.SIG_DFL)
        self.restore()
        if callable(previous):  # Python's SIGINT handler: raises KeyboardInterrupt here
            previous(number, frame)
        elif previous == signal.SIG_DFL:  # end the process the way the signal ends it
            os.kill(os.getpid(), number)

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread may set handlers
        for number in STOP_SIGNALS:
            self._previous[number] = signal.getsignal(number)
            signal.signal(number, self._handle)

    def restore(self) -> None:
        for number, previous in self._previous.items():
            signal.signal(number, previous if previous is not None else signal.SIG_DFL)  # type: ignore[arg-type]
        self._previous = {}


@contextlib.contextmanager
def stop_requests(what: str = "the current block of steps", enabled: bool = True) -> Iterator[StopRequests]:
    """Within the block, SIGTERM / SIGINT are recorded in the yielded `StopRequests` instead of
    stopping the process (see the module's docstring); enabled=False records nothing."""
    requests = StopRequests(what)
    if enabled:
        requests.install()
    try:
        yield requests
    finally:
        requests.restore()
