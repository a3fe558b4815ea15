"""The handle on one worker process: start it, measure a row in it, close or kill it, and say how it died.

A worker that dies (a signal, an exit) takes only its row down, as status `crashed` with the signal or exit status
and the innermost Python frame faulthandler printed; one that does not answer within the row's limit and GRACE_S (a
native hang that the in-process deadline cannot stop) is killed, status `timeout`. A worker that cannot start is a
BenchError when its interpreter or its suite is at fault, WorkerLost when a signal ended it while starting (the
system or another process killed it: no mistake in the input).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sysconfig
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

from bench.errors import BenchError, Problem, WorkerLost
from bench.measure.record import Record
from bench.measure.sampling import Policy
from bench.measure.workers.protocol import ERROR, EXIT, INIT, ROW, Job, Ready, Row, Side
from bench.schema import WORKER_LOST

ENGINE = Path(__file__).resolve().parents[3]  # the folder holding this `bench` package: the workers' engine
START_LIMIT_S = 300.0  # a worker that is not ready by then (interpreter start, torch import, planning) is killed
# On top of a row's own limit (Policy.row_limit_s), the in-process deadline's: time for a worker past it to send
# its timeout record before the parent kills it. A hang that ignores the deadline costs the row limit and this.
GRACE_S = 5.0
LAUNCHED_SLOWDOWN = 50  # a worker under a launcher (valgrind) runs this many times slower at most
LOST = WORKER_LOST  # the statuses of a row whose worker died or hung: it is killed, not closed


class WorkerGone(Exception):
    """The worker died or stopped answering; status ("crashed" or "timeout") and reason say how, signal which
    signum the signal that ended it (None: an exit status, or a hang)."""

    def __init__(self, status: str, reason: str, signum: int | None = None) -> None:
        super().__init__(reason)
        self.status, self.reason, self.signum = status, reason, signum


def _signal_name(number: int) -> str:
    try:
        return f"{signal.Signals(number).name} (signal {number})"
    except ValueError:
        return f"signal {number}"


def _last_exception(log: str) -> str:
    """The last line of a Python traceback in the log ('OSError: ...'), cut to 200 characters; '' when none."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    if not any(line.startswith("Traceback (most recent call last)") for line in lines):
        return ""
    return lines[-1][:200]


def _innermost_frame(log: str) -> str:
    """The innermost Python frame faulthandler printed for a fatal error ('File "x.py", line 3 in forward') that is
    not in Python's standard library (ctypes.string_at is not where the user's bug is), else the innermost."""
    lines = log.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("Fatal Python error")), None)
    if start is None:
        return ""
    frames = [line.strip() for line in lines[start:] if line.strip().startswith("File ")]
    stdlib = sysconfig.get_paths()["stdlib"]
    own = [f for f in frames if not f.startswith(f'File "{stdlib}')]
    return (own or frames or [""])[0]


def worker_env(extra: tuple[tuple[str, str], ...] = ()) -> dict:
    """The worker's environment: the caller's, the side's variables, faulthandler on, no PYTHONSTARTUP."""
    env = dict(os.environ) | dict(extra)
    env["PYTHONFAULTHANDLER"] = "1"  # a segfault prints the Python stack into the worker's log
    env.pop("PYTHONSTARTUP", None)
    return env


