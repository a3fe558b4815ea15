"""Statistics of a list of per-call times. Pure functions over floats; pandas does the arithmetic."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

NOISY_REL_IQR = 0.1  # torch.utils.benchmark warns at the same relative IQR


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
    """Relative interquartile range of samples (inf for an empty list or a zero median)."""
    return summarize(samples_s).rel_iqr if samples_s else float("inf")
