"""Reading runs back and comparing them from Python."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.gate.baseline import load_noise
from bench.gate.compare import Comparison, compare_runs
from bench.gate.rule import Rule
from bench.store.folder import Run
from bench.store.runs import load


def comparison(baseline: str | Path | Run, candidate: str | Path | Run, *, threshold: float = 0.10,
               allow_env_mismatch: bool = False, allow_missing: bool = False,
               allow_incomplete: bool = False, allow_failed: bool = False, stored_baseline: bool = False,
               metric: str = "auto") -> Comparison:
    """Compare two runs (paths as `load` takes them, or Run objects) with the gate's rule. A baseline folder
    from the store may hold noise.csv (from `bench calibrate`): its per-row noise then widens thresholds.

    Fails closed (BenchError): a run not marked complete unless allow_incomplete, a candidate lacking rows the
    baseline has unless allow_missing, environments that differ unless allow_env_mismatch (see compare_runs).
    stored_baseline: the baseline was measured at another time; a machine that differs as a whole is then reported
    (Comparison.machine_differs) instead of failing rows. Runs of one `bench ab` job are judged paired. metric:
    "instructions" judges the instruction counts of runs made with metric="instructions" instead of times, "time" the
    times alone, "auto" (the default) both combined where a row has counts on both sides (bench.gate.combined)."""
    base = baseline if isinstance(baseline, Run) else load(baseline)
    cand = candidate if isinstance(candidate, Run) else load(candidate)
    noise = load_noise(base.source) if base.source is not None else {}
    return compare_runs(base, cand, rule=Rule(threshold=threshold), allow_env_mismatch=allow_env_mismatch,
                        noise=noise, allow_missing=allow_missing, allow_incomplete=allow_incomplete,
                        allow_failed=allow_failed, stored_baseline=stored_baseline, metric=metric)


def compare(baseline: str | Path | Run, candidate: str | Path | Run, *, threshold: float = 0.10,
            allow_env_mismatch: bool = False, allow_missing: bool = False,
            allow_incomplete: bool = False, allow_failed: bool = False) -> pd.DataFrame:
    """The verdicts of `comparison` as a DataFrame: one row per row both runs have (workload, device, dtype,
    variant, verdict in slower/changed/unsure/same/faster, reason, medians, ratio and its 99% interval, p_value,
    detectable_ratio, cause (why a row is unsure), count_ratio, ...)."""
    return comparison(baseline, candidate, threshold=threshold, allow_env_mismatch=allow_env_mismatch,
                      allow_missing=allow_missing, allow_incomplete=allow_incomplete,
                      allow_failed=allow_failed).frame
