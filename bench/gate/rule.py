"""The decision rule for one row: faster, same, slower or unsure, from two sets of per-call samples.

The effect is the ratio candidate / baseline (>1 = slower; Hodges-Lehmann: the median of all pairwise
ratios of samples) with a 99% interval, and the evidence a two-sided Mann-Whitney U test. The threshold T
is the slowdown the gate must catch. The rule:
- slower: ratio >= 1 + T/2 (closer to "T slower" than to "no change"), interval above 1, p < alpha;
- faster: the mirror image;
- same: the interval lies within [1/(1+T), 1+T] (a change as large as T is ruled out);
- unsure: anything else (too few samples, or an interval too wide to tell).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from bench.errors import BenchError, Problem
from bench.stats import mann_whitney_p, ratio_interval

VERDICTS = ("slower", "unsure", "same", "faster")  # in the order reports list them


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
        def bad(field: str, expected: str) -> BenchError:
            return BenchError(Problem(where="compare", field=field, expected=expected, found=repr(getattr(self, field))))

        for name in ("threshold", "launch_bound_threshold"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 < value < 10):
                raise bad(name, "a fraction in (0, 10), such as 0.1 for 10%")
        for name in ("alpha", "confidence"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 < value < 1):
                raise bad(name, "a number strictly between 0 and 1")
        if isinstance(self.min_samples, bool) or not isinstance(self.min_samples, int) or self.min_samples < 2:
            raise bad("min_samples", "an integer >= 2")
        if not isinstance(self.noise_factor, (int, float)) or not math.isfinite(self.noise_factor) or self.noise_factor < 0:
            raise bad("noise_factor", "a finite number >= 0")


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
