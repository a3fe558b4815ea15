"""Per-row roofline analysis against a device's peaks (bench.measure.roofs), and the roofline plot.

For a row that ran: arithmetic intensity = FLOPs / bytes (both of the timed pass, from the plan: a
multiply-add counts 2 FLOPs; bytes are input, weights and output once each), the roof at that intensity
= min(peak FLOP/s of the row's math mode, intensity x peak bytes/s), and the percent of that roof the row
achieved. Verdict, in this order:
- "launch-bound": by bench.schema's one rule, for the report as for results.csv (CUDA rows whose time per call
  is launch overhead; a CPU row is never launch-bound);
- "no work": no FLOPs and no bytes (a view): its time is call overhead on any device;
- "above roof": over ABOVE_ROOF_PCT of its roof: the roof does not describe the row (peaks measured under load;
  on a CPU, data that stays in cache: the memory roof is the probe's large copy, from DRAM);
- "far below roof": under FAR_BELOW_PCT of its roof: neither roof explains its time (overhead, a poor kernel or
  shape), whichever side of the ridge it sits; the report shows the percentage beside it;
- "compute-bound" at or right of the ridge point, "memory-bound" left of it.
A float64 row is put against the float64 roof only: without one (peaks probed before float64 was), no verdict.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Collection

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # below matplotlib.use("Agg")
import pandas as pd  # below matplotlib.use("Agg")

from bench.measure.roofs import Peaks  # below matplotlib.use("Agg")
from bench.schema import OK  # below matplotlib.use("Agg")
from bench.store.cells import mpl_text  # below matplotlib.use("Agg")

ROOFLINE_COLUMNS = ["peak_flops_per_s", "peak_bytes_per_s", "ridge_flop_per_byte", "roof_flops_per_s",
                    "pct_of_roof", "verdict"]
MARKERS = {"float32": "o", "bfloat16": "s", "float16": "^", "float64": "D"}
VERDICT_COLORS = {"compute-bound": "#d62728", "memory-bound": "#1f77b4", "far below roof": "#ff7f0e",
                  "above roof": "#9467bd", "launch-bound": "#7f7f7f", "no work": "#c7c7c7", "": "#bcbd22"}
FAR_BELOW_PCT = 10.0
ABOVE_ROOF_PCT = 105.0


def verdict(*, launch_bound: bool, intensity: float | None, ridge: float | None, no_work: bool = False,
            pct_of_roof: float | None = None) -> str:
    """The row's verdict (see the module's docstring); "" when no peaks say which."""
    if bool(launch_bound):
        return "launch-bound"
    if no_work:
        return "no work"
    if intensity is None or ridge is None or math.isnan(intensity) or math.isnan(ridge):
        return ""
    if pct_of_roof is not None and not math.isnan(pct_of_roof):
        if pct_of_roof > ABOVE_ROOF_PCT:
            return "above roof"
        if pct_of_roof < FAR_BELOW_PCT:
            return "far below roof"
    return "compute-bound" if intensity >= ridge else "memory-bound"


def verdict_text(verdict: str, pct_of_roof) -> str:
    """The verdict as the report prints it: "far below roof (0.15%)", "above roof (127%)", else as it is."""
    if verdict in ("far below roof", "above roof") and _num(pct_of_roof) is not None:
        return f"{verdict} ({pct_of_roof:.2g}%)" if pct_of_roof < 10 else f"{verdict} ({pct_of_roof:.0f}%)"
    return verdict


def _num(value) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def roofline_row(row: pd.Series, peaks: Peaks | None) -> dict:
    """The ROOFLINE_COLUMNS of one results row (a dict; NaN and "" where the row did not run or has no peaks)."""
    out = dict.fromkeys(ROOFLINE_COLUMNS, float("nan"))
    out["verdict"] = ""
    if row.get("status") != OK or _num(row.get("median_s")) is None:
        return out
    flops, nbytes = _num(row.get("flops")) or 0.0, _num(row.get("bytes")) or 0.0
    intensity = flops / nbytes if nbytes > 0 else None
    ridge = None
    if peaks is not None:
        mode = row.get("math") if isinstance(row.get("math"), str) and row.get("math") else row.get("dtype")
        peak = peaks.peak_flops_per_s(str(mode))
        ridge = peaks.ridge(str(mode)) if peak > 0 else None  # no roof for this math (float64 not probed)
        out.update(peak_flops_per_s=peak if peak > 0 else float("nan"), peak_bytes_per_s=peaks.bytes_per_s,
                   ridge_flop_per_byte=ridge if ridge is not None else float("nan"))
        if ridge is None:
            pass
        elif flops > 0 and intensity is not None:
            roof = min(peak, intensity * peaks.bytes_per_s)
            out.update(roof_flops_per_s=roof, pct_of_roof=100 * flops / row["median_s"] / roof)
        elif nbytes > 0:  # no arithmetic: only the memory roof applies
            out.update(pct_of_roof=100 * nbytes / row["median_s"] / peaks.bytes_per_s)
    lb = row.get("launch_bound")
    out["verdict"] = verdict(launch_bound=bool(lb) if not pd.isna(lb) else False,
                             intensity=intensity if flops > 0 else 0.0, ridge=ridge, no_work=flops == 0 == nbytes,
                             pct_of_roof=out["pct_of_roof"])
    return out


def annotate(frame: pd.DataFrame, peaks_of: Callable[[pd.Series], Peaks | None]) -> pd.DataFrame:
    """frame with ROOFLINE_COLUMNS added; `peaks_of(row)` gives the peaks for that row's machine and device."""
    extra = pd.DataFrame([roofline_row(row, peaks_of(row)) for _, row in frame.iterrows()],
                         columns=ROOFLINE_COLUMNS, index=frame.index)
    return pd.concat([frame.drop(columns=[c for c in ROOFLINE_COLUMNS if c in frame.columns]), extra], axis=1)


