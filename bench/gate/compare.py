"""Compare two runs row by row: a Verdict per row both runs have (bench.gate.rule decides, on the rows'
per-process medians), rows added or removed, and the environment settings that differ. Rows are matched on
their identity (bench.schema.RowKey); a row whose definition changed under its name is `changed`, not judged
(bench.gate.identity), and a row whose processes the machine decided (bench.stats.machine_decided, or results.csv
`machine_decided`) is `unsure`, not judged. An `unsure` row says why (Verdict.cause): the causes in CANNOT_JUDGE
mean this job could not judge the row, which the CLI does not let pass (exit 2).
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
import pandas as pd

from bench.errors import BenchError, Problem
from bench.gate.combined import decide_combined
from bench.gate.identity import definition_change
from bench.gate.machine import machine_differs, machine_reason
from bench.gate.rule import Figures, Rule, decide, decide_count, decide_paired, detectable, detectable_paired
from bench.measure.env import EnvDiff, env_differences
from bench.schema import FAILED, KEY_COLUMNS, NOT_APPLICABLE, OK, RowKey
from bench.store.folder import Run, check_run
from bench.store.summary import process_medians

# What a comparison judges (compare --metric): per-call times, instructions per call, or "auto": both combined where
# a row has counts on both sides (bench.gate.combined), times elsewhere.
METRICS = ("auto", "time", "instructions")
# Why a row is unsure (Verdict.cause): too few processes (pairs) on a side; the machine, not the layer, decided it;
# no samples (or counts) on a side; an interval too wide (noise); a row not ok on a side (--allow-failed, or failed in
# the baseline). The first three: this job could not judge the row.
FEW, MACHINE, EMPTY, NOISE, STATUS = "too few processes", "machine decided", "no data", "noise", "status"
CANNOT_JUDGE = frozenset({FEW, MACHINE, EMPTY})


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """One matched row. figures (bench.gate.rule.Figures): the ratio candidate / baseline (>1 slower; the
    Hodges-Lehmann ratio of process medians, the median of the pairs' ratios, or the ratio of instruction counts)
    with its interval at the rule's confidence and the test's p-value; the medians are per-call seconds (of all
    samples); threshold: the fraction this row was judged against; n_baseline, n_candidate: the processes on each
    side (the rule's unit); detectable_ratio: the smallest ratio this comparison could have called slower at the
    row's noise (inf: none); cause: why the row is unsure (FEW, MACHINE, EMPTY, NOISE or STATUS; "" for the other
    verdicts); count_ratio: instructions per call candidate / baseline where both sides have counts and the metric
    reads them (nan elsewhere).
    """

    workload: str
    device: str
    dtype: str
    variant: str
    verdict: str
    reason: str
    baseline_median_s: float
    candidate_median_s: float
    figures: Figures
    threshold: float
    threshold_source: str  # "default" | "workload" | "launch-bound" | "noise"
    n_baseline: int
    n_candidate: int
    detectable_ratio: float = float("inf")
    cause: str = ""
    count_ratio: float = float("nan")

    @property
    def judged(self) -> bool:
        """False for a row this job could not judge (unsure for a cause in CANNOT_JUDGE)."""
        return not (self.verdict == "unsure" and self.cause in CANNOT_JUDGE)

    @property
    def key(self) -> RowKey:
        return RowKey(self.workload, self.device, self.dtype, self.variant)

    @property
    def label(self) -> str:
        return self.key.label

    # The figures' fields read as the verdict's own, as the frame's columns name them.
    @property
    def ratio(self) -> float:
        return self.figures.ratio

    @property
    def ratio_low(self) -> float:
        return self.figures.ratio_low

    @property
    def ratio_high(self) -> float:
        return self.figures.ratio_high

    @property
    def p_value(self) -> float:
        return self.figures.p_value

    def as_row(self) -> dict:
        """The verdict as one row of Comparison.frame: VERDICT_COLUMNS, the figures spread into their own."""
        own = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "figures"}
        return {c: own[c] if c in own else getattr(self.figures, c) for c in VERDICT_COLUMNS}


# Comparison.frame's columns: the verdict's fields, with the figures' fields where `figures` stands.
VERDICT_COLUMNS = [c for f in fields(Verdict) for c in ([g.name for g in fields(Figures)] if f.name == "figures"
                                                         else [f.name])]


@dataclass(frozen=True, kw_only=True)
class Comparison:
    baseline: str
    candidate: str
    rule: Rule
    verdicts: tuple[Verdict, ...]
    added: tuple[str, ...]  # rows only in the candidate
    removed: tuple[str, ...]  # rows only in the baseline
    env_diffs: tuple[EnvDiff, ...]
    env_mismatch_allowed: bool
    notes: tuple[str, ...] = ()
    # rows whose variant cannot run on that device in both runs (status not-applicable): neither a verdict nor unsure
    not_applicable: tuple[str, ...] = ()
    paired: bool = False  # the two sides of one `bench ab` job: judged on the ratios of pairs of processes
    # with a stored baseline: why the machine itself seems to differ (the whole suite moved together, or the speed
    # probes disagree), else "". Then no verdict is about the code, and the gate does not fail on them.
    machine_differs: str = ""
    metric: str = "auto"  # what the verdicts judge (METRICS)

    @property
    def slower(self) -> tuple[Verdict, ...]:
        return tuple(v for v in self.verdicts if v.verdict == "slower")

    @property
    def changed(self) -> tuple[Verdict, ...]:
        """The rows whose definition changed under their name: not judged."""
        return tuple(v for v in self.verdicts if v.verdict == "changed")

    @property
    def unjudged(self) -> tuple[Verdict, ...]:
        """The rows this job could not judge (too few processes, the machine decided, no data on a side)."""
        return tuple(v for v in self.verdicts if not v.judged)

    @property
    def counted(self) -> bool:
        """Whether instruction counts entered any verdict."""
        return any(v.count_ratio == v.count_ratio for v in self.verdicts)

    @property
    def frame(self) -> pd.DataFrame:
        """One row per verdict, the columns of Verdict."""
        return pd.DataFrame([v.as_row() for v in self.verdicts], columns=VERDICT_COLUMNS)


def _by_key(run: Run) -> dict[RowKey, dict]:
    """The results rows by identity (check_run has refused duplicates)."""
    return {RowKey.of(row): row for row in run.results.to_dict("records")}


def _samples_by_key(run: Run) -> dict[RowKey, tuple[np.ndarray, pd.Series]]:
    """Each row's samples and its per-process medians (the rule's unit), indexed by process number."""
    s = run.samples
    out = {}
    for k, g in s.groupby(list(KEY_COLUMNS), sort=False):
        out[RowKey(*k)] = (g["device_s"].dropna().to_numpy(), process_medians(g))
    return out


def paired(base: Run, cand: Run) -> bool:
    """Whether two runs are the two sides of one `bench ab` job: their processes ran in pairs, side by side in
    time, and process k of one is the partner of process k of the other (env.json "ab": the same id, other sides)."""
    a, b = base.env.get("ab"), cand.env.get("ab")
    return (isinstance(a, dict) and isinstance(b, dict) and bool(a.get("id")) and a.get("id") == b.get("id")
            and a.get("side") == "baseline" and b.get("side") == "candidate")


def _threshold(row_b: dict, row_c: dict, *, rule: Rule, noise: float) -> tuple[float, str]:
    """The row's threshold and where it came from: its workload's own (candidate's config first), else
    the rule's default; widened to launch_bound_threshold for a row launch-bound in either run, and to
    noise_factor * noise when the calibrated noise asks for more."""
    own = next((float(r["threshold"]) for r in (row_c, row_b) if pd.notna(r.get("threshold"))), None)
    base, source = (own, "workload") if own is not None else (rule.threshold, "default")
    if any(str(r.get("launch_bound")).lower() == "true" for r in (row_b, row_c)) and rule.launch_bound_threshold > base:
        base, source = rule.launch_bound_threshold, "launch-bound"
    widened = rule.noise_factor * noise
    return (widened, "noise") if widened > base else (base, source)


def _status(row: dict) -> str:
    """A row's status, with its reason when it has one and did not run: "not-applicable (TF32 is a CUDA setting)"."""
    reason = row.get("reason")
    if row["status"] == OK or reason is None or pd.isna(reason) or not str(reason).strip():
        return str(row["status"])
    return f"{row['status']} ({str(reason).strip().splitlines()[0]})"


def _check_inputs(base: Run, cand: Run, names: tuple[str, str], rb: dict, rc: dict, *, allow_missing: bool,
                  allow_incomplete: bool) -> None:
    """The gate fails closed: BenchError (one line) for a run not marked complete, a candidate without rows, a
    candidate lacking rows the baseline has, or two runs with no row in common, unless the options allow it."""
    for name, run in zip(names, (base, cand)):
        if not run.complete and not allow_incomplete:
            found = f"complete: {run.env.get('complete')!r} ({run.env.get('incomplete_reason', 'not marked finished')})"
            raise BenchError(Problem(where=f"{name}/env.json", field="complete", found=found,
                                     expected="a run that finished (--allow-incomplete to compare anyway)"))
    if not rc:
        raise BenchError(Problem(where=f"{names[1]}/results.csv", field="rows", expected="at least one row to judge",
                                 found="none (a header only)"))
    missing = [k for k in rb if k not in rc]
    if missing and not allow_missing:
        raise BenchError(Problem(where=f"{names[1]}/results.csv", field="rows", found=f"{len(missing)} row(s) "
                                 f"missing, e.g. {missing[0].label}", expected=f"every row of {names[0]}/results.csv "
                                 "(--allow-missing to compare without them)"))
    if not any(k in rc for k in rb):
        raise BenchError(Problem(where=f"{names[1]}/results.csv", field="rows", expected=f"rows in common with "
                                 f"{names[0]}/results.csv", found="none: nothing to judge"))


def compare_runs(base: Run, cand: Run, *, rule: Rule = Rule(), allow_env_mismatch: bool = False,
                 noise: dict[tuple[str, ...], float] | None = None, allow_missing: bool = False,
                 allow_incomplete: bool = False, allow_failed: bool = False,
                 stored_baseline: bool = False, metric: str = "auto") -> Comparison:
    """Compare two runs. noise maps an identity (workload, device, dtype[, variant]) to its calibrated
    relative noise. A row not-applicable in both runs (a variant that cannot run on that device) gets no
    verdict: it is listed in `not_applicable`; not-applicable on one side only, it is `unsure` with both
    statuses.

    Fails closed, with a BenchError (one line naming the file, the row or field): a run that breaks the load
    checks (bench.store.folder.check_run, repeated here for runs built in memory), duplicate rows, a run not
    marked complete (unless allow_incomplete), a candidate with no rows, a candidate lacking rows the baseline
    has (unless allow_missing), a row that ran in the baseline but failed in the candidate (a timeout, an error,
    an out-of-memory: unless allow_failed, then it is `unsure`), no row in common, or blocking environment
    differences (unless allow_env_mismatch). Rows only in the candidate are listed as added, never an error.
    stored_baseline: the baseline was measured another time (a stored baseline): check whether the machine as a
    whole differs (machine_differs), which then keeps the gate from failing. metric (METRICS): "instructions" judges
    each row on its instructions per call (results.csv, --metric instructions) with decide_count instead of its
    times; "time" its times alone; "auto" both, combined, where a row has counts on both sides (bench.gate.combined),
    its times elsewhere."""
    if metric not in METRICS:
        raise BenchError(Problem(where="compare", field="--metric", expected=" or ".join(METRICS), found=repr(metric)))
    names = (str(base.source or "baseline"), str(cand.source or "candidate"))
    for name, run in zip(names, (base, cand)):
        check_run(run, name)
    rb, rc = _by_key(base), _by_key(cand)
    _check_inputs(base, cand, names, rb, rc, allow_missing=allow_missing, allow_incomplete=allow_incomplete)
    common = [k for k in rb if k in rc]
    diffs = env_differences(base.env, cand.env, devices={k.device for k in common})
    blocking = [d for d in diffs if d.blocking]
    if blocking and not allow_env_mismatch:
        d = blocking[0]
        raise BenchError(Problem(where=f"{names[1]}/env.json", field=d.field,
                                 expected=f"{d.baseline} as in {names[0]}/env.json "
                                 "(--allow-env-mismatch to compare anyway)",
                                 found=d.candidate))
    broken = [k for k in common if rb[k]["status"] == OK and rc[k]["status"] in FAILED]  # skipped included
    if broken and not allow_failed:
        k = broken[0]
        raise BenchError(Problem(where=f"{names[1]}/results.csv", workload=k.workload, field=f"status ({k.label})",
                                 expected=f"ok as in {names[0]} (--allow-failed to compare anyway)",
                                 found=_status(rc[k])))
    sb, sc = _samples_by_key(base), _samples_by_key(cand)
    is_paired = paired(base, cand)
    looks = tuple((cand.env.get("ab") or {}).get("looks") or ()) if is_paired else ()
    if looks and rule.looks is None:  # judged at the looks the job stopped its rows at, with their error rates
        rule = replace(rule, looks=looks)
    at_look = dict((cand.env.get("ab") or {}).get("pairs_per_row") or {}) if rule.looks else {}
    same_torch = base.env.get("torch") == cand.env.get("torch")
    noise = noise or {}
    verdicts, not_applicable = [], []
    for k in common:
        if rb[k]["status"] == NOT_APPLICABLE and rc[k]["status"] == NOT_APPLICABLE:
            not_applicable.append(k.label)
            continue
        threshold = _threshold(rb[k], rc[k], rule=rule, noise=noise.get(k.astuple(), noise.get(k.astuple()[:3], 0.0)))
        look = at_look.get(k.label)  # the look the row was left alone at: its share of the error rates, once
        row_rule = rule.at_pairs(look) if type(look) is int and look >= 1 else rule
        verdicts.append(_judge_row(k, (rb[k], rc[k]), (sb.get(k), sc.get(k)), threshold, names=names,
                                   rule=row_rule, metric=metric, is_paired=is_paired, same_torch=same_torch))
    notes = _notes(base, cand, names, allow_missing=allow_missing and any(k not in rc for k in rb), broken=broken,
                   blocking=blocking)
    judged = [v for v in verdicts if v.verdict != "changed" and v.cause != MACHINE]
    by_time = metric == "time" or (metric == "auto" and not any(v.count_ratio == v.count_ratio for v in verdicts))
    differs = (machine_differs(judged, base.env, cand.env, threshold=rule.threshold) if stored_baseline and by_time
               else "")
    if differs:
        notes.append(f"MACHINE DIFFERS from the stored baseline's ({differs}): these verdicts are about the machine, "
                     "not the code, and do not fail the gate; re-create the baseline on this machine type, or gate "
                     "with `bench ab` (both versions in one job)")
    return Comparison(
        baseline=names[0], candidate=names[1], rule=rule, verdicts=tuple(verdicts),
        added=tuple(k.label for k in rc if k not in rb), removed=tuple(k.label for k in rb if k not in rc),
        env_diffs=tuple(diffs), env_mismatch_allowed=allow_env_mismatch, notes=tuple(notes),
        not_applicable=tuple(not_applicable), paired=is_paired, machine_differs=differs, metric=metric)


def _count(row: dict) -> float:
    """A results row's instructions per call (nan without a count)."""
    return float(pd.to_numeric(row.get("instructions"), errors="coerce"))


def _by_time(ub: pd.Series, uc: pd.Series, *, threshold: float, rule: Rule, is_paired: bool) -> tuple:
    """(verdict, reason, figures, detectable ratio) from the two sides' per-process medians (paired: the
    processes of one number on both sides, as ratios)."""
    if is_paired:
        ratios = (uc / ub).to_numpy(dtype=float)
        return (*decide_paired(ratios, threshold=threshold, rule=rule),
                detectable_paired(ratios, threshold=threshold, rule=rule))
    return (*decide(ub.to_numpy(), uc.to_numpy(), threshold=threshold, rule=rule),
            detectable(ub.to_numpy(), uc.to_numpy(), threshold=threshold, rule=rule))


def _cause(verdict: str, given: str, n: int, *, rule: Rule, metric: str, is_paired: bool) -> str:
    """Why an unsure row is unsure (Verdict.cause): the cause already known, else from the processes (pairs) the
    row had on its smaller side; "" for a row not unsure."""
    if verdict != "unsure" or given:
        return given if verdict == "unsure" else ""
    if metric == "instructions" or n == 0:
        return EMPTY
    return FEW if n < (rule.min_pairs if is_paired else rule.min_processes) else NOISE


def _headline(medians: pd.Series, samples: np.ndarray) -> float:
    """A side's median per-call time as results.csv's median_s has it: the median of its process medians (of its
    samples where there are no processes)."""
    if len(medians):
        return float(np.median(medians))
    return float(np.median(samples)) if len(samples) else float("nan")


def _judge_row(k: RowKey, rows: tuple, samples: tuple, limit: tuple[float, str], *, names: tuple[str, str],
               rule: Rule, metric: str, is_paired: bool, same_torch: bool = True) -> Verdict:
    """One row's verdict from its two results rows, its two (all samples, per-process medians) pairs and its
    threshold with where that came from."""
    (row_b, row_c), (threshold, source) = rows, limit
    empty = (np.array([]), pd.Series(dtype=float))
    (xb, ub), (xc, uc) = (s if s is not None else empty for s in samples)
    if is_paired:
        both = ub.index.intersection(uc.index)
        ub, uc = ub[both], uc[both]
    counts = (_count(row_b), _count(row_c))
    counted = all(np.isfinite(c) and c > 0 for c in counts)
    smallest, cause = float("inf"), ""
    if row_b["status"] != OK or row_c["status"] != OK:
        verdict, reason = "unsure", f"status {_status(row_b)} in {names[0]}, {_status(row_c)} in {names[1]}"
        figures, cause = Figures.unknown(), STATUS
    elif metric == "instructions":
        verdict, reason, figures = decide_count(*counts, threshold=threshold)
        smallest = 1 + threshold / 2 if verdict != "unsure" else float("inf")
    else:
        verdict, reason, figures, smallest = _by_time(ub, uc, threshold=threshold, rule=rule, is_paired=is_paired)
        if metric == "auto" and counted:
            verdict, reason = decide_combined((verdict, reason, figures), decide_count(*counts, threshold=threshold))
            smallest = min(smallest, 1 + threshold / 2)  # in instructions; a cache or layout cost: time's alone
    changed = definition_change(row_b, row_c, same_torch=same_torch) if cause != STATUS else ""
    few = min(len(ub), len(uc)) < (rule.min_pairs if is_paired else rule.min_processes)  # too few says it first
    decided = (machine_reason((row_b, row_c), (ub, uc))
               if cause != STATUS and metric != "instructions" and not few else "")
    if changed:
        verdict, reason, smallest = "changed", f"definition changed: {changed}; not judged", float("inf")
    elif decided and metric == "auto" and counted:  # time measured the machine; the counts still see the code
        verdict, count_reason, figures = decide_count(*counts, threshold=threshold)
        reason, smallest = f"{count_reason}; time not judged: {decided}", 1 + threshold / 2
    elif decided:
        verdict, reason, cause = "unsure", decided, MACHINE
    return Verdict(
        workload=k.workload, device=k.device, dtype=k.dtype, variant=k.variant, verdict=verdict, reason=reason,
        baseline_median_s=_headline(ub, xb), candidate_median_s=_headline(uc, xc),
        threshold=threshold, threshold_source=source, n_baseline=len(ub), n_candidate=len(uc),
        figures=figures, detectable_ratio=smallest,
        cause=_cause(verdict, cause, min(len(ub), len(uc)), rule=rule, metric=metric, is_paired=is_paired),
        count_ratio=counts[1] / counts[0] if counted and metric != "time" else float("nan"))


def _notes(base: Run, cand: Run, names: tuple[str, str], *, allow_missing: bool, broken: list, blocking: list) -> list:
    """What a comparison allowed that it would otherwise refuse, said beside its verdicts."""
    notes = [f"{name} run is marked incomplete ({run.env.get('incomplete_reason', 'unfinished')}): compared anyway, "
             "as --allow-incomplete asked" for name, run in zip(names, (base, cand)) if not run.complete]
    if allow_missing:
        notes.append("rows of the baseline missing from the candidate (listed as removed): compared without them, "
                     "as --allow-missing asked")
    if broken:
        notes.append(f"{len(broken)} row(s) ran in the baseline but failed in the candidate: judged unsure, as "
                     "--allow-failed asked")
    if blocking:
        notes.append("environments differ (" + ", ".join(d.field for d in blocking) + "): compared anyway, "
                     "as --allow-env-mismatch asked")
    return notes
