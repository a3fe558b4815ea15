"""The decision rule for one row: faster, same, slower or unsure, from the per-process medians of two runs.

The unit is the worker process, not the sample: consecutive samples in one process are not independent (each is
correlated with the one before) and processes differ more than samples within one (a process can run slower than
another for its whole life), so a test on samples finds "significant" differences between two runs of the same code
(docs/gate.md, "the process is the unit"). Each side's values are its processes' median per-call times.

The effect is the ratio candidate / baseline (>1 = slower; Hodges-Lehmann: the median of all pairwise
ratios of process medians) with a 99% interval, and the evidence a two-sided Mann-Whitney U test. The
threshold T is the slowdown the gate must catch. The rule:
- slower: ratio >= 1 + T/2 (closer to "T slower" than to "no change"), interval above 1, p < alpha;
- faster: the mirror image;
- same: the interval lies within [1/(1+T), 1+T] (a change as large as T is ruled out);
- unsure: anything else (fewer than min_processes processes on a side, or an interval too wide to tell).
`detectable` gives the smallest slowdown the same data could have called slower: the row's noise, as a change.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from bench.errors import BenchError, Problem, finite_number, fraction, strict_int
from bench.stats import binomial_cdf, mann_whitney_p, median_interval, ratio_interval

# in the order reports list them; "changed": a row whose definition changed under its name (bench.gate.identity),
# never judged
VERDICTS = ("slower", "changed", "unsure", "same", "faster")


@dataclass(frozen=True)
class Figures:
    """The figures a verdict rests on. ratio: candidate / baseline of the per-call time (or of the instructions per
    call), > 1 slower; [ratio_low, ratio_high]: its interval at the rule's confidence (both equal to ratio for a
    count, which has no spread); p_value: the test's (nan where no test applies: counts, or no data)."""

    ratio: float
    ratio_low: float
    ratio_high: float
    p_value: float

    @classmethod
    def unknown(cls) -> Figures:
        """No figures: a side without samples or counts."""
        nan = float("nan")
        return cls(nan, nan, nan, nan)

    @property
    def known(self) -> bool:
        """Whether there is a ratio (NaN is the only value unequal to itself)."""
        return self.ratio == self.ratio


@dataclass(frozen=True, kw_only=True)
class Rule:
    """The decision rule's knobs. threshold: default fraction (0.1 = 10%); alpha: the test's level;
    confidence: of the ratio's interval; min_processes: per side, fewer gives `unsure`; noise_factor:
    a calibrated noise of x (relative spread of medians between A/A runs) widens T to noise_factor * x."""

    threshold: float = 0.10
    alpha: float = 0.001
    confidence: float = 0.99
    min_processes: int = 7  # the exact U test cannot reach p < 0.001 with 6 against 6
    # Paired runs (`bench ab`): each pair of processes ran side by side in time and gives one ratio; the test is the
    # exact sign test on those ratios (robust to a pair whose process ran off the other for its whole life, which
    # a signed-rank test would weigh most), at paired_alpha; its rank interval needs min_pairs to exclude 1.
    paired_alpha: float = 0.01
    min_pairs: int = 8  # the exact sign test cannot reach p < 0.01 with 7 pairs
    noise_factor: float = 3.0
    # A launch-bound CUDA row times the host's launch path, not the GPU, and the same code moves a lot between
    # processes (docs/gate.md, Thresholds). Such rows are held to this wider threshold (400%: slower only from 3x,
    # the level teams set github-action-benchmark to).
    launch_bound_threshold: float = 4.0
    # Sequential looks (`bench ab`): the pair counts at which a row still undecided is judged, and left alone once
    # decided. Each look spends a share of paired_alpha and of 1 - confidence (look_share): by the union bound, the
    # chance that an unchanged row is called slower at some look stays within paired_alpha, however the looks'
    # results are correlated. () is one look, at whatever pairs the row has; None: the looks of the job that measured
    # the runs (env.json ab.looks), one look where there were none.
    looks: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        for name in ("threshold", "launch_bound_threshold"):
            fraction(getattr(self, name), where="compare", field=name, high=10,
                     expected="a fraction in (0, 10), such as 0.1 for 10%")
        for name in ("alpha", "confidence", "paired_alpha"):
            fraction(getattr(self, name), where="compare", field=name)
        for name in ("min_processes", "min_pairs"):
            strict_int(getattr(self, name), where="compare", field=name, minimum=2)
        finite_number(self.noise_factor, where="compare", field="noise_factor")
        for look in self.looks or ():
            strict_int(look, where="compare", field="looks", minimum=1)
        if list(self.looks or ()) != sorted(set(self.looks or ())):
            raise BenchError(Problem(where="compare", field="looks", expected="increasing pair counts",
                                     found=", ".join(map(str, self.looks))))

    def look_share(self, index: int) -> float:
        """The share of the error rates look `index` spends: half for the last look, the other half split evenly over
        the earlier ones. The last look gets the most because the rows that reach it are the noisy ones, which need
        the most power; the early looks mostly stop rows that are plainly the same or plainly slower."""
        count = len(self.looks or ())
        if count <= 1:
            return 1.0
        return 0.5 if index == count - 1 else 0.5 / (count - 1)

    def at_pairs(self, pairs: int) -> Rule:
        """The rule for a row judged with `pairs` pairs under the looks: paired_alpha and 1 - confidence scaled by
        the share of the first look at or above `pairs` (a row that lost pairs to a failure is judged at the look it
        was measured for: compare passes the look env.json ab.pairs_per_row names); without looks, this rule."""
        if not self.looks:
            return self
        index = next((i for i, look in enumerate(self.looks) if look >= pairs), len(self.looks) - 1)
        share = self.look_share(index)
        return replace(self, looks=(), paired_alpha=self.paired_alpha * share,
                       confidence=1 - (1 - self.confidence) * share)


