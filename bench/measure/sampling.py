"""Warm-up, calibration and an adaptive stopping rule around one timer.

The loop: one first call (its time estimates the rest and may trip the timeout), warm-up blocks until
`warmup_s` has passed (clocks ramp up, cuDNN picks its algorithm, caches fill; none of it is kept),
then `calls_per_sample` chosen so one sample lasts at least `min_block_s` (timer overhead negligible),
then samples until the relative IQR is below `target_rel_iqr` (after `min_samples`), or the sampling
budget `budget_s` is spent (but never fewer than `floor_samples`), or `max_samples` is reached.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.errors import BenchError, Problem
from bench.measure.clock import Block, Timer
from bench.stats import rel_iqr

CACHE_STATES = ("warm", "cold")


@dataclass(frozen=True, kw_only=True)
class Policy:
    """How long and how hard to measure one workload on one device. Times in seconds."""

    warmup_s: float = 0.2
    min_block_s: float = 0.01
    min_samples: int = 10
    floor_samples: int = 3
    max_samples: int = 200
    target_rel_iqr: float = 0.02
    budget_s: float = 2.0
    timeout_s: float = 120.0
    # warm: back-to-back calls on the same input (torch.utils.benchmark's way); cold: each call on the next of
    # copies of the input that together exceed the last-level cache twice (bench.measure.apply.cold_inputs)
    cache: str = "warm"
    # after the timing, profile a few calls with torch.profiler: kernels, shares and a trace (bench.measure.kernels)
    profile: bool = False

    def __post_init__(self) -> None:
        if self.cache not in CACHE_STATES:
            raise BenchError(Problem(where="run", field="--cache", expected=" or ".join(CACHE_STATES),
                                     found=repr(self.cache)))
        for name in ("warmup_s", "min_block_s", "budget_s", "timeout_s", "target_rel_iqr"):
            value = getattr(self, name)
            positive = name == "timeout_s"  # 0 elsewhere is meaningful: no warm-up, one call a sample, floor only
            if (not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0
                    or (positive and value == 0)):
                raise BenchError(Problem(where="Policy", field=name, found=repr(value),
                                         expected=f"a finite number {'> 0' if positive else '>= 0'}"))
        if not 1 <= self.floor_samples <= self.min_samples <= self.max_samples:
            raise BenchError(Problem(where="Policy", field="min_samples", found=repr(self.min_samples),
                                     expected=f"{self.floor_samples} to {self.max_samples} "
                                     "(floor_samples to max_samples)"))

    @property
    def row_limit_s(self) -> float:
        """The hard limit on one row (building, the accuracy reference and measuring): the bound of a row whose
        first call just passed the timeout estimate (bound_s), and a tenth of the timeout more for building."""
        return 1.1 * self.timeout_s + 2 * self.warmup_s + self.budget_s + self.floor_samples * self.min_block_s

    def bound_s(self, first_call_s: float) -> float:
        """Upper bound on this workload's measuring time when every call takes `first_call_s`: the first call,
        warm-up blocks that double while under warmup_s (at least one call, less than first_call_s +
        2 * warmup_s in all), then samples until the budget, but at least floor_samples blocks of less than
        min_block_s + one call each."""
        floor = self.floor_samples * (self.min_block_s + first_call_s)
        return 2 * first_call_s + 2 * self.warmup_s + max(self.budget_s, floor)


@dataclass(frozen=True, kw_only=True)
class Measurement:
    """Kept samples (per-call seconds) and how they were taken; warm-up is not among them."""

    device_s: tuple[float, ...]
    host_s: tuple[float, ...]
    enqueue_s: tuple[float, ...]
    calls_per_sample: int
    warmup_calls: int
    first_call_s: float
    stop_reason: str  # "converged" | "budget" | "max_samples"


class WorkloadTimeout(Exception):
    """The first call shows the workload cannot be measured within the policy's timeout."""

    def __init__(self, first_call_s: float, needed_s: float, timeout_s: float) -> None:
        super().__init__(f"first call took {first_call_s:.3g} s, so measuring needs about {needed_s:.3g} s "
                         f"> timeout {timeout_s:.3g} s")
        self.first_call_s, self.needed_s, self.timeout_s = first_call_s, needed_s, timeout_s


def measure(fn: Callable[[], Any], *, timer: Timer, policy: Policy = Policy()) -> Measurement:
    """Time fn with `timer` under `policy`. Raises WorkloadTimeout when the first call predicts a blow-up."""
    first = timer.time_block(fn, 1)
    first_s = max(first.host_s, first.device_s)
    needed_s = (2 + policy.floor_samples) * first_s  # first call, at least one warm-up call, floor samples
    if needed_s > policy.timeout_s:
        raise WorkloadTimeout(first_s, needed_s, policy.timeout_s)

    # Warm-up: at least one block after the first call, whose one-time costs (oneDNN primitives, cuDNN's
    # algorithm search, lazy init) must not size the samples; blocks double until warmup_s has passed,
    # and stop early when the next block alone would exceed it.
    warmup_calls, calls = 1, 1
    start = timer.now()
    while True:
        block = timer.time_block(fn, calls)
        warmup_calls += calls
        per_call_s = max(block.device_s, block.host_s) / calls
        calls *= 2
        if timer.now() - start >= policy.warmup_s or per_call_s * calls >= policy.warmup_s:
            break
    per_call_s = max(per_call_s, 1e-9)
    calls_per_sample = max(1, math.ceil(policy.min_block_s / per_call_s))

    blocks: list[Block] = []
    device_s: list[float] = []
    start = timer.now()
    reason = "max_samples"
    while len(blocks) < policy.max_samples:
        block = timer.time_block(fn, calls_per_sample)
        blocks.append(block)
        device_s.append(block.device_s / calls_per_sample)
        n = len(blocks)
        elapsed = timer.now() - start
        if n >= policy.min_samples and rel_iqr(device_s) <= policy.target_rel_iqr:
            reason = "converged"
            break
        if n >= policy.floor_samples and elapsed + elapsed / n > policy.budget_s:
            reason = "budget"  # the next sample would overrun the budget
            break
    return Measurement(
        device_s=tuple(device_s),
        host_s=tuple(b.host_s / b.calls for b in blocks),
        enqueue_s=tuple(b.enqueue_s / b.calls for b in blocks),
        calls_per_sample=calls_per_sample,
        warmup_calls=warmup_calls,
        first_call_s=first_s,
        stop_reason=reason,
    )