def roofline_figure(rows: pd.DataFrame, peaks: Peaks, *, title: str, highlight: Collection[str] = ()):
    """Log-log roofline of one device: the memory roof, one compute roof per math mode present, a point per row.

    Points of the default variant are large and labelled with the workload; other variants are small and
    unlabelled (the report's variant table names them); the marker's shape is the dtype, its colour the
    verdict. Rows without FLOPs (views, copies) have no place on a log axis and are left out. highlight: when
    given, only these workloads' points are large and labelled (a model's rows among the device's).
    """
    ok = rows[(rows["status"] == OK) & (rows["flops"] > 0) & (rows["bytes"] > 0)].copy()
    ok["intensity"] = ok["flops"] / ok["bytes"]
    modes = sorted({*ok.get("math", pd.Series(dtype=str)).dropna().astype(str), "float32"} & set(peaks.flops_per_s)
                   or set(peaks.flops_per_s))
    top = max(peaks.peak_flops_per_s(m) for m in modes)
    lo = min([*ok["intensity"], peaks.ridge(modes[0])]) / 4
    hi = max([*ok["intensity"], *(peaks.ridge(m) for m in modes)]) * 4
    fig, ax = plt.subplots(figsize=(9, 6))
    xs = [lo * (hi / lo) ** (i / 200) for i in range(201)]
    ax.plot(xs, [min(x * peaks.bytes_per_s, top) for x in xs], color="black", linewidth=1.5,
            label=f"memory roof {peaks.bytes_per_s / 1e9:.3g} GB/s")
    # names (workloads, math modes, dtypes, machines) are never mathtext: legend entries go through mpl_text,
    # text of our own takes parse_math=False
    for i, m in enumerate(modes):
        peak = peaks.peak_flops_per_s(m)
        ax.plot([peaks.ridge(m), hi], [peak] * 2, linestyle=("-", "--", ":", "-.")[i % 4], color="black",
                linewidth=1, label=mpl_text(f"{m} roof {peak / 1e12:.3g} TFLOP/s"))
    for _, r in ok.iterrows():
        default = r.get("variant", "default") in ("default", None) or pd.isna(r.get("variant", "default"))
        default = default and (not highlight or r["workload"] in highlight)
        color = VERDICT_COLORS.get(r.get("verdict", ""), VERDICT_COLORS[""])
        ax.scatter(r["intensity"], r["flops_per_s"], s=55 if default else 16, color=color, zorder=3 + default,
                   marker=MARKERS.get(r.get("dtype"), "o"), edgecolors="black" if default else "none", linewidths=0.6,
                   alpha=1.0 if default else 0.6)
        if default:
            ax.annotate(str(r["workload"]), (r["intensity"], r["flops_per_s"]), fontsize=7.5, xytext=(5, 3),
                        textcoords="offset points", parse_math=False)
    for name, color in VERDICT_COLORS.items():
        if name and (ok.get("verdict", pd.Series(dtype=str)) == name).any():
            ax.scatter([], [], color=color, label=mpl_text(name))
    for dtype in dict.fromkeys(ok["dtype"]):
        ax.scatter([], [], color="white", edgecolors="black", marker=MARKERS.get(dtype, "o"), label=mpl_text(dtype))
    if (ok.get("variant", pd.Series("default", index=ok.index)).fillna("default") != "default").any():
        ax.scatter([], [], s=16, color="gray", alpha=0.6, label="other variants (unlabelled)")
    if highlight and not ok["workload"].isin(set(highlight)).all():
        ax.scatter([], [], s=16, color="gray", alpha=0.6, label="other workloads (unlabelled)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ymin = min([*ok["flops_per_s"], lo * peaks.bytes_per_s]) / 3
    ax.set_ylim(ymin, top * 2)
    ax.set_xlabel("arithmetic intensity, FLOP per byte (log; a multiply-add counts 2 FLOPs)")
    ax.set_ylabel("achieved FLOP/s (log)")
    ax.set_title(title, parse_math=False)
    ax.grid(which="both", alpha=0.25)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig
