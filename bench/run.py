"""Run checked plans on each device: build the layer and input there, measure, and return records.

A failure in one row (out of memory, an exception in forward, an unsupported dtype, a timeout)
becomes that row's status and reason; the rest of the suite goes on. Ctrl-C is not swallowed: the
records finished so far have already been handed to `on_record`.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Callable

import torch

from bench.clock import CpuTimer, CudaTimer, Timer
from bench.measure import Measurement, Policy, WorkloadTimeout, measure
from bench.plan import Plan

CUDA_POLICY = Policy(warmup_s=0.5)  # long enough for GPU clocks to ramp and cuDNN to pick its algorithm
STATUSES = ("ok", "error", "oom", "timeout", "unsupported", "skipped")


@dataclass(frozen=True, kw_only=True)
class Record:
    """The outcome of one workload on one device: a measurement when status is 'ok', a reason otherwise."""

    plan: Plan
    device: str
    device_name: str
    threads: int
    status: str
    reason: str = ""
    measurement: Measurement | None = None
    wall_s: float = 0.0


@dataclass(frozen=True, kw_only=True)
class Progress:
    """Reported before each row: row `index` (1-based) of `total`, and the estimated seconds left."""

    index: int
    total: int
    workload: str
    device: str
    left_s: float


def available_devices() -> list[str]:
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name(0)
    from bench.env import cpu_name

    return cpu_name()


def free_bytes(device: str) -> int:
    """Memory the device can still give: cudaMemGetInfo on CUDA, available physical pages on the CPU."""
    if device == "cuda":
        return int(torch.cuda.mem_get_info()[0])
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62


def _build(plan: Plan, device: str):
    w = plan.workload
    torch.manual_seed(0)  # seeded weights and input: same data in every run, never zeros
    with torch.device(device):
        module = w.module()
    module = module.to(device=device, dtype=w.torch_dtype).eval()
    x = torch.randn(w.input_shape, dtype=w.torch_dtype, device=device)
    return module, x


def _classify(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in text.lower():
        return "oom"
    if "not implemented for" in text or "not supported" in text.lower():
        return "unsupported"
    return "error"


def one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:300]}" if lines else type(exc).__name__


def run_one(plan: Plan, device: str, *, timer: Timer, policy: Policy, memory_factor: float = 3.0) -> Record:
    """Measure one plan on one device. Never raises for a failing workload: the record says what happened."""
    threads = torch.get_num_threads()
    name = device_name(device)
    base = dict(plan=plan, device=device, device_name=name, threads=threads)
    needed = int(plan.bytes_moved * memory_factor)
    free = free_bytes(device)
    if needed > free:
        return Record(**base, status="skipped",
                      reason=f"needs about {needed / 2**30:.2f} GiB ({memory_factor:g}x the planned "
                             f"{plan.bytes_moved / 2**30:.2f} GiB), {device} has {free / 2**30:.2f} GiB free")
    started = time.perf_counter()
    module = x = None
    try:
        module, x = _build(plan, device)
        with torch.inference_mode():
            m = measure(lambda: module(x), timer=timer, policy=policy)
        return Record(**base, status="ok", measurement=m, wall_s=time.perf_counter() - started)
    except WorkloadTimeout as exc:
        return Record(**base, status="timeout", reason=str(exc), wall_s=time.perf_counter() - started)
    except Exception as exc:  # noqa: BLE001 - one row's failure must not cost the suite; it is recorded
        return Record(**base, status=_classify(exc), reason=one_line(exc), wall_s=time.perf_counter() - started)
    finally:
        del module, x
        if device == "cuda":
            torch.cuda.empty_cache()


def default_timer(device: str) -> Timer:
    return CudaTimer() if device == "cuda" else CpuTimer()


def run_suite(
    plans: list[Plan],
    devices: list[str],
    *,
    policy: Policy = Policy(),
    cuda_policy: Policy = CUDA_POLICY,
    timer_for: Callable[[str], Timer] = default_timer,
    on_progress: Callable[[Progress], None] | None = None,
    on_record: Callable[[Record], None] | None = None,
) -> list[Record]:
    """Measure every plan on every device, in order; `on_record` sees each record as soon as it exists."""
    rows = [(p, d) for p in plans for d in devices]
    records: list[Record] = []
    spent = 0.0
    for i, (plan, device) in enumerate(rows):
        pol = cuda_policy if device == "cuda" else policy
        guess = pol.warmup_s + pol.budget_s
        per_row = spent / i if i else guess
        if on_progress:
            on_progress(Progress(index=i + 1, total=len(rows), workload=plan.name, device=device,
                                 left_s=per_row * (len(rows) - i)))
        start = time.perf_counter()
        record = run_one(plan, device, timer=timer_for(device), policy=pol)
        spent += time.perf_counter() - start
        records.append(record)
        if on_record:
            on_record(record)
    return records