def _judge(figures: Figures, *, threshold: float, alpha: float, test: str) -> tuple[str, str, Figures]:
    """The rule of the module on an effect (ratio), its interval and a test's p-value, for paired runs or not."""
    ratio, lo, hi, p = figures.ratio, figures.ratio_low, figures.ratio_high, figures.p_value
    line, t = 1 + threshold / 2, f"{threshold:.0%}"
    if ratio >= line and lo > 1 and p < alpha:
        return "slower", f"{ratio - 1:+.1%}, above half the {t} threshold, interval above 1, {test}={p:.1g}", figures
    if ratio <= 1 / line and hi < 1 and p < alpha:
        return "faster", f"{ratio - 1:+.1%}, beyond half the {t} threshold, interval below 1, {test}={p:.1g}", figures
    if lo >= 1 / (1 + threshold) and hi <= 1 + threshold:
        return "same", f"interval [{lo:.3f}, {hi:.3f}] rules out a {t} change", figures
    if ratio >= line or ratio <= 1 / line:
        return "unsure", f"{ratio - 1:+.1%} but weak evidence (interval [{lo:.3f}, {hi:.3f}], p={p:.1g})", figures
    if hi <= 1 + threshold:  # only a speedup is left open: for a gate against slowdowns, nothing to worry about
        return "unsure", (f"too noisy for a speedup: interval [{lo:.3f}, {hi:.3f}] rules out a {t} slowdown, not a "
                          f"{t} speedup"), figures
    if lo >= 1 / (1 + threshold):
        return "unsure", (f"too noisy: interval [{lo:.3f}, {hi:.3f}] rules out a {t} speedup, not a {t} "
                          "slowdown"), figures
    return "unsure", f"too noisy: interval [{lo:.3f}, {hi:.3f}] cannot rule out a {t} change", figures


def decide(base, cand, *, threshold: float, rule: Rule = Rule()) -> tuple[str, str, Figures]:
    """Verdict, reason and figures for two sets of per-process median per-call seconds."""
    nb, nc = len(base), len(cand)
    if nb == 0 or nc == 0:
        return "unsure", "no samples on one side", Figures.unknown()
    ratio, lo, hi = ratio_interval(base, cand, confidence=rule.confidence)
    figures = Figures(ratio, lo, hi, mann_whitney_p(base, cand))
    if min(nb, nc) < rule.min_processes:
        return "unsure", (f"too few processes ({nb} and {nc}; at least {rule.min_processes} each: run with "
                          f"--processes {rule.min_processes} or more)"), figures
    return _judge(figures, threshold=threshold, alpha=rule.alpha, test="p")


