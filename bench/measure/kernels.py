"""The kernels a row ran (`run --profile`): torch.profiler around a few calls after the row's timing, the kernels
of one call with their count and share of device time, a Chrome-format trace Perfetto opens, and what the kernel
names say about the math that ran (tensor cores, TF32).

The profiled calls are never timed: CUPTI slows launches, so the timing comes first and the profile after it.
On the CPU the "kernels" are the ATen operators with their self time (the CPU has no device kernels).
"""
from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

PROFILED_CALLS = 3  # the kernels of one call: counts and times are per call, over these
TOP = 3  # kernels named in results.csv's top_kernels; kernels.csv has them all
# Kernel-name patterns, from the names cuBLAS, cuDNN and CUTLASS give their kernels (no API says which unit a kernel
# used): matrix (tensor-core) kernels are "xmma", "hmma", "imma", "gmma"/"wgmma" (Hopper), CUTLASS's "tensorop" and
# the instruction shapes h884, h1688, h16816, s1688, i8816; TF32 ones say "tf32" or are CUTLASS's single-precision
# tensor-op s1688/s16816. Triton's kernels (compile rows) are named after the graph, not the unit: unknown.
TENSOR_CORE = re.compile(r"xmma|hmma|imma|gmma|tensorop|[hsi](?:884|1688|16816|8816)", re.IGNORECASE)
TF32 = re.compile(r"tf32|s1688|s16816", re.IGNORECASE)

@dataclass(frozen=True)
class Kernel:
    """One kernel (CUDA) or operator (CPU) of a call: how often it ran per call, its time per call, its share."""

    name: str
    calls: float
    time_s: float
    share: float


@dataclass(frozen=True)
class KernelProfile:
    """A row's profile: its kernels, largest share first; the trace (Chrome JSON); what the names say."""

    kernels: tuple[Kernel, ...]
    trace: str
    tensor_cores: bool | None = None  # CUDA rows: a kernel name of a matrix (tensor-core) kernel
    tf32: bool | None = None  # CUDA rows: a TF32 kernel name

    def top(self, n: int = TOP) -> str:
        """"name (62%, 1x); ..." for the first n kernels, names cut to 60 characters."""
        return "; ".join(f"{k.name[:60]} ({k.share:.0%}, {k.calls:g}x)" for k in self.kernels[:n])


def _self_time_s(event: Any, device: str) -> float:
    """An averaged event's self time in seconds: device time for CUDA kernels (the attribute was renamed from
    self_cuda_time_total in torch 2.4), CPU time otherwise."""
    if device == "cuda":
        us = getattr(event, "self_device_time_total", None)
        us = getattr(event, "self_cuda_time_total", 0.0) if us is None else us
    else:
        us = event.self_cpu_time_total
    return float(us) / 1e6


def kernels_of(events: Any, device: str, *, calls: int) -> tuple[Kernel, ...]:
    """Kernels from torch.profiler's key_averages(): on CUDA the device-side events (kernels, copies, sets), on
    the CPU the operators, each with its self time, per call, largest first."""
    rows = []
    for e in events:
        on_device = str(getattr(e, "device_type", "")).endswith("CUDA")
        if device == "cuda" and not on_device:
            continue
        if device == "cpu" and (on_device or e.key.startswith("ProfilerStep")):
            continue
        time_s = _self_time_s(e, device)
        if time_s > 0:
            rows.append((e.key, e.count / calls, time_s / calls))
    total = sum(t for _, _, t in rows) or 1.0
    rows.sort(key=lambda r: (-r[2], r[0]))
    return tuple(Kernel(name=n, calls=c, time_s=t, share=t / total) for n, c, t in rows)


def what_ran(kernels: tuple[Kernel, ...], device: str) -> tuple[bool | None, bool | None]:
    """(tensor cores, TF32) from the kernel names: None on the CPU, where names say neither."""
    if device != "cuda" or not kernels:
        return None, None
    matrix, tf32 = any(TENSOR_CORE.search(k.name) for k in kernels), any(TF32.search(k.name) for k in kernels)
    if not matrix and any(k.name.startswith("triton") for k in kernels):
        return None, None
    return matrix, tf32


def profile_calls(fn: Callable[[], Any], device: str, *, calls: int = PROFILED_CALLS) -> KernelProfile:
    """Profile `calls` calls of fn (already warm: the row was just timed) with torch.profiler."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(calls):
            fn()
        if device == "cuda":
            torch.cuda.synchronize()
    kernels = kernels_of(prof.key_averages(), device, calls=calls)
    fd, path = tempfile.mkstemp(suffix=".json", prefix="bench-trace-")
    os.close(fd)
    try:
        prof.export_chrome_trace(path)
        with open(path, encoding="utf-8") as f:
            trace = f.read()
    finally:
        os.unlink(path)
    tensor_cores, tf32 = what_ran(kernels, device)
    return KernelProfile(kernels=kernels, trace=trace, tensor_cores=tensor_cores, tf32=tf32)
