"""Statistics of a list of per-call times. Pure functions over floats; pandas does the arithmetic."""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from statistics import NormalDist

import numpy as np

NOISY_REL_IQR = 0.1  # torch.utils.benchmark warns at the same relative IQR
# A row's processes further apart than this (see machine_decided) measured the machine, not the layer. The same code
# in fresh processes differs by its memory layout and the CPU's frequency: tens of percent at most, even for rows of
# microseconds. Three times means those processes spent most of every sample waiting (for the CPU, or for a
# descheduled thread of their own parallel region): the scheduler set their time, not the layer.
MACHINE_DECIDED_FACTOR = 3.0


@dataclass(frozen=True, kw_only=True)
class Summary:
    """Median, spread and extremes of samples in seconds. rel_iqr = iqr_s / median_s."""

    median_s: float
    iqr_s: float
    mean_s: float
    std_s: float
    min_s: float
    max_s: float
    n_samples: int

    @property
    def rel_iqr(self) -> float:
        return self.iqr_s / self.median_s if self.median_s > 0 else float("inf")


def summarize(samples_s: list[float] | tuple[float, ...]) -> Summary:
    """Summarize samples. Quantiles use linear interpolation (numpy's default); std is the sample std (ddof=1)."""
    import pandas as pd  # here, not at the top: a worker process imports this module but never summarizes

    if len(samples_s) == 0:
        raise ValueError("summarize needs at least one sample")
    s = pd.Series(samples_s, dtype="float64")
    q25, q50, q75 = s.quantile([0.25, 0.5, 0.75]).tolist()
    return Summary(
        median_s=q50,
        iqr_s=q75 - q25,
        mean_s=float(s.mean()),
        std_s=float(s.std(ddof=1)) if len(s) > 1 else 0.0,
        min_s=float(s.min()),
        max_s=float(s.max()),
        n_samples=len(s),
    )


def rel_iqr(samples_s: list[float]) -> float:
    """Relative interquartile range of samples (inf for an empty list or a zero median). numpy's linear
    quantiles, the same as summarize's pandas ones: the sampling loop in a worker process calls this, and a
    worker should not pay for importing pandas (half a second, in each of many workers)."""
    if len(samples_s) == 0:
        return float("inf")
    q25, q50, q75 = np.quantile(np.asarray(samples_s, dtype=float), [0.25, 0.5, 0.75])
    return float((q75 - q25) / q50) if q50 > 0 else float("inf")


def machine_decided(process_medians_s, *, factor: float = MACHINE_DECIDED_FACTOR) -> bool:
    """Whether a row's worker processes disagree beyond reason: the second slowest process median is at least
    `factor` times the second fastest (with 2 processes: the slower at least `factor` times the faster). One
    process off for its whole life is noise the gate's rank statistics absorb; two or more an order of magnitude
    apart (some processes in microseconds, others in milliseconds: threads waiting for descheduled threads on a
    busy machine) mean the machine decided the row, not the layer. One rule for results.csv and the gate."""
    x = np.sort(np.asarray(process_medians_s, dtype=float))
    x = x[np.isfinite(x) & (x > 0)]
    if len(x) < 2:
        return False
    low, high = (x[0], x[-1]) if len(x) < 4 else (x[1], x[-2])
    return bool(high >= factor * low)


# ------------------------------------------- comparing two sets of samples (used by bench.gate.compare)
# Written with numpy rather than taken from scipy: scipy is not a runtime dependency (torch, pandas and
# matplotlib are) for two short functions. The tests check them against scipy.stats where it is installed.
@cache
def _u_count(m: int, n: int, u: int) -> int:
    """Number of orderings of m and n untied values whose U statistic equals u."""
    if u < 0:
        return 0
    if m == 0 or n == 0:
        return int(u == 0)
    return _u_count(m - 1, n, u - n) + _u_count(m, n - 1, u)


