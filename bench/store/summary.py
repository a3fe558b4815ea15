"""Each row's summary recomputed from its samples: the one place results.csv's statistics come from, whether the
samples were taken by several worker processes of one run or pooled from several rounds.

The samples of a row come from its worker processes (samples.csv "process"). Besides the median and IQR of all of
them, a row reports how many processes measured it, the spread within them (the median of each process's relative
IQR) and between them (the relative IQR of the per-process medians): on a shared machine a process can run slower
than another for its whole life, so the process, not the sample, is the unit of noise, and the gate's statistics
work on per-process medians (bench.gate.rule; docs/gate.md).

The headline figures (median_s, host_median_s, enqueue_median_s and what derives from them) are the median of
the per-process medians, with the interval of bench.stats.headline_interval (median_low_s, median_high_s): a
process that took more samples does not weigh more, and the gate reasons on the same per-process medians. The
spread figures (iqr_s, rel_iqr, mean_s, std_s, min_s, max_s, n_samples) stay those of all samples pooled: they
describe the samples. A row measured by one process has the median of its samples, the same statistic.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from bench.schema import KEY_COLUMNS, OK, RowKey, is_launch_bound
from bench.stats import NOISY_REL_IQR, headline_interval, summarize
from bench.stats import machine_decided as decided_by_machine
from bench.store.run_record import with_process
from bench.units import fmt_s


def concat_processes(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Samples of several runs (rounds, shards) as one frame, each run's worker processes numbered after the
    previous runs', so a process stays the unit of the gate's statistics."""
    out, offset = [], 0
    for samples in parts:
        part = with_process(samples)
        part = part.assign(process=pd.to_numeric(part["process"]) + offset)
        offset = int(part["process"].max()) + 1 if len(part) else offset
        out.append(part)
    return pd.concat(out, ignore_index=True)


def process_medians(group: pd.DataFrame) -> pd.Series:
    """The median per-call time of each process of one row's samples, indexed by process number (in order)."""
    g = with_process(group)[["process", "device_s"]].dropna()
    return g.groupby("process", sort=True)["device_s"].median()


def process_spread(group: pd.DataFrame) -> dict:
    """n_processes, rel_iqr_within (median over processes of each one's relative IQR; NaN for a process of one
    sample) and rel_iqr_between (relative IQR of the per-process medians; NaN with one process)."""
    g = with_process(group)
    per = g.groupby("process", sort=True)["device_s"]
    within = per.apply(lambda x: summarize(x.tolist()).rel_iqr if len(x) > 1 else np.nan).dropna()
    medians = process_medians(g)
    between = summarize(medians.tolist()).rel_iqr if len(medians) > 1 else np.nan
    return dict(n_processes=int(len(medians)), rel_iqr_within=float(within.median()) if len(within) else np.nan,
                rel_iqr_between=float(between))


def summarize_rows(results: pd.DataFrame, samples: pd.DataFrame) -> pd.DataFrame:
    """results with the summary columns of each ok row recomputed from its samples: median, spread, counts,
    the process spread, throughput and launch-bound. Rows that are not ok, or have no samples, are kept as they are."""
    groups = {RowKey(*k): g for k, g in with_process(samples).groupby(list(KEY_COLUMNS), sort=False)}
    return with_summaries(results, [row_summary(row, groups.get(RowKey.of(row)))
                                    for row in results.to_dict("records")])


def row_summary(row: Mapping, samples: pd.DataFrame | None) -> dict:
    """The summary columns of one results row from its samples (all of them, every process's); {} for a row that
    is not ok or has none."""
    if row["status"] != OK or samples is None or not len(samples):
        return {}
    g = with_process(samples)
    s = summarize(g["device_s"].tolist())
    medians = process_medians(g)
    median_s, low, high = headline_interval(medians.to_numpy(), confidence=HEADLINE_CONFIDENCE)
    values = dict(median_s=median_s, iqr_s=s.iqr_s, mean_s=s.mean_s, std_s=s.std_s, min_s=s.min_s,
                  max_s=s.max_s, n_samples=s.n_samples, rel_iqr=s.rel_iqr, noisy=bool(s.rel_iqr > NOISY_REL_IQR),
                  median_low_s=low, median_high_s=high, **process_spread(g), **machine_decided(row, medians))
    for column, name in (("host_s", "host"), ("enqueue_s", "enqueue")):
        if column in g.columns and g[column].notna().all():
            values[f"{name}_median_s"] = float(g.groupby("process", sort=True)[column].median().median())
            if name == "host":
                values["host_iqr_s"] = summarize(g[column].tolist()).iqr_s
    if "enqueue_median_s" in values:
        values["launch_bound"] = is_launch_bound(device=str(row["device"]), median_s=median_s,
                                                 enqueue_median_s=values["enqueue_median_s"])
    for column, total in (("flops_per_s", "flops"), ("bytes_per_s", "bytes")):
        if total in row and pd.notna(row.get(total)):
            values[column] = float(row[total]) / median_s
    return values


HEADLINE_CONFIDENCE = 0.95  # of median_low_s and median_high_s


def machine_decided(row: Mapping, medians: pd.Series) -> dict:
    """machine_decided (bench.stats.machine_decided: the row's processes too far apart for the layer to explain;
    the console and the report mark such a row, the gate does not judge it, its data is kept with status ok) and the
    row's note: the workload's own note, then the reason when the row is flagged (an earlier summary's replaced)."""
    m = medians[medians > 0]
    flagged = decided_by_machine(m.to_numpy())
    given = row.get("note")
    given = "" if given is None or given != given else str(given)
    own = given.split(MACHINE_NOTE)[0].removesuffix("; ")
    reason = (f"{MACHINE_NOTE} process medians from {fmt_s(float(m.min()))} to {fmt_s(float(m.max()))} "
              f"({m.max() / m.min():.0f}x)") if flagged else ""
    note = "; ".join(x for x in (own, reason) if x)
    return dict(machine_decided=bool(flagged), **({} if note == given else dict(note=note or None)))


MACHINE_NOTE = "machine-decided:"


def with_summaries(results: pd.DataFrame, summaries: list[dict]) -> pd.DataFrame:
    """A copy of results with each row's summary (row_summary, in row order) written into its columns."""
    out = results.copy()
    for label, values in zip(out.index, summaries):
        for column, value in values.items():
            if column in out.columns:
                out.at[label, column] = value
    return out
