"""Measure a device's peaks: a large square matrix product per math mode and a large copy.

The probe times a matrix product per dtype (2 n^3 FLOPs; on CUDA float32 with TF32 off, and "tf32" with it
on) and a device-to-device copy (bytes read + bytes written), each with the same `measure` and timers as the
workloads, and keeps the best sample (a roof is an upper bound). On the CPU it runs with the threads in use.
It records when and under what load average it ran, so a report can say how far to trust the roofs.
"""
from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from datetime import datetime, timezone

import torch

from bench.measure.apply import applied
from bench.measure.clock import default_timer
from bench.measure.clocks import OthersBusy
from bench.measure.env import device_name, machine_key
from bench.measure.roofs import Peaks
from bench.measure.sampling import Policy, WorkloadTimeout, measure
from bench.suite.variants import Variant

MATHS = {"cuda": ("float32", "tf32", "bfloat16", "float16", "float64"),
         "cpu": ("float32", "bfloat16", "float16", "float64")}
# (matrix size per math, copy bytes) per device, full and quick: a quick probe takes well under a second.
SIZES = {
    ("cuda", False): ({"float32": 8192, "tf32": 8192, "bfloat16": 8192, "float16": 8192, "float64": 4096}, 1 << 30),
    ("cuda", True): ({"float32": 2048, "tf32": 2048, "bfloat16": 2048, "float16": 2048, "float64": 1024}, 64 << 20),
    ("cpu", False): ({"float32": 2048, "bfloat16": 2048, "float16": 1024, "float64": 1024}, 256 << 20),
    ("cpu", True): ({"float32": 256, "bfloat16": 256, "float16": 128, "float64": 128}, 4 << 20),
}
QUIET_WINDOW_S = 0.25  # how long other processes' CPU use is watched before a probe
POLICIES = {False: Policy(warmup_s=0.3, min_samples=5, floor_samples=3, max_samples=50, budget_s=0.5, timeout_s=60),
            True: Policy(warmup_s=0.02, min_samples=3, floor_samples=3, max_samples=20, budget_s=0.03, timeout_s=10)}


def _cpu_size(dtype: torch.dtype, largest: int, *, target_s: float) -> int:
    """The CPU matrix size for a dtype: `largest`, or smaller where one product of that size would take much more
    than target_s (a CPU without bfloat16 or float16 units emulates them, far slower than float32, and a
    full-size product would take minutes). Sized from one timed 128^3 product."""
    n0 = min(128, largest)
    a = torch.ones(n0, n0, dtype=dtype)
    torch.mm(a, a)  # lazy initialisation outside the timing
    start = time.perf_counter()
    torch.mm(a, a)
    rate = 2 * n0 ** 3 / max(time.perf_counter() - start, 1e-9)  # FLOP/s at the small size: a lower bound
    return int(min(largest, max(n0, (target_s * rate / 2) ** (1 / 3) // 64 * 64)))


def probe(device: str, *, threads: int = 0, quick: bool = False, timer=None,
          on_step: Callable[[str], None] | None = None) -> Peaks:
    """Measure the device's peaks now (a few seconds; well under one with quick=True). threads: CPU threads
    (0 = torch's current count). on_step(text) is told what is measured next, for progress. Records the load
    average and the cores other processes kept busy, the more of just before and during the probe (Peaks.busy
    flags a probe taken on a busy machine)."""
    with applied(Variant(threads=threads if device == "cpu" else 0)):
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        # Others' demand, measured first while this process sleeps: during the probe they only get what it leaves
        # them, so a machine that looks quiet during the probe may have been busy, and the probe's roofs low.
        with OthersBusy() as before:
            time.sleep(QUIET_WINDOW_S)
        with OthersBusy() as during:
            flops, bytes_per_s = _measure_roofs(device, timer or default_timer(device), quick, on_step)
        seen = [c for c in (before.cores, during.cores) if c is not None]
        return Peaks(device=device, machine_key=machine_key(device), device_name=device_name(device),
                     threads=torch.get_num_threads() if device == "cpu" else 0, flops_per_s=flops,
                     bytes_per_s=bytes_per_s, source="quick probe" if quick else "probe",
                     measured_utc=datetime.now(timezone.utc).isoformat(timespec="seconds"), load_avg_1m=load,
                     others_busy_cores=max(seen) if seen else None, cores=during.cpus)


def _measure_roofs(device: str, timer, quick: bool,
                   on_step: Callable[[str], None] | None) -> tuple[dict[str, float], float]:
    """FLOP/s per math mode (a matrix product each) and bytes/s (a copy), the best sample of each."""
    sizes, copy_bytes = SIZES[(device, quick)]
    policy = POLICIES[quick]
    flops: dict[str, float] = {}
    for math in MATHS[device]:
        dtype = torch.float32 if math == "tf32" else getattr(torch, math)
        with applied(Variant(tf32=math == "tf32") if device == "cuda" else Variant()), torch.inference_mode():
            # a GPU runs every math mode in hardware at full size; a CPU may emulate some (sized down)
            n = sizes[math] if device == "cuda" else _cpu_size(dtype, sizes[math], target_s=policy.min_block_s * 10)
            if on_step:
                on_step(f"{device} {math} matrix product {n}x{n}")
            gen = torch.Generator(device=device).manual_seed(0)
            a = torch.randn(n, n, device=device, dtype=dtype, generator=gen)
            b = torch.randn(n, n, device=device, dtype=dtype, generator=gen)
            out = torch.empty(n, n, device=device, dtype=dtype)
            try:
                m = measure(functools.partial(torch.mm, a, b, out=out), timer=timer, policy=policy)
            except WorkloadTimeout:  # this math is too slow on this device to probe: no roof for it, float32's applies
                continue
            finally:
                del a, b, out
        flops[math] = 2 * n ** 3 / min(m.device_s)
    if on_step:
        on_step(f"{device} copy of {copy_bytes >> 20} MiB")
    src = torch.ones(copy_bytes, device=device, dtype=torch.uint8)
    dst = torch.empty_like(src)
    m = measure(functools.partial(dst.copy_, src), timer=timer, policy=policy)
    del src, dst
    return flops, 2 * copy_bytes / min(m.device_s)