def mann_whitney_p(a, b) -> float:
    """Two-sided p-value of the Mann-Whitney U test: exact for small untied samples (m * n <= 400),
    otherwise the normal approximation with tie and continuity corrections (as scipy's 'asymptotic').
    Memory is O(m + n) (ranks of the pooled samples, never the m * n pairs); time O((m + n) log(m + n))."""
    import pandas as pd

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    m, n = len(a), len(b)
    if m == 0 or n == 0:
        return 1.0
    ranks = pd.Series(np.concatenate([a, b])).rank(method="average").to_numpy()
    u1 = ranks[:m].sum() - m * (m + 1) / 2
    u = min(u1, m * n - u1)
    ties = pd.Series(ranks).value_counts().to_numpy()
    if m * n <= 400 and (ties == 1).all():
        total = math.comb(m + n, m)
        return min(1.0, 2 * sum(_u_count(m, n, k) for k in range(int(u) + 1)) / total)
    big_n = m + n
    var = m * n / 12 * ((big_n + 1) - (ties**3 - ties).sum() / (big_n * (big_n - 1)))
    if var <= 0:
        return 1.0
    z = (m * n / 2 - u - 0.5) / math.sqrt(var)
    return min(1.0, math.erfc(max(z, 0.0) / math.sqrt(2)))


# Beyond MAX_PAIRS pairwise ratios, each side is thinned to THIN_TO order statistics first (memory stays bounded:
# 2,000 x 2,000 pairs are 32 MB; 30,000 x 30,000 would be 7.2 GB).
MAX_PAIRS = 4_000_000
THIN_TO = 2_000


def thinned_sizes(m: int, n: int) -> tuple[int, int]:
    """How many samples per side ratio_interval forms pairs from: all of them while m * n <= MAX_PAIRS, else
    at most THIN_TO per side."""
    if m * n <= MAX_PAIRS:
        return m, n
    return min(m, THIN_TO), min(n, THIN_TO)


def _thin(x: np.ndarray, size: int) -> np.ndarray:
    """`size` evenly spaced order statistics of x (its quantiles at evenly spaced probabilities, the minimum and
    maximum included); x itself when it has no more than that."""
    if len(x) <= size:
        return x
    return np.quantile(np.sort(x), np.linspace(0.0, 1.0, size))


def ratio_interval(base, cand, *, confidence: float) -> tuple[float, float, float]:
    """Hodges-Lehmann estimate of the ratio cand / base (the median of all m * n pairwise ratios) and its
    distribution-free interval (Moses: order statistics of the pairwise log-ratios at the Mann-Whitney
    critical value, normal approximation). Returns (ratio, low, high); (ratio, 0, inf) when too few samples.

    Rather than a bootstrap of the ratio of medians: with few samples a bootstrapped median jumps between
    order statistics, so one outlier can widen the interval of a row whose samples agree closely; the rank
    interval agrees with the U test and is deterministic.

    Memory is bounded whatever the sample count: when m * n exceeds MAX_PAIRS (4e6), each side is first thinned
    to at most THIN_TO (2,000) evenly spaced order statistics (thinned_sizes), and the estimate and interval are
    computed from the thinned samples as if they were the samples. The estimate moves little (the thinned sides
    keep the shape of the distributions); the interval comes from fewer samples, so it is somewhat wider than
    all the pairs would give, never narrower in spirit: thinning never makes the gate surer than its data."""
    base, cand = np.asarray(base, dtype=float), np.asarray(cand, dtype=float)
    m, n = thinned_sizes(len(base), len(cand))
    if m == 0 or n == 0:
        return float("nan"), 0.0, float("inf")
    base, cand = _thin(base, m), _thin(cand, n)
    d = np.subtract.outer(np.log(np.maximum(cand, 1e-300)), np.log(np.maximum(base, 1e-300))).ravel()
    d.sort()  # in place: the m * n log-ratios exist once
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    k = math.floor(m * n / 2 - z * math.sqrt(m * n * (m + n + 1) / 12))
    half = len(d) // 2
    ratio = float(np.exp(d[half] if len(d) % 2 else (d[half - 1] + d[half]) / 2))
    if k < 0:
        return ratio, 0.0, float("inf")
    return ratio, float(np.exp(d[k])), float(np.exp(d[m * n - 1 - k]))


# ------------------------------------------- the median of a few values (process medians) and its interval
def binomial_cdf(k: int, n: int) -> float:
    """P(X <= k) for X ~ Binomial(n, 1/2), exact (math.comb; n is a few dozen processes or pairs at most)."""
    return sum(math.comb(n, i) for i in range(0, max(k, -1) + 1)) / 2**n


