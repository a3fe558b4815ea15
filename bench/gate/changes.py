"""Change points in a row's history: where, over runs, its median moved to another level and stayed there.

The pairwise gate compares two runs and cannot see creep below its detectable change (five commits of +3% each pass
it one by one). Over many runs those steps add up to a level the series holds, which a change-point search finds.
The search is ruptures' kernel change-point detection with the linear kernel (least squares, solved exactly by PELT
in ruptures' C code, fast enough for series of thousands of runs), not hand-written, on the log of the per-run
medians (a ratio is a difference of logs) scaled by the series' own noise: sigma from the median absolute
difference of consecutive runs, which a step barely moves. Least squares is thrown by a single odd run (a busy
machine), so each run's distance from its segment's median is first clipped to CLIP_SIGMAS sigma, the segments
found again, until they hold (at most 3 passes). The penalty per change is PENALTY_PER_LOG_N * log(n).

Plain least squares puts false change points in steady series with heavy-tailed noise; the clipping and a penalty
of 5 log n hold them off while a real step is still found at its run (docs/history.md; tests/perf/history_eval.py
measures the search on real runs). ruptures' l1 cost is as robust but far slower. A change also has to be worth
telling: at least MIN_CHANGE between the medians of the segments on either side, each at least MIN_RUNS runs long.
`open_store` opens the history store the reading commands (`history`, the site) judge, their statistic checked.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from bench.errors import BenchError, Problem
from bench.schema import KEY_COLUMNS, OK
from bench.store.history import Store, open_for

IDENTITY = (*KEY_COLUMNS, "machine_key")  # a trend: one row identity on one machine type
MIN_RUNS = 3  # runs on each side of a change: a single odd run is not a change of level
MIN_CHANGE = 0.02  # 2%: smaller moves of a median between runs are not reported
PENALTY_PER_LOG_N = 5.0
CLIP_SIGMAS = 3.0
PASSES = 3
NOISE_FLOOR = 0.002  # sigma of log medians at least 0.2%: deterministic metrics (instructions) do not divide by 0

CHANGE_COLUMNS = [*IDENTITY, "run_id", "git_commit", "time_utc", "position", "n_runs", "before_median_s",
                  "after_median_s", "ratio", "raw_ratio", "direction", "earliest_position", "earliest_run_id",
                  "earliest_commit", "latest_position"]
# Where exactly a change starts is uncertain when runs around it are noisy: every start whose two-segment fit is
# within LOCATION_SLACK (in units of the series' noise variance) of the best one is as likely. 6.63 is the 99%
# point of chi-square with one degree of freedom, the likelihood-ratio rule for one parameter.
LOCATION_SLACK = 6.63


def noise(log_medians: np.ndarray) -> float:
    """The run-to-run sigma of a series of log medians, robust to steps: 1.4826 x the median absolute consecutive
    difference, over sqrt(2) (a difference of two runs has twice a run's variance)."""
    if len(log_medians) < 3:
        return NOISE_FLOOR
    diffs = np.abs(np.diff(log_medians))
    return max(1.4826 * float(np.median(diffs)) / math.sqrt(2), NOISE_FLOOR)


def _levels(y: np.ndarray, cuts: list[int]) -> np.ndarray:
    """Each run's segment median."""
    edges = [0, *cuts, len(y)]
    return np.concatenate([np.full(b - a, np.median(y[a:b])) for a, b in zip(edges, edges[1:])])


def breakpoints(log_medians: np.ndarray, *, min_runs: int = MIN_RUNS, min_change: float = MIN_CHANGE,
                penalty_per_log_n: float = PENALTY_PER_LOG_N) -> list[int]:
    """Positions where a new level starts (the index of its first run), by kernel change-point detection on the
    clipped, scaled series, keeping changes of at least min_change between neighbouring segments' medians."""
    import ruptures

    y = np.asarray(log_medians, dtype=float)
    n = len(y)
    if n < 2 * min_runs:
        return []
    sigma = noise(y)
    cuts: list[int] = []
    for _ in range(PASSES):
        level = _levels(y, cuts)
        scaled = (level + np.clip(y - level, -CLIP_SIGMAS * sigma, CLIP_SIGMAS * sigma)) / sigma
        found = ruptures.KernelCPD(kernel="linear", min_size=min_runs, jump=1).fit(scaled.reshape(-1, 1)).predict(
            pen=penalty_per_log_n * math.log(n))
        found = [int(c) for c in found if c < n]
        if found == cuts:
            break
        cuts = found
    # a change smaller than min_change is merged into its neighbours, then the levels are measured again
    while True:
        edges = [0, *cuts, n]
        levels = [float(np.median(y[a:b])) for a, b in zip(edges, edges[1:])]
        steps = [abs(levels[i + 1] - levels[i]) for i in range(len(cuts))]
        if not steps or min(steps) >= math.log1p(min_change):
            return cuts
        cuts.pop(int(np.argmin(steps)))


def locate(log_medians: np.ndarray, cuts: list[int], *, min_runs: int = MIN_RUNS) -> list[tuple[int, int]]:
    """For each change (a position from breakpoints), the first and last position where it may start: every start
    between its neighbouring changes whose two-segment fit is within LOCATION_SLACK of the best. The fit of a start
    is the clipped least squares of the search: each run's distance from its segment's median, in sigma, squared
    and capped at CLIP_SIGMAS squared (one odd run costs the same wherever the start is put)."""
    y = np.asarray(log_medians, dtype=float)
    sigma = noise(y)
    edges, out = [0, *cuts, len(y)], []

    def cost(part: np.ndarray) -> float:
        return float(np.minimum(((part - np.median(part)) / sigma) ** 2, CLIP_SIGMAS ** 2).sum())

    for i, _ in enumerate(cuts):
        a, b = edges[i], edges[i + 2]
        starts = list(range(a + min_runs, b - min_runs + 1))
        fits = np.array([cost(y[a:c]) + cost(y[c:b]) for c in starts])
        near = [c for c, fit in zip(starts, fits) if fit <= fits.min() + LOCATION_SLACK]
        out.append((min(near), max(near)))
    return out


# The per-run value a trend follows: the median of the row's fastest worker process (the default), the trimmed
# mean of its process medians (bench.store.history.process_statistics), or the median of all its samples. On a
# shared machine a process can run in a slow speed mode for its whole life, and the pooled median jumps with the
# mix a run drew; the fastest process's median is what the code does when the machine lets it, so it is the
# default (docs/history.md; tests/perf/history_eval.py compares the three on real runs).
STATISTICS = {"fastest": "fastest_process_median_s", "trimmed": "trimmed_process_mean_s", "median": "median_s"}

# Relative to the suite: on a shared machine a whole run is often slower or faster (a neighbour's job, another
# host), every row with it, for a run or for hours, and a row's own series shows that as a level. A row's value
# in a run is therefore divided by the run's suite factor: the median, over the run's other rows, of how far each
# is from its own level (its trend's median at first, then its segments' medians once found, SUITE_PASSES times).
# The median ignores the few rows that really changed in a commit. A change that moves most of the suite at once
# (a torch upgrade, another machine) moves the factor instead, and is reported once as a change of SUITE.
RUN = ("run_id", "device", "machine_key")  # the rows measured together, which share a suite factor
MIN_SUITE_ROWS = 5  # a run with fewer rows (or a --filter that leaves fewer) is judged on its own values
SUITE_PASSES = 2
SUITE = "(whole suite)"  # the workload named in a change of the suite factor


def _segment_levels(y: np.ndarray, groups: dict, cuts: dict) -> np.ndarray:
    level = np.empty_like(y)
    for key, idx in groups.items():
        level[idx] = _levels(y[idx], cuts.get(key, []))
    return level


def suite_factors(frame: pd.DataFrame, residual: np.ndarray) -> np.ndarray:
    """Each row's log suite factor: the median residual (log value minus its own level) over the rows of its run
    (RUN), or 0 where the run has fewer than MIN_SUITE_ROWS rows."""
    keys = [frame[c].to_numpy() for c in RUN]
    grouped = pd.Series(residual).groupby(keys)
    factor = grouped.transform("median").to_numpy()
    return np.where(grouped.transform("size").to_numpy() >= MIN_SUITE_ROWS, factor, 0.0)


def trend_values(history: pd.DataFrame, *, statistic: str = "fastest", relative: bool = True,
                 **options) -> tuple[pd.DataFrame, dict]:
    """The ok rows of a history frame in run order, with `value` (the statistic followed), `suite_factor` (1 when
    not relative or too few rows), `relative_value` (value / suite_factor), `suite_rows` (the rows of its run read)
    and `relative` (whether it was judged relative to its run's suite), and each trend's change points
    (identity -> positions in its series, by breakpoints on the log relative values)."""
    history = history.assign(value=pd.to_numeric(history[STATISTICS[statistic]], errors="coerce").fillna(
        pd.to_numeric(history["median_s"], errors="coerce")))
    ok = history[(history["status"] == OK) & (history["value"] > 0)]
    ok = ok.sort_values(["time_utc", "run_id"], kind="stable").reset_index(drop=True)
    y = np.log(ok["value"].to_numpy(dtype=float))
    groups = {key: idx for key, idx in ok.groupby(list(IDENTITY), sort=True).indices.items()}
    factor = np.zeros_like(y)
    if not relative:
        return ok.assign(suite_factor=1.0, relative_value=ok["value"], suite_rows=0, relative=False), {
            key: breakpoints(y[idx], **options) for key, idx in groups.items()}
    cuts: dict = {}  # the first pass measures each row against its trend's median
    for _ in range(SUITE_PASSES):
        factor = suite_factors(ok, y - _segment_levels(y - factor, groups, cuts))
        cuts = {key: breakpoints((y - factor)[idx], **options) for key, idx in groups.items()}
    sizes = ok.groupby(list(RUN))["run_id"].transform("size")
    ok = ok.assign(suite_factor=np.exp(factor), relative_value=np.exp(y - factor), suite_rows=sizes,
                   relative=sizes >= MIN_SUITE_ROWS)
    return ok, cuts


def change_points(history: pd.DataFrame, *, statistic: str = "fastest", relative: bool = True,
                  **options) -> pd.DataFrame:
    """One row (CHANGE_COLUMNS) per change point of every trend in a history frame (bench.store.history's
    columns): the run, commit and time where the new level starts, the medians of the segments before and after,
    `ratio` (the change relative to the rest of the suite, what was detected; with relative=False the raw one),
    `raw_ratio` (after / before) and whether the row got slower or faster; then the changes of the suite factor
    itself, per device and machine, as workload SUITE. Failed rows are left out of a trend. statistic: the
    per-run value followed (STATISTICS); rows stored without it (measured in one process) use the median."""
    return judge(history, statistic=statistic, relative=relative, **options)[1]


def judge(history: pd.DataFrame, *, statistic: str = "fastest", relative: bool = True,
          **options) -> tuple[pd.DataFrame, pd.DataFrame]:
    """trend_values' frame and change_points' changes of a history frame, computed once."""
    ok, cuts = trend_values(history, statistic=statistic, relative=relative, **options)
    out = []
    for key, trend in ok.groupby(list(IDENTITY), sort=True):
        out += _changes(dict(zip(IDENTITY, key)), trend, cuts[key], seconds=True)
    if relative:
        runs = ok[ok["relative"]].drop_duplicates(list(RUN))
        suite = runs.assign(value=runs["suite_factor"], relative_value=runs["suite_factor"])
        for (device, machine), trend in suite.groupby(["device", "machine_key"], sort=True):
            identity = dict(zip(IDENTITY, (SUITE, device, "", "", machine)))
            out += _changes(identity, trend, breakpoints(np.log(trend["value"].to_numpy()), **options),
                            seconds=False)
    return ok, pd.DataFrame(out, columns=CHANGE_COLUMNS)


def _changes(identity: dict, trend: pd.DataFrame, cuts: list[int], *, seconds: bool) -> list[dict]:
    values, relative = trend["value"].to_numpy(dtype=float), trend["relative_value"].to_numpy(dtype=float)
    edges, out = [0, *cuts, len(values)], []
    ranges = locate(np.log(relative), cuts)
    for i, cut in enumerate(cuts):
        earliest = trend.iloc[min(ranges[i][0], cut)]
        before, after = (float(np.median(values[a:b])) for a, b in ((edges[i], cut), (cut, edges[i + 2])))
        ratio = float(np.median(relative[cut:edges[i + 2]]) / np.median(relative[edges[i]:cut]))
        at = trend.iloc[cut]
        out.append(dict(identity, run_id=at["run_id"], git_commit=at["git_commit"], time_utc=at["time_utc"],
                        position=cut, n_runs=len(values), before_median_s=before if seconds else float("nan"),
                        after_median_s=after if seconds else float("nan"), ratio=ratio, raw_ratio=after / before,
                        direction="slower" if ratio > 1 else "faster", earliest_position=min(ranges[i][0], cut),
                        earliest_run_id=earliest["run_id"], earliest_commit=earliest["git_commit"],
                        latest_position=max(ranges[i][1], cut)))
    return out


def open_store(store: str | Path | None, *, statistic: str, where: str) -> Store:
    """The history store a reading command opens (never created by reading), its statistic checked first."""
    if statistic not in STATISTICS:
        raise BenchError(Problem(where=where, field="--statistic", expected=" or ".join(STATISTICS),
                                 found=repr(statistic)))
    opened = open_for(store, create=False)
    if opened is None:
        raise BenchError(Problem(where=where, field="--store", expected="a store", found="none"))
    return opened
