"""A device's peaks, the roofs of its roofline: measured by a short probe, cached per machine, overridable.

The probe times a large square matrix product per dtype (2 n^3 FLOPs; on CUDA float32 with TF32 off, and
"tf32" with it on) and a large device-to-device copy (bytes read + bytes written), each with the same
`measure` and timers as the workloads, and keeps the best sample (a roof is an upper bound). On the CPU it
runs with the threads in use, which are part of the cache key. Results are cached as JSON under
results/peaks/<machine_key>.json (bench.measure.env.machine_key) and reused; a config module may define
`PEAKS = {"cuda": {"flops_per_s": {"float32": 51.6e12, "tf32": 369e12, "bfloat16": 747e12},
"bytes_per_s": 3.0e12}}` (keys: a device or a machine key) to replace the probe's figures.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import torch

from bench.measure.env import device_name, machine_key
from bench.errors import BenchError, Problem
from bench.measure.sampling import Policy, measure
from bench.measure.runner import default_timer
from bench.measure.apply import applied
from bench.suite.variants import Variant

SCHEMA_VERSION = 1
PEAKS_DIR = Path("results") / "peaks"
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


@dataclass(frozen=True, kw_only=True)
class Peaks:
    """The roofs of one device: FLOP/s per math mode (float32, tf32, bfloat16, float16) and bytes/s."""

    device: str
    machine_key: str
    device_name: str
    threads: int  # CPU threads the figures hold for; 0 on CUDA
    flops_per_s: dict[str, float] = field(default_factory=dict)
    bytes_per_s: float = 0.0
    source: str = "probe"  # "probe", "quick probe", or "config <path>"
    measured_utc: str = ""

    def peak_flops_per_s(self, math: str) -> float:
        """The compute roof for a math mode; float32's when the device has no figure for it."""
        return self.flops_per_s.get(math) or self.flops_per_s.get("float32", 0.0)

    def ridge(self, math: str) -> float:
        """FLOP per byte where the memory roof meets the compute roof."""
        return self.peak_flops_per_s(math) / self.bytes_per_s if self.bytes_per_s > 0 else float("inf")


def from_json(data: object, *, where: str, default: dict | None = None) -> Peaks:
    """Peaks from a JSON object or a config's PEAKS entry (with `default` filling device and machine fields)."""
    entry = {**(default or {}), **(data if isinstance(data, dict) else {})}
    flops, bw = entry.get("flops_per_s"), entry.get("bytes_per_s")
    if not isinstance(data, dict) or not isinstance(flops, dict) or not flops or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in flops.values()):
        raise BenchError(Problem(where=where, field="flops_per_s", found=repr(flops)[:80],
                                 expected='a dict of positive FLOP/s per dtype, e.g. {"float32": 51.6e12}'))
    if isinstance(bw, bool) or not isinstance(bw, (int, float)) or bw <= 0:
        raise BenchError(Problem(where=where, field="bytes_per_s", expected="a positive number of bytes per second",
                                 found=repr(bw)))
    known = {f: entry[f] for f in ("device", "machine_key", "device_name", "threads", "source", "measured_utc")
             if f in entry}
    return Peaks(**{**known, "flops_per_s": {str(k): float(v) for k, v in flops.items()}, "bytes_per_s": float(bw)})