def _order_index(n: int, confidence: float) -> int:
    """j, the largest such that P(Binomial(n, 1/2) < j) <= (1 - confidence) / 2 (0: no interval exists)."""
    tail, j = (1 - confidence) / 2, 0
    while j + 1 <= n and binomial_cdf(j, n) <= tail:  # P(X <= j) = P(X < j + 1)
        j += 1
    return j


@cache
def min_for_interval(confidence: float) -> int:
    """The fewest values whose order statistics give a two-sided interval of the median at `confidence`
    (6 at 95%: the minimum and maximum of 6 values miss the median with probability 2 / 2**6 = 3.1%)."""
    n = 1
    while _order_index(n, confidence) == 0:
        n += 1
    return n


def median_interval(values, *, confidence: float) -> tuple[float, float, float]:
    """The median of values and its distribution-free interval: order statistics x_(j), x_(n+1-j) with j the
    largest such that P(Binomial(n, 1/2) < j) <= (1 - confidence) / 2; (median, 0, inf) when n is too small for
    one (fewer than min_for_interval(confidence)), (nan, 0, inf) for no values."""
    x = np.sort(np.asarray(values, dtype=float))
    n = len(x)
    if n == 0:
        return float("nan"), 0.0, float("inf")
    j = _order_index(n, confidence)
    median = float(np.median(x))
    if j == 0:
        return median, 0.0, float("inf")
    return median, float(x[j - 1]), float(x[n - j])


def _t_cdf(t: float, df: int) -> float:
    """P(T <= t) for Student's t with an integer df >= 1 (the closed-form series of Abramowitz & Stegun 26.7.3-4)."""
    theta = math.atan2(t, math.sqrt(df))
    s, c = math.sin(theta), math.cos(theta)
    if df % 2:  # odd
        total, term = 0.0, c
        for k in range(1, (df - 1) // 2 + 1):
            total += term
            term *= c * c * (2 * k) / (2 * k + 1)
        a = (2 / math.pi) * (theta + (s * total if df > 1 else 0.0))
    else:
        total, term = 0.0, 1.0
        for k in range(0, (df - 2) // 2 + 1):
            total += term
            term *= c * c * (2 * k + 1) / (2 * k + 2)
        a = s * total
    return 0.5 + a / 2


@cache
def t_quantile(p: float, df: int) -> float:
    """The p-quantile of Student's t with integer df >= 1 (bisection on _t_cdf; scipy is not a dependency)."""
    lo, hi = -1e6, 1e6
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _t_cdf(mid, df) < p else (lo, mid)
    return (lo + hi) / 2


def headline_interval(values, *, confidence: float = 0.95) -> tuple[float, float, float]:
    """The median of process medians and its interval at `confidence`, the one results.csv reports and `run`
    stops on: the distribution-free order-statistic interval (median_interval) from min_for_interval values on;
    with fewer (2 to 5 at 95%), Student's t interval of the mean of the logs, exponentiated, which is an interval
    of the median when the log process medians are normal (symmetric: their mean is their median). That model
    holds for processes that differ by small independent causes (layout, frequency); a row split between fast and
    slow processes breaks it, but then the logs' spread makes the interval wide, never narrow. (median, nan, nan)
    for a single value or a value <= 0, (nan, nan, nan) for none."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    median = float(np.median(x))
    if (x <= 0).any():  # no logs of a zero time (a fake clock): the median alone
        return median, float("nan"), float("nan")
    if n >= min_for_interval(confidence):
        return median_interval(x, confidence=confidence)
    if n < 2:
        return median, float("nan"), float("nan")
    logs = np.log(x)
    half = t_quantile(1 - (1 - confidence) / 2, n - 1) * float(np.std(logs, ddof=1)) / math.sqrt(n)
    centre = float(np.mean(logs))
    return median, min(median, math.exp(centre - half)), max(median, math.exp(centre + half))


def relative_half_width(median: float, low: float, high: float) -> float:
    """The larger side of an interval relative to its median (inf where there is no interval)."""
    if not (median > 0) or not (np.isfinite(low) and np.isfinite(high)):
        return float("inf")
    return max(median - low, high - median) / median
