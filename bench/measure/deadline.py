"""A hard wall-clock limit around one row, so that a call that hangs cannot hold the suite.

Uses SIGALRM (`signal.setitimer`), which Python delivers between bytecodes: a layer stuck in Python, or a
stack of layers, is stopped at once; a single native call (one huge kernel) is stopped when it returns.
Only the main thread can receive signals: elsewhere (and on platforms without SIGALRM) the limit is not
enforced and the first-call estimate in bench.measure.sampling is the only guard.
"""
from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class DeadlineExceeded(BaseException):
    """Raised inside the guarded block when its time is up. A BaseException, so that a workload's own
    `except Exception` cannot swallow it."""

    def __init__(self, limit_s: float) -> None:
        super().__init__(f"still running after {limit_s:.3g} s: stopped")
        self.limit_s = limit_s


@contextmanager
def deadline(limit_s: float) -> Iterator[None]:
    """Raise DeadlineExceeded in this block once `limit_s` seconds have passed (0 or less: no limit)."""
    usable = (limit_s > 0 and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    def expire(signum, frame):
        raise DeadlineExceeded(limit_s)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, limit_s)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
