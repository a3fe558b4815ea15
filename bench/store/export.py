"""A run folder as pytest-benchmark JSON, so that pytest-benchmark's own `compare`, github-action-benchmark
and Bencher can read our runs.

The layout is what pytest-benchmark 4-5 saves with --benchmark-json / --benchmark-autosave:
{"machine_info", "commit_info", "benchmarks": [{"group", "name", "fullname", "params", "param",
"extra_info", "options", "stats": {min, max, mean, stddev, rounds, median, iqr, q1, q3, iqr_outliers,
stddev_outliers, outliers, ld15iqr, hd15iqr, ops, total, data, iterations}}], "datetime", "version"}.
One round is one of our samples (per-call seconds, averaged over `calls_per_sample` calls, which
pytest-benchmark calls iterations). Names match tests/benchmarks, so exports and pytest runs line up.
"""
from __future__ import annotations

import math
import statistics
from bisect import bisect_left, bisect_right

import pandas as pd

from bench.schema import KEY_COLUMNS, OK, RowKey
from bench.store.folder import Run

PYTEST_BENCHMARK_VERSION = "5.2.3"  # the version whose layout this follows (and whose loader the tests run)
TEST_FILE = "tests/benchmarks/test_config_workloads.py"


EXTRA_INFO = ("dtype", "input_shape", "inputs", "flops", "bytes", "device_name", "threads", "launch_bound")


def _plain(value):
    """A pandas cell as a JSON-ready Python value (None for missing, int/float/bool for numpy scalars)."""
    if pd.isna(value):
        return None
    return value.item() if hasattr(value, "item") else value


def _quartiles(data: list[float]) -> tuple[float, float]:
    """q1 and q3 exactly as pytest_benchmark.stats.Stats computes them (Wikipedia's methods 3 and 2),
    written out because pytest-benchmark is not a runtime dependency and numpy's quantiles differ."""
    s, n = sorted(data), len(data)
    if n == 1:
        return s[0], s[0]
    if n % 2:
        k, r = n // 4, n % 4
        if r == 1:
            return 0.25 * s[k - 1] + 0.75 * s[k], 0.75 * s[3 * k] + 0.25 * s[3 * k + 1]
        return 0.75 * s[k] + 0.25 * s[k + 1], 0.25 * s[3 * k + 1] + 0.75 * s[3 * k + 2]
    return statistics.median(s[: n // 2]), statistics.median(s[n // 2:])


def pytest_benchmark_stats(data: list[float], *, iterations: int) -> dict:
    """pytest-benchmark's `stats` dict for per-round seconds `data` (same fields and formulas)."""
    s, n = sorted(data), len(data)
    mean = statistics.mean(data)
    stddev = statistics.stdev(data) if n > 1 else 0
    q1, q3 = _quartiles(data)
    iqr = q3 - q1
    low, high = q1 - 1.5 * iqr, q3 + 1.5 * iqr
    iqr_out = sum(1 for v in data if v < low or v > high)
    std_out = sum(1 for v in data if v < mean - stddev or v > mean + stddev)
    pos = bisect_right(s, high)
    total = math.fsum(data)
    return {
        "min": s[0], "max": s[-1], "mean": mean, "stddev": stddev, "rounds": n, "median": statistics.median(data),
        "iqr": iqr, "q1": q1, "q3": q3, "iqr_outliers": iqr_out, "stddev_outliers": std_out,
        "outliers": f"{std_out};{iqr_out}",
        "ld15iqr": s[0] if n == 1 else s[bisect_left(s, low)],
        "hd15iqr": s[0] if n == 1 else (s[-1] if pos == n else s[pos]),
        "ops": n / total if total else 0, "total": total, "data": list(data), "iterations": iterations,
    }


def param_id(key: RowKey) -> str:
    """The pytest parameter id of a row: workload-variant-device-dtype (as tests/benchmarks uses)."""
    return "-".join((key.workload, key.variant, key.device, key.dtype))


def to_pytest_benchmark(run: Run) -> dict:
    """The JSON document (as a dict) for one run; rows that did not run are left out, as
    pytest-benchmark leaves out benchmarks that raised."""
    results, samples, env = run.results, run.samples, run.env
    commit = str(env.get("git_commit") or "unversioned")
    benchmarks = []
    grouped = {RowKey(*k): g for k, g in samples.groupby(list(KEY_COLUMNS), sort=False)}
    for _, row in results[results["status"] == OK].iterrows():
        key = RowKey.of(row)
        group = grouped.get(key)
        if group is None or group.empty:
            continue
        param = param_id(key)
        data = [float(v) for v in group.sort_values("sample")["device_s"]]
        calls = int(group["calls"].iloc[0]) if "calls" in group else 1
        benchmarks.append({
            "group": f"{row['device']}",
            "name": f"test_workload[{param}]",
            "fullname": f"{TEST_FILE}::test_workload[{param}]",
            "params": key.as_dict(),
            "param": param,
            "extra_info": {k: _plain(row[k]) for k in EXTRA_INFO if k in row},
            "options": {"disable_gc": False, "timer": "cuda events" if row["device"] == "cuda" else "perf_counter",
                        "min_rounds": len(data), "max_time": None, "min_time": None, "warmup": True},
            "stats": pytest_benchmark_stats(data, iterations=calls),
        })
    return {
        "machine_info": {
            "node": env.get("host", ""), "processor": env.get("cpu_name", ""), "machine": "",
            "python_implementation": "CPython", "python_version": env.get("python", ""),
            "release": "", "system": str(env.get("platform", "")).split("-")[0],
            "cpu": {"brand_raw": env.get("cpu_name", ""), "count": env.get("cpu_count")},
            "torch": env.get("torch", ""), "cuda": env.get("cuda", ""), "cuda_device": env.get("cuda_device", ""),
        },
        "commit_info": {"id": commit.removesuffix("-dirty"), "time": None, "author_time": None,
                        "dirty": commit.endswith("-dirty"), "project": "layerbench", "branch": "(unknown)"},
        "benchmarks": benchmarks,
        "datetime": env.get("finished_utc") or env.get("time_utc", ""),
        "version": PYTEST_BENCHMARK_VERSION,
    }
