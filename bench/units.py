"""Human-readable numbers for tables, reports and plots: one place for the unit ladders."""
from __future__ import annotations

import pandas as pd


def fmt_s(seconds, digits: int = 4) -> str:
    """Seconds as s, ms, us or ns with `digits` significant digits; "-" for None or NaN."""
    if seconds is None or pd.isna(seconds):
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if abs(seconds) >= scale:
            return f"{seconds / scale:.{digits}g} {unit}"
    return f"{seconds / 1e-9:.{digits}g} ns"


def fmt_si(value, unit: str = "") -> str:
    """A count with an SI prefix (k, M, G, T, P) and 3 significant digits; "-" for None or NaN."""
    if value is None or pd.isna(value):
        return "-"
    for prefix, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}".strip()
