"""When the machine, not the code or the layer, decided a comparison: a stored baseline from a machine that is faster
or slower as a whole (machine_differs: no verdict is then about the code), and a row whose worker processes
disagree beyond reason (machine_reason: that row is not judged).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from bench.stats import machine_decided
from bench.units import fmt_s

PROBE_LIMIT = 1.3  # speed probes further apart than this ratio: another machine, or the same one much busier
SUITE_SHARE = 0.8  # that share of rows moved the same way by more than half the threshold: the machine moved


def machine_differs(verdicts: list, base_env, cand_env, *, threshold: float) -> str:
    """Why a stored baseline seems to come from a machine that is faster or slower as a whole, or "": the env.json
    speed probes (bench.measure.env.speed_probe) disagree by more than PROBE_LIMIT, or at least 3 rows were judged
    and SUITE_SHARE of them moved together in one direction by more than half the threshold."""
    reasons = []
    pb, pc = base_env.get("speed_probe"), cand_env.get("speed_probe")
    if isinstance(pb, dict) and isinstance(pc, dict):
        for name in ("python_s", "matmul_s"):
            a, b = pb.get(name), pc.get(name)
            if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a > 0 and b > 0:
                if max(a / b, b / a) > PROBE_LIMIT:
                    reasons.append(f"speed probe {name.removesuffix('_s')} {b / a - 1:+.0%}")
    ratios = np.array([v.ratio for v in verdicts if np.isfinite(v.ratio)])
    line = 1 + threshold / 2
    if len(ratios) >= 3:
        for share, direction in (((ratios >= line).mean(), "slower"), ((ratios <= 1 / line).mean(), "faster")):
            if share >= SUITE_SHARE:
                reasons.append(f"{share:.0%} of {len(ratios)} rows {direction} together (median change "
                               f"{np.median(ratios) - 1:+.0%})")
    return "; ".join(reasons)


def machine_reason(rows: tuple[dict, dict], medians: tuple[pd.Series, pd.Series]) -> str:
    """Why the machine, not the layer, decided a row (results.csv `machine_decided` on a side, or that side's
    process medians by bench.stats.machine_decided), or ""."""
    for side, row, u in zip(("baseline", "candidate"), rows, medians):
        if str(row.get("machine_decided")).strip().lower() in ("true", "1", "1.0") or machine_decided(u.to_numpy()):
            span = (f"process medians {fmt_s(float(u.min()))} to {fmt_s(float(u.max()))} in the {side}" if len(u)
                    else f"flagged in the {side}'s results.csv")
            return f"the machine, not the layer, decided this row ({span}): not judged; rerun on a quieter runner"
    return ""
