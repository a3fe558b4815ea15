"""The CUDA timing path on the CPU: CudaTimer with fake events, a fake synchronize and a fake host clock.

The fake GPU keeps two clocks in seconds: `host` (what perf_counter would say) and `gpu` (when the stream
will have finished the work queued so far). A launch costs the host `launch_s` and queues `kernel_s` of GPU
work; an event completes when the stream reaches it; reading an unfinished event raises, as CUDA does.
Durations are binary fractions of U = 2**-10 s so that the arithmetic is exact.
"""
from __future__ import annotations

import itertools

import pytest

from bench.measure.clock import CudaTimer
from bench.measure.sampling import Policy, measure

U = 2.0 ** -10


class FakeGpu:
    def __init__(self, *, kernel_s: float, launch_s: float) -> None:
        self.kernel_s, self.launch_s = kernel_s, launch_s
        self.host = self.gpu = 0.0
        self.log: list[str] = []
        self.events: list[FakeEvent] = []
        self._names = itertools.cycle(["start", "end"])  # CudaTimer makes its events in this order

    # -- what CudaTimer is given
    def event(self) -> FakeEvent:
        ev = FakeEvent(self, next(self._names))
        self.events.append(ev)
        return ev

    def synchronize(self) -> None:
        self.log.append("synchronize")
        self.host = max(self.host, self.gpu)
        for ev in self.events:
            ev.done = ev.done or ev.t is not None

    def clock(self) -> float:
        self.log.append("clock")
        return self.host

    # -- the workload
    def launch(self) -> None:
        self.log.append("fn")
        self.gpu = max(self.gpu, self.host) + self.kernel_s
        self.host += self.launch_s


class FakeEvent:
    def __init__(self, gpu: FakeGpu, name: str) -> None:
        self.gpu, self.name = gpu, name
        self.t: float | None = None
        self.done = False

    def record(self) -> None:
        self.gpu.log.append(f"{self.name}.record")
        self.t = max(self.gpu.gpu, self.gpu.host)

    def synchronize(self) -> None:
        self.gpu.log.append(f"{self.name}.synchronize")
        assert self.t is not None, "synchronize on an event never recorded"
        self.gpu.host = max(self.gpu.host, self.t)
        self.done = True

    def elapsed_time(self, end: FakeEvent) -> float:
        self.gpu.log.append(f"{self.name}.elapsed_time")
        if not (end.done and self.t is not None):
            raise RuntimeError("CUDA error: device not ready")  # what reading an unfinished event does
        return (end.t - self.t) * 1e3  # milliseconds, like torch.cuda.Event.elapsed_time


def timer_for(gpu: FakeGpu) -> CudaTimer:
    return CudaTimer(event=gpu.event, synchronize=gpu.synchronize, clock=gpu.clock)


def test_order_of_calls_and_no_sync_inside_the_timed_region():
    gpu = FakeGpu(kernel_s=U, launch_s=U / 8)
    gpu.gpu = 5 * U  # work queued before the block: must not be counted in it
    block = timer_for(gpu).time_block(gpu.launch, 3)
    log = gpu.log
    start, end = log.index("start.record"), log.index("end.record")
    assert log[start + 1:end] == ["fn"] * 3  # nothing but the calls between the two events
    assert "synchronize" in log[:start]  # the device is drained before the region
    assert "clock" in log[log.index("synchronize"):start]  # host clock read after draining, before the region
    assert log.index("end.synchronize") > end  # the end event is waited for after the region ...
    assert log.index("start.elapsed_time") > log.index("end.synchronize")  # ... and only then read
    assert log[end + 1:log.index("end.synchronize")] == ["clock"]  # enqueue time: up to the last launch
    assert log[log.index("end.synchronize") + 1] == "clock"
    assert log.count("synchronize") == 1

    assert block.calls == 3
    assert block.device_s == pytest.approx(3 * U, rel=1e-12)  # elapsed_time(ms) / 1e3
    assert block.host_s == 3 * U  # from the drained device (5U) to the end event (8U)
    assert block.enqueue_s == 3 * U / 8


def test_device_time_is_elapsed_milliseconds_over_1e3():
    class Event:
        def record(self):
            pass

        def synchronize(self):
            pass

        def elapsed_time(self, end):
            return 2.5  # ms

    ticks = iter([10.0, 10.004, 10.006])
    block = CudaTimer(event=Event, synchronize=lambda: None, clock=lambda: next(ticks)).time_block(lambda: None, 5)
    assert block.device_s == 0.0025
    assert block.enqueue_s == pytest.approx(0.004) and block.host_s == pytest.approx(0.006)


def test_reading_events_before_the_end_completes_would_fail():
    """The fake is strict: without end.synchronize() its elapsed_time raises, so the test above means something."""
    gpu = FakeGpu(kernel_s=U, launch_s=U)
    start, end = gpu.event(), gpu.event()
    start.record()
    gpu.launch()
    end.record()
    with pytest.raises(RuntimeError, match="not ready"):
        start.elapsed_time(end)


def _policy() -> Policy:
    return Policy(warmup_s=8 * U, min_block_s=4 * U, min_samples=3, floor_samples=3, max_samples=10,
                  target_rel_iqr=0.01, budget_s=1.0)


def test_measure_over_cuda_timer_gives_per_call_device_times():
    gpu = FakeGpu(kernel_s=U, launch_s=U / 8)  # GPU-bound: the queue stays ahead of the host
    m = measure(gpu.launch, timer=timer_for(gpu), policy=_policy())
    assert m.stop_reason == "converged" and len(m.device_s) == 3
    assert m.calls_per_sample == 4
    assert m.device_s == pytest.approx((U,) * 3, rel=1e-12)
    assert m.host_s == (U,) * 3  # the caller waits for the GPU
    assert m.enqueue_s == (U / 8,) * 3  # but issued the calls in an eighth of that
    assert gpu.log.count("fn") == m.warmup_calls + 3 * 4
    # Every block drained the device once, before its region.
    assert gpu.log.count("synchronize") == gpu.log.count("start.record")


def test_launch_bound_calls_show_device_time_equal_to_launch_time():
    gpu = FakeGpu(kernel_s=U / 8, launch_s=U)  # tiny kernels: the GPU waits on the host
    m = measure(gpu.launch, timer=timer_for(gpu), policy=_policy())
    assert m.device_s == pytest.approx((U,) * 3, rel=1e-12)
    assert m.enqueue_s == (U,) * 3  # enqueue time ~ device time: the mark of a launch-bound workload
