"""measure() driven by a scripted fake timer: exact samples, call counts and stopping rules, no real time.

Durations are binary fractions of U = 2**-10 s, so every sum and ratio below is exact in floating point.
"""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.errors import BenchError
from bench.measure.clock import Block, CpuTimer
from bench.measure.sampling import Measurement, Policy, WorkloadTimeout, measure

U = 2.0 ** -10


class FakeTimer:
    """Runs fn for real `calls` times per block; after each call a fake clock advances by per_call(i) seconds,
    i being the call's index since the timer was made. host_factor scales the host time of every block."""

    device = "cpu"

    def __init__(self, per_call, *, host_factor: float = 1.0) -> None:
        self.per_call = per_call
        self.host_factor = host_factor
        self.clock = 0.0
        self.index = 0
        self.blocks: list[int] = []  # calls of each time_block, in order

    def now(self) -> float:
        return self.clock

    def time_block(self, fn, calls: int) -> Block:
        start = self.clock
        for _ in range(calls):
            fn()
            self.clock += self.per_call(self.index)
            self.index += 1
        self.blocks.append(calls)
        device_s = self.clock - start
        return Block(calls=calls, device_s=device_s, host_s=device_s * self.host_factor, enqueue_s=device_s / 4)


class Counter:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


def run(per_call, policy: Policy, **timer_kwargs) -> tuple[Measurement, FakeTimer, Counter]:
    fn, timer = Counter(), FakeTimer(per_call, **timer_kwargs)
    return measure(fn, timer=timer, policy=policy), timer, fn


