"""The hardware's state while a row is measured: GPU clocks, power, temperature and throttling through NVML, the
CPU's frequency where Linux shows it.

A GPU that throttles (power cap, heat) runs the same kernel slower; a number measured then is not the layer's.
nvbench samples the clocks while it measures and flags throttled samples; so does this: `GpuSampler` reads NVML
(nvidia-ml-py's `pynvml`) every SAMPLE_S in a thread around the measured calls and `HardwareState` keeps the
medians, the hottest temperature, the throttle reasons seen and the share of samples taken while throttled.
Without pynvml or a driver nothing is sampled and the row's columns stay empty. On the CPU, `cpu_mhz` is the
mean current frequency of the CPUs this process may run on, before and after the measured calls (a VM often
shows its nominal frequency only).
"""
from __future__ import annotations

import functools
import os
import statistics
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SAMPLE_S = 0.05  # NVML sampling interval: a query costs tens of microseconds, and the thread holds the GIL that long
# NVML's clock-event (throttle) reason bits, from nvml.h (a stable ABI; pynvml exposes them under names that changed
# between releases, so they are spelled out in this module). Only these slow the GPU down: idle, application clocks,
# sync boost and display clocks are not throttling.
THROTTLE_REASONS = {0x4: "sw_power_cap", 0x8: "hw_slowdown", 0x20: "sw_thermal", 0x40: "hw_thermal",
                    0x80: "hw_power_brake"}


@dataclass(frozen=True, kw_only=True)
class HardwareState:
    """What the hardware did while one row was measured (None: not known on this machine)."""

    cpu_mhz: float | None = None
    sm_clock_mhz: float | None = None  # medians over the samples
    mem_clock_mhz: float | None = None
    power_w: float | None = None
    temperature_c: float | None = None  # the hottest sample
    throttle: str = ""  # the throttle reasons seen, comma-separated (THROTTLE_REASONS)
    throttled_share: float | None = None  # the share of samples taken while throttled
    samples: int = 0


def cpu_mhz(*, sysfs: Path = Path("/sys/devices/system/cpu"), cpuinfo: Path = Path("/proc/cpuinfo")) -> float | None:
    """The mean current frequency of the CPUs this process may run on, in MHz: cpufreq's scaling_cur_freq, else
    /proc/cpuinfo's "cpu MHz"; None where Linux shows neither."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    values = []
    for cpu in cpus:
        try:
            values.append(int((sysfs / f"cpu{cpu}" / "cpufreq" / "scaling_cur_freq").read_text()) / 1e3)  # kHz
        except (OSError, ValueError):
            break
    if values and len(values) == len(cpus):
        return statistics.fmean(values)
    try:
        lines = cpuinfo.read_text().splitlines()
    except OSError:
        return None
    per_cpu, current = {}, None
    for line in lines:
        name, _, value = line.partition(":")
        name = name.strip()
        try:
            if name == "processor":
                current = int(value)
            elif name == "cpu MHz" and current is not None:
                per_cpu[current] = float(value)
        except ValueError:
            continue
    chosen = [per_cpu[c] for c in cpus if c in per_cpu] or list(per_cpu.values())
    return statistics.fmean(chosen) if chosen else None


def _cpu_ticks(stat: Path) -> tuple[int, int] | None:
    """(busy, total) clock ticks of all CPUs since boot, from /proc/stat's first line; steal counts as busy (the
    hypervisor gave the CPU to someone else)."""
    try:
        fields = [int(v) for v in stat.read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    busy = user + nice + system + irq + softirq + steal
    return busy, busy + idle + iowait


def _own_ticks(stat: Path) -> int | None:
    """This process's user + system clock ticks (every thread), from /proc/self/stat."""
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of the file
    except (OSError, ValueError, IndexError):
        return None


class OthersBusy:
    """How many cores other processes kept busy during a block: `with OthersBusy() as o: ...`, then `o.cores`
    (None where Linux's /proc is missing). The load average counts this process too (a probe right after a run
    would see its own run) and lags by a minute; this counts the block only and leaves this process out."""

    def __init__(self, *, stat: Path = Path("/proc/stat"), own: Path = Path("/proc/self/stat"),
                 cpus: int | None = None) -> None:
        self.stat, self.own, self.cpus = stat, own, cpus or os.cpu_count() or 1
        self.cores: float | None = None

    def __enter__(self) -> OthersBusy:
        self._start = (_cpu_ticks(self.stat), _own_ticks(self.own))
        return self

    def __exit__(self, *exc) -> None:
        (before, own_before), after, own_after = self._start, _cpu_ticks(self.stat), _own_ticks(self.own)
        if None in (before, own_before, after, own_after) or after[1] <= before[1]:
            return
        others = (after[0] - before[0]) - (own_after - own_before)
        self.cores = round(max(others, 0) / (after[1] - before[1]) * self.cpus, 2)