class Worker:
    """One worker process (`python -c ... bench.measure.workers.main`), started and made ready; `measure` one row at
    a time; `close` or `kill` it. Its stdout and stderr (a layer's prints, faulthandler's report) go to a temporary
    file, read back only to explain a crash. start_s: seconds from spawn to ready."""

    def __init__(self, side: Side, job: Job, number: int, *, start_limit_s: float = START_LIMIT_S,
                 wait: bool = True) -> None:
        self.side, self.job, self.number = side, job, number
        self.measured = 0  # rows measured so far
        self.log = tempfile.TemporaryFile()
        parent, child = socket.socketpair()
        code = (f"import sys; sys.path.insert(0, {str(ENGINE)!r}); "
                f"from bench.measure.workers.main import main; main({child.fileno()})")
        started = time.perf_counter()
        try:
            self.proc = subprocess.Popen([*side.launcher, side.python, "-c", code], pass_fds=[child.fileno()],
                                         stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
                                         cwd=side.root, env=worker_env(side.environ))
        except OSError as exc:
            parent.close()
            raise BenchError(Problem(where="worker", field="python" if not side.launcher else "launcher",
                                     expected="an interpreter that can be started",
                                     found=f"{[*side.launcher, side.python][0]}: {exc.strerror or exc}")) from None
        finally:
            child.close()
        self.conn = Connection(parent.detach())
        self._started, self._limit_s = started, start_limit_s
        self._send_init()  # the worker imports torch and plans its suite from here on
        if wait:
            self.wait_ready()

    @classmethod
    def launch(cls, side: Side, job: Job, number: int) -> Worker:
        """A worker started but not waited for: wait_ready() makes it ready. Two launched workers import torch at
        once, each on a core, from the thread that launched them (the kernel kills a worker when the thread that
        started it ends: main's PR_SET_PDEATHSIG)."""
        return cls(side, job, number, wait=False)

    def wait_ready(self) -> None:
        """Wait until the worker has loaded and planned its side's suite (ready, start_s)."""
        self.ready: Ready = self._start(self._limit_s)
        self.start_s = time.perf_counter() - self._started

    def _send_init(self) -> None:
        try:
            self.conn.send((INIT, self.side, self.job))
        except OSError:  # the worker is gone already (a broken interpreter): _start's _receive says how it ended
            pass

    def _start(self, limit_s: float) -> Ready:
        side = self.side
        try:
            message = self._receive(limit_s, doing="starting")
        except WorkerGone as gone:
            self.kill()
            problem = Problem(where=f"{side.name or 'run'} worker", field="start",
                              expected="a worker process that imports bench and plans the suite", found=gone.reason)
            raise (WorkerLost if gone.signum is not None else BenchError)(problem) from None
        if message[0] == ERROR:
            self.close()
            raise BenchError(Problem(where=f"{side.name} side" if side.name else "worker", field="suite",
                                     expected="a suite the worker can load", found=message[1]))
        return message[1]

    def _tail(self) -> str:
        try:
            self.log.seek(0, os.SEEK_END)
            size = self.log.tell()
            self.log.seek(max(0, size - 16384))
            return self.log.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""

    def _receive(self, limit_s: float, *, doing: str):
        try:
            if not self.conn.poll(limit_s):
                self.kill()
                raise WorkerGone("timeout", f"the worker process gave no answer within {limit_s:.3g} s while "
                                 f"{doing} and was killed (a hang the in-process deadline could not stop, such as a "
                                 "native loop)")
            return self.conn.recv()
        except (EOFError, OSError, ConnectionError):
            pass
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.proc.returncode
        tail = self._tail()
        frame = _innermost_frame(tail)
        killed = code is not None and code < 0
        how = f"died of {_signal_name(-code)}" if killed else f"exited with status {code}"
        said = "" if frame else _last_exception(tail)
        raise WorkerGone("crashed", f"the worker process {how} while {doing}" + (f", in {frame}" if frame else "")
                         + (f" ({said})" if said else ""), signum=-code if killed else None)

    def limit_s(self, row: Row, policy: Policy | None = None) -> float:
        """How long the parent waits for a row's record: the row's limit (longer under a launcher), then GRACE_S."""
        slowdown = LAUNCHED_SLOWDOWN if self.side.launcher else 1
        return (policy or self.job.policy_for(row.device)).row_limit_s * slowdown + GRACE_S

    def measure(self, row: Row, *, process: int, policy: Policy | None = None) -> Record:
        """Measure one row; a record whatever happens (crashed or timeout when the worker is gone: then it is dead).
        `process` is the number the record carries (unique within the run); policy: instead of the job's (a block
        of a row measured in several)."""
        self.measured += 1
        try:
            self.conn.send((ROW, row, process, policy))
            message = self._receive(self.limit_s(row, policy), doing="measuring the row")
        except WorkerGone as gone:
            return lost_record(self.ready, row, process, gone.status, gone.reason)
        except (OSError, ConnectionError) as exc:  # the worker died between rows
            self.kill()
            return lost_record(self.ready, row, process, "crashed", f"the worker process could not be reached ({exc})")
        return message[1]

    def close(self) -> None:
        """Ask the worker to exit; kill it if it has not within a few seconds."""
        try:
            self.conn.send((EXIT,))
            self.proc.wait(timeout=10)
        except (OSError, ConnectionError, subprocess.TimeoutExpired):
            self.kill()
        finally:
            self._release()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self._release()

    def _release(self) -> None:
        for thing in (self.conn, self.log):
            try:
                thing.close()
            except OSError:
                pass


def lost_record(ready: Ready, row: Row, process: int, status: str, reason: str) -> Record:
    """The record of a row whose worker died or hung (or that is not measured again after that: see schedule)."""
    plan = next(p for p in ready.plans if p.workload.name == row.workload)
    return Record(plan=plan, device=row.device, device_name="", threads=0, status=status, reason=reason,
                  variant=row.variant, process=process)
