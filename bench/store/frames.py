"""Records -> tidy pandas frames: one results row per row identity (its records from every worker process
pooled), one samples row per kept sample (long format, with the process that took it)."""
from __future__ import annotations

import pandas as pd

from bench.measure.record import Record
from bench.schema import FAILED, KERNEL_COLUMNS, KEY_COLUMNS, RESULT_COLUMNS, SAMPLE_COLUMNS, RowKey
from bench.store.summary import summarize_rows


def _shape(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]"


def _row(r: Record) -> dict:
    """The row's declaration and how it ran, from one record; the statistics come from the samples
    (bench.store.summary)."""
    p, w = r.plan, r.plan.workload
    row = dict.fromkeys(RESULT_COLUMNS)
    flops = p.flops if r.flops is None else r.flops
    bytes_moved = p.bytes_moved if r.bytes_moved is None else r.bytes_moved
    row.update(
        workload=w.name, device=r.device, dtype=r.key.dtype, status=r.status, reason=r.reason,
        input_shape=_shape(w.input_shape), output_shape=_shape(p.output_shape), params=p.params, flops=flops,
        bytes=bytes_moved, threads=r.threads, device_name=r.device_name, tags=",".join(w.tags),
        source=p.source, note=w.note, threshold=w.threshold, variant=r.variant.name,
        max_rel_diff=r.max_rel_diff, math=r.math or None, cache=r.cache, math_from=r.math_from or None,
        arithmetic_intensity=flops / bytes_moved if bytes_moved else None,
        inputs=w.inputs_text, definition=p.fingerprint(r.variant.name, r.key.dtype), **_origin(w),
    )
    row["pass"] = r.variant.pass_name  # "pass" is a keyword: not usable in update(...)
    m = r.measurement
    if m is not None:
        row.update(calls_per_sample=m.calls_per_sample, warmup_calls=m.warmup_calls, first_call_s=m.first_call_s,
                   stop_reason=m.stop_reason)
    return row


def _origin(w) -> dict:
    """kind, model, count, paths and module_type of a row made by bench.layers (a hand-written row: "", "", 1)."""
    o = getattr(w, "origin", None)
    if o is None:
        return dict(kind="", model="", count=1, paths="", module_type="")
    return dict(kind=o.kind, model=o.model, count=o.count, paths=";".join(o.paths), module_type=o.module_type)


def _failed(records: list[Record]) -> Record | None:
    """The first record of a row that failed (a row that fails in any of its processes is failed; skipped too). A
    counting worker's failure (process < 0, --metric instructions) costs the row its count, not its times, when
    timing processes measured it."""
    timed = [r for r in records if r.process is None or r.process >= 0]
    return next((r for r in (timed or records) if r.status in FAILED), None)


def to_frame(records: list[Record]) -> pd.DataFrame:
    """One tidy row per row identity, columns schema.RESULT_COLUMNS, times in seconds, in the order rows first
    appear. A row measured by several processes is one row: its statistics come from all their samples; it is
    failed (with that process's status and reason) when any process failed."""
    by_key: dict[RowKey, list[Record]] = {}
    for r in records:
        by_key.setdefault(r.key, []).append(r)
    frame = pd.DataFrame([group_row(group) for group in by_key.values()], columns=RESULT_COLUMNS)
    return summarize_rows(frame, to_samples(records))


def group_row(group: list[Record]) -> dict:
    """The results row of one row identity from the records of its processes, before the statistics of its
    samples (bench.store.summary.row_summary) are written into it."""
    bad = _failed(group)
    row = _row(bad or group[0])
    if bad is not None and len(group) > 1:
        row["reason"] = f"in process {bad.process} ({len(group)} measured the row): {bad.reason}"
    counts = [r.instructions for r in group if r.instructions is not None]
    if counts:  # --metric instructions: the lowest of the layouts' counts (bench.measure.instructions.LAYOUTS)
        row["instructions"] = float(min(counts))
        row["instructions_spread"] = max(counts) / min(counts) - 1 if min(counts) > 0 else float("nan")
    peaks = [r.peak_memory_bytes for r in group if r.peak_memory_bytes is not None]
    if peaks:  # the most any of its processes held
        row["peak_memory_bytes"] = max(peaks)
    planned = [r.planned_peak_bytes for r in group if r.planned_peak_bytes is not None]
    if planned:
        row["planned_peak_bytes"] = planned[0]
    compiled = [r for r in group if r.compile_s is not None]
    if compiled:  # each process compiled the row afresh: the median time, the fewest graphs
        row["compile_s"] = float(pd.Series([r.compile_s for r in compiled]).median())
        row["graphs"] = min(r.graphs for r in compiled)
    row.update(_hardware(group))
    profiled = next((r.profile for r in group if r.profile is not None), None)
    if profiled is not None:  # one process's profile stands for the row
        row.update(top_kernels=profiled.top(), tensor_cores=profiled.tensor_cores, tf32=profiled.tf32)
    return row


def _hardware(group: list[Record]) -> dict:
    """The row's hardware state over its processes: median clocks, power and CPU frequency, the hottest
    temperature, every throttle reason seen, the mean share of throttled samples."""
    states = [r.hardware for r in group if r.hardware is not None]
    out: dict = {}
    for name in ("cpu_mhz", "sm_clock_mhz", "mem_clock_mhz", "power_w", "throttled_share"):
        values = [getattr(s, name) for s in states if getattr(s, name) is not None]
        if values:
            out[name] = float(pd.Series(values).mean() if name == "throttled_share" else pd.Series(values).median())
    temps = [s.temperature_c for s in states if s.temperature_c is not None]
    if temps:
        out["temperature_c"] = max(temps)
    reasons = sorted({x for s in states for x in s.throttle.split(",") if x})
    if reasons:
        out["throttle"] = ",".join(reasons)
    return out


def to_kernels(records: list[Record]) -> pd.DataFrame:
    """--profile: the kernels (CUDA) or operators (CPU) of one call of each profiled row, long format
    (schema.KERNEL_COLUMNS), from the first process that profiled the row."""
    rows, seen = [], set()
    for r in records:
        if r.profile is None or r.key in seen:
            continue
        seen.add(r.key)
        k = r.key
        rows += [dict(workload=k.workload, device=k.device, dtype=k.dtype, variant=k.variant, kernel=x.name,
                      calls=x.calls, time_s=x.time_s, share=x.share) for x in r.profile.kernels]
    return pd.DataFrame(rows, columns=KERNEL_COLUMNS)


def to_samples(records: list[Record]) -> pd.DataFrame:
    """Raw per-call times, one row per sample (long format), columns schema.SAMPLE_COLUMNS."""
    rows = []
    for r in records:
        if r.measurement is None:
            continue
        m, k = r.measurement, r.key
        for i, (d, h, e) in enumerate(zip(m.device_s, m.host_s, m.enqueue_s)):
            rows.append(dict(workload=k.workload, device=k.device, dtype=k.dtype, sample=i, device_s=d, host_s=h,
                             enqueue_s=e, calls=m.calls_per_sample, variant=k.variant, process=r.process))
    frame = pd.DataFrame(rows, columns=SAMPLE_COLUMNS)
    if len(frame):  # numbered per row across its processes, as rounds pooled are
        frame["sample"] = frame.groupby(list(KEY_COLUMNS), sort=False).cumcount()
    return frame