def probe(device: str, *, quick: bool = False, timer=None) -> Peaks:
    """Measure the device's peaks now (a few seconds; well under one with quick=True)."""
    timer = timer or default_timer(device)
    sizes, copy_bytes = SIZES[(device, quick)]
    policy = POLICIES[quick]
    flops: dict[str, float] = {}
    for math in MATHS[device]:
        n = sizes[math]
        dtype = torch.float32 if math == "tf32" else getattr(torch, math)
        gen = torch.Generator(device=device).manual_seed(0)
        a = torch.randn(n, n, device=device, dtype=dtype, generator=gen)
        b = torch.randn(n, n, device=device, dtype=dtype, generator=gen)
        out = torch.empty(n, n, device=device, dtype=dtype)
        with applied(Variant(tf32=math == "tf32") if device == "cuda" else Variant()), torch.inference_mode():
            m = measure(lambda: torch.mm(a, b, out=out), timer=timer, policy=policy)
        flops[math] = 2 * n ** 3 / min(m.device_s)
        del a, b, out
    src = torch.ones(copy_bytes, device=device, dtype=torch.uint8)
    dst = torch.empty_like(src)
    m = measure(lambda: dst.copy_(src), timer=timer, policy=policy)
    del src, dst
    return Peaks(device=device, machine_key=machine_key(device), device_name=device_name(device),
                 threads=torch.get_num_threads() if device == "cpu" else 0, flops_per_s=flops,
                 bytes_per_s=2 * copy_bytes / min(m.device_s), source="quick probe" if quick else "probe",
                 measured_utc=datetime.now(timezone.utc).isoformat(timespec="seconds"))


def _entry(threads: int, quick: bool) -> str:
    return f"{'quick-' if quick else ''}threads={threads}"


def load_cache(path: Path) -> dict:
    """A cache file's entries ({} when missing); BenchError when it is corrupt or of another schema."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BenchError(Problem(where=str(path), expected="a peaks cache (JSON)", found=type(exc).__name__)) from None
    if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
        raise BenchError(Problem(where=str(path), field="schema_version", expected=str(SCHEMA_VERSION),
                                 found=repr(data.get("schema_version") if isinstance(data, dict) else data)[:40]))
    return data.get("entries", {})


def save_cache(path: Path, entries: dict) -> None:
    from bench.store.runs import write_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps({"schema_version": SCHEMA_VERSION, "entries": entries}, indent=2) + "\n")


def peaks_for(device: str, *, threads: int = 0, quick: bool = False, refresh: bool = False,
              cache_dir: Path = PEAKS_DIR, overrides: dict | None = None, timer=None) -> Peaks:
    """This machine's peaks for `device` (with `threads` CPU threads, 0 = torch's current count).

    Order: a config override (PEAKS entry keyed by machine key or device), then the cache (a full probe
    serves quick requests too), then a new probe, which is cached. `refresh` skips the cache.
    """
    with applied(Variant(threads=threads if device == "cpu" else 0)):
        threads = torch.get_num_threads() if device == "cpu" else 0
        key = machine_key(device)
        for name in (key, device):
            if overrides and name in overrides:
                return from_json(overrides[name], where=f"PEAKS['{name}']", default=dict(
                    device=device, machine_key=key, device_name=device_name(device), threads=threads, source="config"))
        path = cache_dir / f"{key}.json"
        entries = load_cache(path)
        for entry in ([] if refresh else [_entry(threads, False)] + ([_entry(threads, True)] if quick else [])):
            if entry in entries:
                return from_json(entries[entry], where=f"{path} {entry}")
        peaks = probe(device, quick=quick, timer=timer)
        save_cache(path, {**entries, _entry(threads, quick): asdict(peaks)})
        return peaks


def load_overrides(spec: str) -> dict:
    """A config module's PEAKS dict (device or machine key -> {"flops_per_s": {...}, "bytes_per_s": ...})."""
    from bench.suite.config import _display, _import, resolve

    path = resolve(spec)
    peaks = getattr(_import(path), "PEAKS", None)
    if not isinstance(peaks, dict) or not peaks:
        raise BenchError(Problem(where=_display(path), field="PEAKS", found=type(peaks).__name__,
                                 expected='a dict such as {"cuda": {"flops_per_s": {"float32": 5e13}, "bytes_per_s": 3e12}}'))
    for name, entry in peaks.items():
        from_json(entry, where=f"{_display(path)}: PEAKS[{name!r}]",  # validate every entry now
                  default=dict(device=str(name), machine_key=str(name), device_name="", threads=0))
    return peaks
