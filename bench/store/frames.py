"""Records -> tidy pandas frames: one results row per record, one samples row per kept sample (long format)."""
from __future__ import annotations

import pandas as pd

from bench.measure.record import Record
from bench.schema import RESULT_COLUMNS, SAMPLE_COLUMNS, is_launch_bound
from bench.stats import NOISY_REL_IQR, summarize


def _shape(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]"


def _row(r: Record) -> dict:
    p, w = r.plan, r.plan.workload
    row = dict.fromkeys(RESULT_COLUMNS)
    flops = p.flops if r.flops is None else r.flops
    bytes_moved = p.bytes_moved if r.bytes_moved is None else r.bytes_moved
    row.update(
        workload=w.name, device=r.device, dtype=r.key.dtype, status=r.status, reason=r.reason,
        input_shape=_shape(w.input_shape), output_shape=_shape(p.output_shape), params=p.params, flops=flops,
        bytes=bytes_moved, threads=r.threads, device_name=r.device_name, tags=",".join(w.tags),
        source=p.source, note=w.note, threshold=w.threshold, variant=r.variant.name,
        max_rel_diff=r.max_rel_diff, math=r.math or None,
        arithmetic_intensity=flops / bytes_moved if bytes_moved else None,
    )
    row["pass"] = r.variant.pass_name  # "pass" is a keyword: not usable in update(...)
    m = r.measurement
    if m is None:
        return row
    s, host, enq = summarize(m.device_s), summarize(m.host_s), summarize(m.enqueue_s)
    row.update(
        median_s=s.median_s, iqr_s=s.iqr_s, mean_s=s.mean_s, std_s=s.std_s, min_s=s.min_s, max_s=s.max_s,
        n_samples=s.n_samples, calls_per_sample=m.calls_per_sample, rel_iqr=s.rel_iqr,
        noisy=bool(s.rel_iqr > NOISY_REL_IQR),
        host_median_s=host.median_s, host_iqr_s=host.iqr_s, enqueue_median_s=enq.median_s,
        launch_bound=is_launch_bound(device=r.device, median_s=s.median_s, enqueue_median_s=enq.median_s),
        flops_per_s=flops / s.median_s if s.median_s > 0 else None,
        bytes_per_s=bytes_moved / s.median_s if s.median_s > 0 else None,
        warmup_calls=m.warmup_calls, first_call_s=m.first_call_s, stop_reason=m.stop_reason,
    )
    return row


def to_frame(records: list[Record]) -> pd.DataFrame:
    """One tidy row per record, columns schema.RESULT_COLUMNS, times in seconds."""
    return pd.DataFrame([_row(r) for r in records], columns=RESULT_COLUMNS)


def to_samples(records: list[Record]) -> pd.DataFrame:
    """Raw per-call times, one row per sample (long format), columns schema.SAMPLE_COLUMNS."""
    rows = []
    for r in records:
        if r.measurement is None:
            continue
        m, k = r.measurement, r.key
        for i, (d, h, e) in enumerate(zip(m.device_s, m.host_s, m.enqueue_s)):
            rows.append(dict(workload=k.workload, device=k.device, dtype=k.dtype, sample=i, device_s=d, host_s=h,
                             enqueue_s=e, calls=m.calls_per_sample, variant=k.variant))
    return pd.DataFrame(rows, columns=SAMPLE_COLUMNS)
