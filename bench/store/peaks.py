"""Peaks on disk: the per-machine cache (<root>/peaks/<machine_key>.json), a report's peaks.json, and a
config's PEAKS, all read into bench.measure.roofs.Peaks with one-line errors.

A config module may define `PEAKS = {"cuda": {"flops_per_s": {"float32": 51.6e12, "tf32": 369e12,
"bfloat16": 747e12}, "bytes_per_s": 3.0e12}}` (keys: a device or a machine key) to give the roofs instead of
measuring them.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from bench.errors import BenchError, Problem, WriteError, finite_number, is_number, strict_int
from bench.measure.roofs import Peaks
from bench.store.files import read_json_object, writable_folder, write_atomic

SCHEMA_VERSION = 1
TEXT_FIELDS = ("device", "machine_key", "device_name", "source", "measured_utc")


def _positive(value) -> bool:
    return is_number(value) and value > 0


def from_json(data: object, *, where: str, default: dict | None = None) -> Peaks:
    """Peaks from a JSON object or a config's PEAKS entry (with `default` filling device and machine fields)."""
    if not isinstance(data, dict):
        raise BenchError(Problem(where=where, expected="an object with flops_per_s and bytes_per_s",
                                 found=type(data).__name__))
    entry = {**(default or {}), **data}
    flops, bw = entry.get("flops_per_s"), entry.get("bytes_per_s")
    if not isinstance(flops, dict) or not flops or not all(_positive(v) for v in flops.values()):
        raise BenchError(Problem(where=where, field="flops_per_s", found=repr(flops)[:80],
                                 expected='a dict of positive FLOP/s per dtype, e.g. {"float32": 51.6e12}'))
    if not _positive(bw):
        raise BenchError(Problem(where=where, field="bytes_per_s", expected="a positive number of bytes per second",
                                 found=repr(bw)[:80]))
    for name in ("device", "machine_key"):
        if not isinstance(entry.get(name), str):
            raise BenchError(Problem(where=where, field=name, expected="a string", found=repr(entry.get(name))[:80]))
    for name in TEXT_FIELDS:
        if name in entry and not isinstance(entry[name], str):
            raise BenchError(Problem(where=where, field=name, expected="a string", found=repr(entry[name])[:80]))
    threads, load_avg = entry.get("threads", 0), entry.get("load_avg_1m")
    strict_int(threads, where=where, field="threads")
    if load_avg is not None and not is_number(load_avg):
        raise BenchError(Problem(where=where, field="load_avg_1m", expected="a finite number or null",
                                 found=repr(load_avg)[:80]))
    others, cores = entry.get("others_busy_cores"), entry.get("cores", 0)
    if others is not None:
        finite_number(others, where=where, field="others_busy_cores", expected="a number >= 0 or null")
    strict_int(cores, where=where, field="cores")
    # a hand-written file may omit the name
    text = {"device_name": "", **{f: entry[f] for f in TEXT_FIELDS if f in entry}}
    return Peaks(**text, threads=threads, load_avg_1m=load_avg, others_busy_cores=others, cores=cores,
                 flops_per_s={str(k): float(v) for k, v in flops.items()}, bytes_per_s=float(bw))


def peaks_dir(root: Path) -> Path:
    """The per-machine cache of probed peaks under a results root (--root): <root>/peaks."""
    return Path(root) / "peaks"


def cache_entry(threads: int, quick: bool) -> str:
    return f"{'quick-' if quick else ''}threads={threads}"


def load_cache(path: Path) -> dict:
    """A cache file's entries ({} when missing); BenchError when it is corrupt or of another schema."""
    if not path.is_file():
        return {}
    data = read_json_object(path, what="a peaks cache (JSON)")
    if data.get("schema_version") != SCHEMA_VERSION or not isinstance(data.get("entries", {}), dict):
        raise BenchError(Problem(where=str(path), field="schema_version", expected=str(SCHEMA_VERSION),
                                 found=repr(data.get("schema_version"))[:40]))
    return data.get("entries", {})


def cached(root: Path, key: str, *, threads: int, quick: bool = False) -> Peaks | None:
    """Peaks cached for a machine key and thread count (a full probe serves quick requests too), or None."""
    path = peaks_dir(root) / f"{key}.json"
    entries = load_cache(path)
    for entry in [cache_entry(threads, False)] + ([cache_entry(threads, True)] if quick else []):
        if entry in entries:
            return from_json(entries[entry], where=f"{path} {entry}")
    return None


def save_cached(root: Path, peaks: Peaks, *, quick: bool = False) -> Path:
    path = writable_folder(peaks_dir(root), option="--root") / f"{peaks.machine_key}.json"
    entries = load_cache(path)
    entries[cache_entry(peaks.threads, quick)] = asdict(peaks)
    try:
        return write_atomic(path, json.dumps({"schema_version": SCHEMA_VERSION, "entries": entries}, indent=2) + "\n")
    except OSError as exc:
        raise WriteError(Problem(where=str(path), field="--root", expected="a peaks cache bench can write",
                                 found=exc.strerror or type(exc).__name__)) from None


def read_peaks_file(path: Path) -> list[Peaks]:
    """A peaks.json written beside a report (or by hand): {"schema_version": 1, "peaks": [...]}; BenchError (one
    line naming the file and the entry) for a file that is not such an object or an entry missing a field."""
    data = read_json_object(path, what="a peaks.json")
    items = data.get("peaks")
    if not isinstance(items, list):
        raise BenchError(Problem(where=str(path), field="peaks", expected="a list", found=type(items).__name__))
    return [from_json(p, where=f"{path}: peaks[{i}]") for i, p in enumerate(items)]


def write_peaks_file(path: Path, peaks: list[Peaks]) -> Path:
    return write_atomic(path, json.dumps({"schema_version": SCHEMA_VERSION, "peaks": [asdict(p) for p in peaks]},
                                         indent=2) + "\n")


def config_peaks(peaks: object, *, where: str) -> dict[str, dict]:
    """A config module's PEAKS (device or machine key -> {"flops_per_s": {...}, "bytes_per_s": ...}), checked."""
    if not isinstance(peaks, dict) or not peaks:
        raise BenchError(Problem(where=where, field="PEAKS", found=type(peaks).__name__,
                                 expected='a dict such as {"cuda": {"flops_per_s": {"float32": 5e13}, '
                                 '"bytes_per_s": 3e12}}'))
    for name, entry in peaks.items():
        from_json(entry, where=f"{where}: PEAKS[{name!r}]",  # validate every entry now
                  default=dict(device=str(name), machine_key=str(name), device_name="", threads=0))
    return peaks


def given(peaks: dict[str, dict], *, key: str, device: str, threads: int, where: str) -> Peaks | None:
    """The config-given Peaks for a machine key or device, or None when PEAKS names neither."""
    name = key if key in peaks else device if device in peaks else None
    if name is None:
        return None
    return from_json(peaks[name], where=f"{where}: PEAKS[{name!r}]", default=dict(
        device=device, machine_key=key, device_name=device, threads=threads, source=f"config {where}"))