def test_warmup_is_excluded_and_samples_are_exact():
    # First call + warm-up blocks of 1, 2, 4, 8 calls (U each) pass warmup_s = 0.01 s after 16 calls;
    # then ceil(4U / U) = 4 calls per sample, sample k costing U/2 + k*U/16 per call.
    per_call = lambda i: U if i < 16 else U / 2 + ((i - 16) // 4) * U / 16  # noqa: E731 - the fake clock's cost per call
    policy = Policy(warmup_s=0.01, min_block_s=4 * U, min_samples=3, floor_samples=1, max_samples=5,
                    target_rel_iqr=0.0, budget_s=100.0, timeout_s=100.0)
    m, timer, fn = run(per_call, policy)
    assert timer.blocks == [1, 1, 2, 4, 8, 4, 4, 4, 4, 4]
    assert m.device_s == (U / 2, 9 * U / 16, 10 * U / 16, 11 * U / 16, 12 * U / 16)
    assert U not in m.device_s  # no warm-up time among the samples
    assert m.host_s == m.device_s and m.enqueue_s == tuple(s / 4 for s in m.device_s)
    assert m.calls_per_sample == 4
    assert m.warmup_calls == 16  # the first call and the warm-up calls
    assert m.first_call_s == U
    assert m.stop_reason == "max_samples"
    assert fn.calls == 1 + 15 + 5 * 4 == m.warmup_calls + len(m.device_s) * m.calls_per_sample


def test_calls_per_sample_is_ceil_of_min_block_over_call_time():
    m, timer, fn = run(lambda i: 3 * 2.0 ** -12, Policy(warmup_s=0.0, min_block_s=2.0 ** -8, min_samples=3,
                                                         target_rel_iqr=0.5))
    assert m.calls_per_sample == math.ceil(16 / 3) == 6
    assert timer.blocks == [1, 1, 6, 6, 6]  # first call, the one warm-up block even with warmup_s = 0, samples
    assert fn.calls == 1 + 1 + 3 * 6
    m, _, _ = run(lambda i: 0.5, Policy(warmup_s=0.0, min_block_s=0.01, min_samples=3, target_rel_iqr=0.5))
    assert m.calls_per_sample == 1


def test_a_call_longer_than_the_warmup_gets_exactly_one_warmup_call():
    m, timer, fn = run(lambda i: 1.0, Policy(warmup_s=0.5, min_block_s=0.01, min_samples=3, target_rel_iqr=0.5))
    assert timer.blocks == [1, 1, 1, 1, 1] and m.warmup_calls == 2 and fn.calls == 5


def test_a_slow_first_call_neither_skips_the_warmup_nor_sizes_the_samples():
    """First call 0.25 s (one-time setup), 2**-15 s after: the warm-up still runs for warmup_s, and samples
    hold ceil(min_block_s / warm call) calls, not 1 (a review found 20 us samples sized from the first call)."""
    per_call = lambda i: 0.25 if i == 0 else 2.0 ** -15  # noqa: E731 - the fake clock's cost per call
    m, timer, fn = run(per_call, Policy(warmup_s=0.01, min_block_s=2.0 ** -7, min_samples=3, target_rel_iqr=0.5))
    assert m.calls_per_sample == 256
    assert m.warmup_calls > 300  # 0.01 s of warm-up at 2**-15 s a call
    assert m.device_s == (2.0 ** -15,) * 3


def test_host_time_is_kept_apart_and_calibrates():
    m, _, _ = run(lambda i: U, Policy(warmup_s=0.0, min_block_s=4 * U, min_samples=3, target_rel_iqr=0.5),
                  host_factor=2.0)
    assert m.first_call_s == 2 * U  # the slower of device and host
    assert m.calls_per_sample == 2  # 4U over 2U per call
    assert m.device_s == (U,) * 3 and m.host_s == (2 * U,) * 3


def test_converges_at_min_samples_not_before():
    policy = Policy(warmup_s=0.0, min_block_s=0.0, min_samples=4, floor_samples=2, max_samples=50,
                    target_rel_iqr=0.01, budget_s=100.0)
    m, timer, _ = run(lambda i: U, policy)
    assert m.stop_reason == "converged"
    assert len(m.device_s) == 4 and m.device_s == (U,) * 4
    # Slightly noisy samples still converge when the relative IQR is under the target.
    wobble = lambda i: U + (i % 3) * 2.0 ** -20  # noqa: E731 - the fake clock's cost per call
    m, _, _ = run(wobble, policy)
    assert m.stop_reason == "converged" and len(m.device_s) == 4


def test_noisy_samples_stop_on_the_budget():
    # Samples alternate 2U and 4U a block; after 6 samples (18U) the next one would pass budget_s = 20U.
    alternating = lambda i: U if i <= 1 else (U / 2 if ((i - 2) // 4) % 2 == 0 else U)  # noqa: E731 - the fake clock's cost per call
    policy = Policy(warmup_s=0.0, min_block_s=4 * U, min_samples=10, floor_samples=3, max_samples=50,
                    target_rel_iqr=0.001, budget_s=20 * U)
    m, timer, fn = run(alternating, policy)
    assert m.stop_reason == "budget"
    assert m.device_s == (U / 2, U) * 3
    assert sum(s * m.calls_per_sample for s in m.device_s) == 18 * U <= policy.budget_s
    assert fn.calls == 2 + 6 * 4


def test_budget_never_stops_before_floor_samples():
    alternating = lambda i: U * (1 + i % 2)  # noqa: E731 - the fake clock's cost per call
    policy = Policy(warmup_s=0.0, min_block_s=0.0, min_samples=10, floor_samples=3, max_samples=50,
                    target_rel_iqr=0.001, budget_s=0.0)
    m, _, fn = run(alternating, policy)
    assert m.stop_reason == "budget" and len(m.device_s) == 3 and fn.calls == 1 + 1 + 3


def test_stops_at_max_samples():
    alternating = lambda i: U * (1 + i % 2)  # noqa: E731 - the fake clock's cost per call
    policy = Policy(warmup_s=0.0, min_block_s=0.0, min_samples=3, floor_samples=3, max_samples=7,
                    target_rel_iqr=0.001, budget_s=1e9)
    m, _, fn = run(alternating, policy)
    assert m.stop_reason == "max_samples" and len(m.device_s) == 7 and fn.calls == 1 + 1 + 7


def test_timeout_from_the_first_call():
    policy = Policy(timeout_s=60.0, floor_samples=3)
    with pytest.raises(WorkloadTimeout) as info:
        run(lambda i: 100.0, policy)
    assert (info.value.first_call_s, info.value.needed_s, info.value.timeout_s) == (100.0, 500.0, 60.0)
    assert "100 s" in str(info.value) and "60 s" in str(info.value)
    fn, timer = Counter(), FakeTimer(lambda i: 100.0)
    with pytest.raises(WorkloadTimeout):
        measure(fn, timer=timer, policy=policy)
    assert fn.calls == 1 and timer.blocks == [1]
    # Exactly at the limit ((2 + 3) * 12 s = 60 s: first call, one warm-up call, 3 samples) it is measured.
    m, _, _ = run(lambda i: 12.0, Policy(timeout_s=60.0, floor_samples=3, min_samples=3, warmup_s=0.0, budget_s=0.0))
    assert len(m.device_s) == 3


def test_policy_rejects_impossible_settings():
    with pytest.raises(BenchError):
        Policy(floor_samples=5, min_samples=3)
    with pytest.raises(BenchError):
        Policy(min_samples=20, max_samples=10)
    with pytest.raises(BenchError):
        Policy(floor_samples=0)
    with pytest.raises(BenchError):
        Policy(budget_s=-1.0)
    for bad in (dict(warmup_s=float("nan")), dict(budget_s=float("inf")), dict(timeout_s=0.0),
                dict(target_rel_iqr=-1.0), dict(min_block_s=float("nan"))):
        with pytest.raises(BenchError, match=next(iter(bad))):
            Policy(**bad)


@settings(max_examples=60, deadline=None)
@given(call_s=st.floats(1e-3, 2.0), warmup_s=st.floats(0.0, 0.5), min_block_s=st.floats(0.0, 0.02),
       budget_s=st.floats(0.0, 3.0), floor=st.integers(1, 5), extra=st.integers(0, 10))
def test_bound_holds_when_every_call_takes_the_same_time(call_s, warmup_s, min_block_s, budget_s, floor, extra):
    # Calls of at least 1 ms keep the fake's real loop short (at most ~1000 warm-up and ~2400 sample calls).
    policy = Policy(warmup_s=warmup_s, min_block_s=min_block_s, floor_samples=floor, min_samples=floor + extra,
                    max_samples=floor + extra + 100, target_rel_iqr=0.0, budget_s=budget_s, timeout_s=1e9)
    m, timer, _ = run(lambda i: call_s, policy)
    assert timer.clock <= policy.bound_s(call_s) * (1 + 1e-9)


def test_real_cpu_timer_structure_only():
    """A real CpuTimer on a trivial call: the structure of the result, never its durations."""
    fn = Counter()
    m = measure(fn, timer=CpuTimer(), policy=Policy(warmup_s=0.001, min_block_s=0.0005, min_samples=3,
                                                    floor_samples=3, max_samples=5, budget_s=0.01))
    assert 3 <= len(m.device_s) <= 5 and m.stop_reason in ("converged", "budget", "max_samples")
    assert all(s > 0 for s in m.device_s) and m.device_s == m.host_s
    assert fn.calls == m.warmup_calls + len(m.device_s) * m.calls_per_sample
