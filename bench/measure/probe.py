"""Measure a device's peaks: a large square matrix product per math mode and a large copy.

The probe times a matrix product per dtype (2 n^3 FLOPs; on CUDA float32 with TF32 off, and "tf32" with it
on) and a device-to-device copy (bytes read + bytes written), each with the same `measure` and timers as the
workloads, and keeps the best sample (a roof is an upper bound). On the CPU it runs with the threads in use.
It records when and under what load average it ran, so a report can say how far to trust the roofs.
"""
from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Callable

import torch

from bench.measure.apply import applied
from bench.measure.clock import default_timer
from bench.measure.env import device_name, machine_key
from bench.measure.roofs import Peaks
from bench.measure.sampling import Policy, measure
from bench.suite.variants import Variant

MATHS = {"cuda": ("float32", "tf32", "bfloat16", "float16"), "cpu": ("float32", "bfloat16", "float16")}
# (matrix size per math, copy bytes) per device, full and quick: a quick probe takes well under a second.
SIZES = {
    ("cuda", False): ({"float32": 8192, "tf32": 8192, "bfloat16": 8192, "float16": 8192}, 1 << 30),
    ("cuda", True): ({"float32": 2048, "tf32": 2048, "bfloat16": 2048, "float16": 2048}, 64 << 20),
    ("cpu", False): ({"float32": 2048, "bfloat16": 2048, "float16": 1024}, 256 << 20),
    ("cpu", True): ({"float32": 256, "bfloat16": 256, "float16": 128}, 4 << 20),
}
POLICIES = {False: Policy(warmup_s=0.3, min_samples=5, floor_samples=3, max_samples=50, budget_s=0.5, timeout_s=60),
            True: Policy(warmup_s=0.02, min_samples=3, floor_samples=3, max_samples=20, budget_s=0.03, timeout_s=10)}


def probe(device: str, *, threads: int = 0, quick: bool = False, timer=None,
          on_step: Callable[[str], None] | None = None) -> Peaks:
    """Measure the device's peaks now (a few seconds; well under one with quick=True). threads: CPU threads
    (0 = torch's current count). on_step(text) is told what is measured next, for progress."""
    with applied(Variant(threads=threads if device == "cpu" else 0)):
        timer = timer or default_timer(device)
        sizes, copy_bytes = SIZES[(device, quick)]
        policy = POLICIES[quick]
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        flops: dict[str, float] = {}
        for math in MATHS[device]:
            n = sizes[math]
            if on_step:
                on_step(f"{device} {math} matrix product {n}x{n}")
            dtype = torch.float32 if math == "tf32" else getattr(torch, math)
            gen = torch.Generator(device=device).manual_seed(0)
            a = torch.randn(n, n, device=device, dtype=dtype, generator=gen)
            b = torch.randn(n, n, device=device, dtype=dtype, generator=gen)
            out = torch.empty(n, n, device=device, dtype=dtype)
            with applied(Variant(tf32=math == "tf32") if device == "cuda" else Variant()), torch.inference_mode():
                m = measure(lambda: torch.mm(a, b, out=out), timer=timer, policy=policy)
            flops[math] = 2 * n ** 3 / min(m.device_s)
            del a, b, out
        if on_step:
            on_step(f"{device} copy of {copy_bytes >> 20} MiB")
        src = torch.ones(copy_bytes, device=device, dtype=torch.uint8)
        dst = torch.empty_like(src)
        m = measure(lambda: dst.copy_(src), timer=timer, policy=policy)
        del src, dst
        return Peaks(device=device, machine_key=machine_key(device), device_name=device_name(device),
                     threads=torch.get_num_threads() if device == "cpu" else 0, flops_per_s=flops,
                     bytes_per_s=2 * copy_bytes / min(m.device_s), source="quick probe" if quick else "probe",
                     measured_utc=datetime.now(timezone.utc).isoformat(timespec="seconds"), load_avg_1m=load)