@functools.lru_cache(maxsize=1)
def _nvml():
    """pynvml, initialised once per process, or None (not installed, no driver)."""
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml
    except Exception:  # noqa: BLE001 - any failure means no NVML on this machine: the clocks are simply not recorded
        return None


def nvml_handle(nvml, device_index: int = 0):
    """The NVML handle of torch's CUDA device: by UUID (CUDA_VISIBLE_DEVICES reorders indices), else by index."""
    try:
        import torch

        uuid = str(torch.cuda.get_device_properties(device_index).uuid)
        return nvml.nvmlDeviceGetHandleByUUID(uuid if uuid.startswith("GPU-") else f"GPU-{uuid}")
    except Exception:  # noqa: BLE001 - older torch without .uuid, or an NVML without that call
        return nvml.nvmlDeviceGetHandleByIndex(device_index)


def read_gpu(nvml, handle) -> tuple[float, float, float, float, int]:
    """One sample: SM clock (MHz), memory clock (MHz), power (W), temperature (C), clock-event reason bits."""
    reasons = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or \
        nvml.nvmlDeviceGetCurrentClocksThrottleReasons
    return (float(nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM)),
            float(nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_MEM)),
            nvml.nvmlDeviceGetPowerUsage(handle) / 1e3,  # mW
            float(nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)),
            int(reasons(handle)))


def summarize_gpu(samples: list[tuple[float, float, float, float, int]]) -> dict:
    """HardwareState's GPU fields from samples (read_gpu's tuples)."""
    if not samples:
        return {}
    throttled = [s[4] & sum(THROTTLE_REASONS) for s in samples]
    seen = 0
    for bits in throttled:
        seen |= bits
    return dict(sm_clock_mhz=statistics.median(s[0] for s in samples),
                mem_clock_mhz=statistics.median(s[1] for s in samples),
                power_w=statistics.median(s[2] for s in samples), temperature_c=max(s[3] for s in samples),
                throttle=",".join(name for bit, name in THROTTLE_REASONS.items() if seen & bit),
                throttled_share=sum(1 for b in throttled if b) / len(samples), samples=len(samples))


class Sampler:
    """Around the measured calls of one row: `with Sampler(device) as s: ...`, then `s.state`. On CUDA (with
    NVML) a thread samples every SAMPLE_S, and once at the start and the end; on the CPU the frequency is read at
    the start and the end. nvml and read: injectable for tests (a fake NVML module, a fake reader)."""

    def __init__(self, device: str, *, nvml=None, read: Callable | None = None, interval_s: float = SAMPLE_S,
                 cpu_reader: Callable[[], float | None] = cpu_mhz) -> None:
        self.device, self.interval_s, self.cpu_reader = device, interval_s, cpu_reader
        self.state = HardwareState()
        self._gpu: Callable[[], tuple] | None = None
        if device == "cuda":
            nvml = nvml or _nvml()
            if nvml is not None:
                try:
                    handle = nvml_handle(nvml)
                    self._gpu = (lambda: (read or read_gpu)(nvml, handle))
                except Exception:  # noqa: BLE001 - a device NVML cannot see: no clocks for this row
                    self._gpu = None
        self._samples: list[tuple] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cpu: list[float] = []

    def _sample(self) -> None:
        try:
            self._samples.append(self._gpu())
        except Exception:  # noqa: BLE001 - a failed NVML query loses one sample, never the row
            pass

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> Sampler:
        if self.device == "cpu":
            mhz = self.cpu_reader()
            self._cpu += [mhz] if mhz is not None else []
        elif self._gpu is not None:
            self._sample()
            self._thread = threading.Thread(target=self._loop, name="bench-nvml", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._sample()
        if self.device == "cpu":
            mhz = self.cpu_reader()
            self._cpu += [mhz] if mhz is not None else []
        self.state = HardwareState(cpu_mhz=statistics.fmean(self._cpu) if self._cpu else None,
                                   **summarize_gpu(self._samples))

