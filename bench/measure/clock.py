"""Timers: the one seam between the harness and real time. Tests replace them with fakes.

A timer runs `fn` `calls` times back to back and says how long that took, as a `Block`.
- CpuTimer: `time.perf_counter` around the loop; device time and host time are the same thing.
- CudaTimer: CUDA events recorded on the stream around the loop, with no host synchronization inside
  it (the GPU's own clock: device time), and the host clock around the same loop including the final
  synchronize (what the caller waits: host time) and up to the last launch (the enqueue time).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, kw_only=True)
class Block:
    """Seconds spent by one block of `calls` calls (totals, not per call)."""

    calls: int
    device_s: float
    host_s: float
    enqueue_s: float


class Timer(Protocol):
    device: str

    def now(self) -> float:
        """Seconds on a monotonic host clock (used for warm-up and budgets)."""

    def time_block(self, fn: Callable[[], Any], calls: int) -> Block:
        """Run fn `calls` times and time the whole block."""


class CpuTimer:
    """Host clock around a loop of calls. Resolution of perf_counter is well under a microsecond."""

    device = "cpu"

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock

    def now(self) -> float:
        return self._clock()

    def time_block(self, fn: Callable[[], Any], calls: int) -> Block:
        clock = self._clock
        start = clock()
        for _ in range(calls):
            fn()
        elapsed = clock() - start
        return Block(calls=calls, device_s=elapsed, host_s=elapsed, enqueue_s=elapsed)


class CudaTimer:
    """CUDA events around a loop of calls; host clock around the same loop.

    `event` builds a timing event (default `torch.cuda.Event(enable_timing=True)`) and `synchronize`
    waits for the device (default `torch.cuda.synchronize`): both injectable so that the logic runs
    on the CPU in tests with fakes.
    """

    device = "cuda"

    def __init__(
        self,
        *,
        event: Callable[[], Any] | None = None,
        synchronize: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if event is None or synchronize is None:
            import torch

            event = event or (lambda: torch.cuda.Event(enable_timing=True))
            synchronize = synchronize or torch.cuda.synchronize
        self._event, self._synchronize, self._clock = event, synchronize, clock

    def now(self) -> float:
        return self._clock()

    def time_block(self, fn: Callable[[], Any], calls: int) -> Block:
        start, end = self._event(), self._event()
        self._synchronize()  # nothing earlier may run inside the timed region
        host_start = self._clock()
        start.record()
        for _ in range(calls):
            fn()
        end.record()
        enqueued = self._clock()
        end.synchronize()  # only after the region: the events are read once the GPU has passed `end`
        host_end = self._clock()
        return Block(
            calls=calls,
            device_s=start.elapsed_time(end) / 1e3,  # elapsed_time is in milliseconds
            host_s=host_end - host_start,
            enqueue_s=enqueued - host_start,
        )


def default_timer(device: str) -> Timer:
    """The real timer for a device: CUDA events on "cuda", the host clock elsewhere."""
    return CudaTimer() if device == "cuda" else CpuTimer()


def graph_replay(fn: Callable[[], Any], *, warmup_calls: int = 3, cuda: Any = None) -> Callable[[], Any]:
    """Capture `fn` into a CUDA graph and return a function that replays it (and returns fn's static output).

    `fn` runs `warmup_calls` times on a side stream first (so lazy initialisation, cuBLAS workspaces and
    cuDNN's choice happen outside the capture), then once under capture; it is never called again.
    `cuda` is the torch.cuda namespace (default), injectable so the sequence is tested on the CPU with a fake.
    Time the returned function with CudaTimer like any other: each call is one `graph.replay()`.
    """
    if cuda is None:
        import torch

        cuda = torch.cuda
    side = cuda.Stream()
    side.wait_stream(cuda.current_stream())
    with cuda.stream(side):
        for _ in range(warmup_calls):
            fn()
    cuda.current_stream().wait_stream(side)
    graph = cuda.CUDAGraph()
    with cuda.graph(graph):
        static_out = fn()

    def replay() -> Any:
        graph.replay()
        return static_out

    return replay
