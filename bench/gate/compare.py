"""Compare two run folders row by row: faster, same, slower or unsure, from the raw samples.

Rows are matched on identity (workload, device, dtype, and variant when both runs have it). For each
pair the effect is the ratio candidate / baseline (>1 = slower; Hodges-Lehmann: the median of all
pairwise ratios of samples) with a 99% interval, and the evidence a two-sided Mann-Whitney U test on
the per-call samples. The threshold T is the slowdown the gate must catch (default 10%, a workload's
own `threshold`, or wider when the calibrated run-to-run noise says so). The rule:
- slower: ratio >= 1 + T/2 (closer to "T slower" than to "no change"), interval above 1, p < alpha;
- faster: the mirror image;
- same: the interval lies within [1/(1+T), 1+T] (a change as large as T is ruled out);
- unsure: anything else (too few samples, or an interval too wide to tell).

The U test and the interval live in bench.stats (written with numpy: see there why not scipy).
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from bench.errors import BenchError, Problem
from bench.stats import mann_whitney_p, ratio_interval

VERDICTS = ("slower", "unsure", "same", "faster")  # in the order reports list them
BASE_KEY = ("workload", "device", "dtype")
ENV_ALWAYS = ("torch", "threads", "float32_matmul_precision")  # change CPU and CUDA results alike
ENV_CUDA = ("cuda", "cudnn", "allow_tf32_matmul", "allow_tf32_cudnn", "cudnn_benchmark", "cudnn_deterministic")
ENV_INFO = ("git_commit", "python", "platform", "host", "complete")  # shown, never refused
NOT_APPLICABLE = "not-applicable"  # a variant that cannot run on a device (bench.suite.variants.skip_reason): not a failure


@dataclass(frozen=True, kw_only=True)
class Rule:
    """The decision rule's knobs. threshold: default fraction (0.1 = 10%); alpha: the test's level;
    confidence: of the ratio's interval; min_samples: per side, fewer gives `unsure`; noise_factor:
    a calibrated noise of x (relative spread of medians between A/A runs) widens T to noise_factor * x."""

    threshold: float = 0.10
    alpha: float = 0.001
    confidence: float = 0.99
    min_samples: int = 7  # the exact U test cannot reach p < 0.001 with 6 against 6
    noise_factor: float = 3.0
    # A launch-bound CUDA row times the host's launch path, not the GPU: on an H200 the same code moved by up to
    # +120% between two processes (Flatten, a view with no kernel; ANCHORS.md: 76% on an H100). Such rows are held
    # to this wider threshold (400%: slower only from 3x, the level teams set github-action-benchmark to).
    launch_bound_threshold: float = 4.0

    def __post_init__(self) -> None:
        if not 0 < self.threshold < 10:
            raise ValueError(f"threshold: expected a fraction in (0, 10) such as 0.1 for 10%, found {self.threshold!r}")
        if not (0 < self.alpha < 1 and 0 < self.confidence < 1 and self.min_samples >= 2):
            raise ValueError("Rule needs 0 < alpha < 1, 0 < confidence < 1 and min_samples >= 2")


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """One matched row. ratio: candidate / baseline (>1 slower), the Hodges-Lehmann estimate (median of all
    pairwise ratios of per-call samples), with its interval [ratio_low, ratio_high] at the rule's confidence;
    the medians are per-call seconds; threshold: the fraction this row was judged against."""

    workload: str
    device: str
    dtype: str
    variant: str
    verdict: str
    reason: str
    baseline_median_s: float
    candidate_median_s: float
    ratio: float
    ratio_low: float
    ratio_high: float
    p_value: float
    threshold: float
    threshold_source: str  # "default" | "workload" | "noise"
    n_baseline: int
    n_candidate: int

    @property
    def label(self) -> str:
        return " / ".join(p for p in (self.workload, self.variant, self.device, self.dtype) if p)


@dataclass(frozen=True, kw_only=True)
class EnvDiff:
    field: str
    baseline: str
    candidate: str
    blocking: bool  # results taken this way should not be compared


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

    @property
    def slower(self) -> tuple[Verdict, ...]:
        return tuple(v for v in self.verdicts if v.verdict == "slower")

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{f.name: getattr(v, f.name) for f in fields(Verdict)} for v in self.verdicts],
                            columns=[f.name for f in fields(Verdict)])


def decide(base, cand, *, threshold: float, rule: Rule = Rule()) -> tuple[str, str, dict]:
    """Verdict, reason and figures (ratio, ratio_low, ratio_high, p_value) for two sets of per-call seconds."""
    nb, nc = len(base), len(cand)
    nan = float("nan")
    if nb == 0 or nc == 0:
        return "unsure", "no samples on one side", dict(ratio=nan, ratio_low=nan, ratio_high=nan, p_value=nan)
    ratio, lo, hi = ratio_interval(base, cand, confidence=rule.confidence)
    p = mann_whitney_p(base, cand)
    figures = dict(ratio=ratio, ratio_low=lo, ratio_high=hi, p_value=p)
    line, t = 1 + threshold / 2, f"{threshold:.0%}"
    if min(nb, nc) < rule.min_samples:
        return "unsure", f"too few samples ({nb} and {nc}; at least {rule.min_samples} each)", figures
    if ratio >= line and lo > 1 and p < rule.alpha:
        return "slower", f"{ratio - 1:+.1%}, above half the {t} threshold, interval above 1, p={p:.1g}", figures
    if ratio <= 1 / line and hi < 1 and p < rule.alpha:
        return "faster", f"{ratio - 1:+.1%}, beyond half the {t} threshold, interval below 1, p={p:.1g}", figures
    if lo >= 1 / (1 + threshold) and hi <= 1 + threshold:
        return "same", f"interval [{lo:.3f}, {hi:.3f}] rules out a {t} change", figures
    if ratio >= line or ratio <= 1 / line:
        return "unsure", f"{ratio - 1:+.1%} but weak evidence (interval [{lo:.3f}, {hi:.3f}], p={p:.1g})", figures
    return "unsure", f"too noisy: interval [{lo:.3f}, {hi:.3f}] cannot rule out a {t} change", figures


# ---------------------------------------------------------------- matching runs
def key_columns(*frames: pd.DataFrame) -> list[str]:
    """Identity columns: workload, device, dtype, and variant when every frame has that column."""
    return list(BASE_KEY) + (["variant"] if all("variant" in f.columns for f in frames) else [])


def _keyed(frame: pd.DataFrame, key: list[str], where: str) -> pd.DataFrame:
    frame = frame.copy()
    for column in key:
        frame[column] = frame[column].fillna("").astype(str)
    dup = frame.duplicated(subset=key)
    if dup.any():
        first = frame[dup].iloc[0]
        raise BenchError(Problem(where=where, field=", ".join(key), expected="one row per workload identity",
                                 found=f"{int(dup.sum())} duplicate(s), e.g. {' / '.join(first[key])}"))
    return frame.set_index(key)


def env_differences(base_env: dict, cand_env: dict, *, devices: set[str]) -> list[EnvDiff]:
    """Settings that differ between the runs; `blocking` ones make the comparison meaningless."""
    checks = list(ENV_ALWAYS) + (["cpu_name", "cpu_count"] if "cpu" in devices else [])
    checks += (["cuda_device", *ENV_CUDA] if "cuda" in devices else [])
    out = []
    for name in checks + [f for f in ENV_INFO if f not in checks]:
        a, b = base_env.get(name), cand_env.get(name)
        if a != b:
            out.append(EnvDiff(field=name, baseline=str(a), candidate=str(b), blocking=name in checks))
    return out


def _threshold(row_b: pd.Series, row_c: pd.Series, *, rule: Rule, noise: float) -> tuple[float, str]:
    """The row's threshold and where it came from: its workload's own (candidate's config first), else
    the rule's default; widened to launch_bound_threshold for a row launch-bound in either run, and to
    noise_factor * noise when the calibrated noise asks for more."""
    own = next((float(r["threshold"]) for r in (row_c, row_b) if pd.notna(r.get("threshold"))), None)
    base, source = (own, "workload") if own is not None else (rule.threshold, "default")
    if any(str(r.get("launch_bound")).lower() == "true" for r in (row_b, row_c)) and rule.launch_bound_threshold > base:
        base, source = rule.launch_bound_threshold, "launch-bound"
    widened = rule.noise_factor * noise
    return (widened, "noise") if widened > base else (base, source)


def _status(row: pd.Series) -> str:
    """A row's status, with its reason when it has one and did not run: "not-applicable (TF32 is a CUDA setting)"."""
    reason = row.get("reason")
    if row["status"] == "ok" or reason is None or pd.isna(reason) or not str(reason).strip():
        return str(row["status"])
    return f"{row['status']} ({str(reason).strip().splitlines()[0]})"


def compare_frames(
    base: tuple[pd.DataFrame, pd.DataFrame, dict],
    cand: tuple[pd.DataFrame, pd.DataFrame, dict],
    *,
    names: tuple[str, str] = ("baseline", "candidate"),
    rule: Rule = Rule(),
    allow_env_mismatch: bool = False,
    noise: dict[tuple[str, ...], float] | None = None,
) -> Comparison:
    """Compare two loaded runs, each (results, samples, env) as `results.load_run` returns them.

    noise maps an identity (workload, device, dtype[, variant]) to its calibrated relative noise.
    A row not-applicable in both runs (a variant that cannot run on that device) gets no verdict: it is
    listed in `not_applicable`; not-applicable on one side only, it is `unsure` with both statuses.
    Raises BenchError for duplicate rows, or for blocking environment differences unless allowed.
    """
    (rb, sb, eb), (rc, sc, ec) = base, cand
    key = key_columns(rb, rc, sb, sc)
    rb, rc = _keyed(rb, key, f"{names[0]}/results.csv"), _keyed(rc, key, f"{names[1]}/results.csv")
    common = [k for k in rb.index if k in rc.index]
    diffs = env_differences(eb, ec, devices={k[1] for k in common})
    blocking = [d for d in diffs if d.blocking]
    if blocking and not allow_env_mismatch:
        d = blocking[0]
        raise BenchError(Problem(where=f"{names[1]}/env.json", field=d.field,
                                 expected=f"{d.baseline} as in {names[0]}/env.json (--allow-env-mismatch to compare anyway)",
                                 found=d.candidate))
    groups = []
    for frame in (sb, sc):
        frame = frame.copy()
        for column in key:
            frame[column] = frame[column].fillna("").astype(str)
        groups.append({k: g["device_s"].dropna().to_numpy() for k, g in frame.groupby(key)})
    noise = noise or {}
    verdicts, not_applicable = [], []
    for k in common:
        row_b, row_c = rb.loc[k], rc.loc[k]
        if row_b["status"] == NOT_APPLICABLE and row_c["status"] == NOT_APPLICABLE:
            not_applicable.append(" / ".join(k))
            continue
        threshold, source = _threshold(row_b, row_c, rule=rule, noise=noise.get(k, noise.get(tuple(k[:3]), 0.0)))
        xb, xc = groups[0].get(k, np.array([])), groups[1].get(k, np.array([]))
        if row_b["status"] != "ok" or row_c["status"] != "ok":
            verdict, reason = "unsure", f"status {_status(row_b)} in {names[0]}, {_status(row_c)} in {names[1]}"
            figures = decide([], [], threshold=threshold, rule=rule)[2]
        else:
            verdict, reason, figures = decide(xb, xc, threshold=threshold, rule=rule)
        verdicts.append(Verdict(
            workload=k[0], device=k[1], dtype=k[2], variant=k[3] if len(k) > 3 else "", verdict=verdict, reason=reason,
            baseline_median_s=float(np.median(xb)) if len(xb) else float("nan"),
            candidate_median_s=float(np.median(xc)) if len(xc) else float("nan"),
            threshold=threshold, threshold_source=source, n_baseline=len(xb), n_candidate=len(xc), **figures))
    notes = [f"{name} run is marked incomplete ({env.get('incomplete_reason', 'unfinished')})"
             for name, env in zip(names, (eb, ec)) if env.get("complete") is False]
    if blocking:
        notes.append("environments differ (" + ", ".join(d.field for d in blocking) + "): compared anyway, "
                     "as --allow-env-mismatch asked")
    return Comparison(
        baseline=names[0], candidate=names[1], rule=rule, verdicts=tuple(verdicts),
        added=tuple(" / ".join(k) for k in rc.index if k not in rb.index),
        removed=tuple(" / ".join(k) for k in rb.index if k not in rc.index),
        env_diffs=tuple(diffs), env_mismatch_allowed=allow_env_mismatch, notes=tuple(notes),
        not_applicable=tuple(not_applicable))


def compare(baseline, candidate, *, rule: Rule = Rule(), allow_env_mismatch: bool = False) -> Comparison:
    """Load two run folders (a results file inside one, or a folder of rounds: see baseline.load_rounds)
    and compare them. A baseline folder from the store may hold noise.csv (from `bench calibrate`):
    its per-workload noise then widens thresholds."""
    from pathlib import Path

    from bench.gate.baseline import load_noise, load_rounds

    base, cand = load_rounds(baseline), load_rounds(candidate)
    folder = Path(baseline) if Path(baseline).is_dir() else Path(baseline).parent
    return compare_frames(base, cand, names=(str(baseline), str(candidate)), rule=rule,
                          allow_env_mismatch=allow_env_mismatch, noise=load_noise(folder))