def sign_test_p(ratios) -> float:
    """Two-sided exact sign test that the median ratio is 1; ratios equal to 1 are left out."""
    r = np.asarray(ratios, dtype=float)
    above, below = int((r > 1).sum()), int((r < 1).sum())
    n = above + below
    if n == 0:
        return 1.0
    return min(1.0, 2 * binomial_cdf(min(above, below), n))


def decide_paired(ratios, *, threshold: float, rule: Rule = Rule()) -> tuple[str, str, Figures]:
    """The rule of the module for paired runs: one ratio candidate / baseline per pair of processes that ran side
    by side (bench ab). The effect is the median ratio with its order-statistic interval, the evidence the sign
    test at paired_alpha; slower, faster, same and unsure as for unpaired runs."""
    n = len(ratios)
    if n == 0:
        return "unsure", "no pairs", Figures.unknown()
    rule = rule.at_pairs(n)
    ratio, lo, hi = median_interval(ratios, confidence=rule.confidence)
    figures = Figures(ratio, lo, hi, sign_test_p(ratios))
    if n < rule.min_pairs:
        return ("unsure", f"too few pairs ({n}; at least {rule.min_pairs}: bench ab --processes {rule.min_pairs})",
                figures)
    return _judge(figures, threshold=threshold, alpha=rule.paired_alpha, test="sign test p")


def detectable_paired(ratios, *, threshold: float, rule: Rule = Rule()) -> float:
    """detectable() for paired runs: the pair ratios with their median removed, scaled until decide_paired says
    slower."""
    r = np.asarray(ratios, dtype=float)
    if len(r) < rule.min_pairs:
        return float("inf")
    null = r / float(np.median(r))
    return _smallest(lambda k: decide_paired(null * k, threshold=threshold, rule=rule)[0] == "slower")


def _smallest(slower) -> float:
    """The smallest scale in [1, 20] at which slower(scale) holds (bisection; inf when not even at 20)."""
    lo, hi = 1.0, 20.0
    if not slower(hi):
        return float("inf")
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if slower(mid) else (mid, hi)
    return hi


def detectable(base, cand, *, threshold: float, rule: Rule = Rule()) -> float:
    """The smallest ratio the rule would have called slower at this row's noise: the candidate's process medians,
    with the measured effect removed (divided by their Hodges-Lehmann ratio), scaled up until `decide` says
    slower (bisection; the verdict only grows stricter as the scale grows). inf when even 20x would not be, or
    with too few processes. Reported beside each verdict, so "same" is read as "no change above this"."""
    base, cand = np.asarray(base, dtype=float), np.asarray(cand, dtype=float)
    if min(len(base), len(cand)) < rule.min_processes:
        return float("inf")
    ratio = ratio_interval(base, cand, confidence=rule.confidence)[0]
    null = cand / ratio
    return _smallest(lambda r: decide(base, null * r, threshold=threshold, rule=rule)[0] == "slower")


def decide_count(base: float, cand: float, *, threshold: float) -> tuple[str, str, Figures]:
    """The rule for a deterministic metric (instructions per call, counted by callgrind): no test, since the same
    code gives the same count within a fraction of a percent; slower when the count grew by at least half the
    threshold, faster when it shrank as much, same otherwise."""
    if not (np.isfinite(base) and np.isfinite(cand) and base > 0 and cand > 0):
        return "unsure", "no instruction count on one side (run with --metric instructions)", Figures.unknown()
    ratio = cand / base
    figures = Figures(ratio, ratio, ratio, float("nan"))
    line, t = 1 + threshold / 2, f"{threshold:.0%}"
    if ratio >= line:
        return "slower", f"instructions {ratio - 1:+.2%}, above half the {t} threshold", figures
    if ratio <= 1 / line:
        return "faster", f"instructions {ratio - 1:+.2%}, beyond half the {t} threshold", figures
    return "same", f"instructions {ratio - 1:+.2%}, within half the {t} threshold", figures
