"""The report's figures as PNG bytes: a roofline per machine and device, the variants' speed-ups, the latency."""
from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # below matplotlib.use("Agg")
import pandas as pd  # below matplotlib.use("Agg")
from matplotlib.colors import TwoSlopeNorm  # below matplotlib.use("Agg")

from bench.measure.roofs import Peaks  # below matplotlib.use("Agg")
from bench.report.plots import latency_figure, png  # below matplotlib.use("Agg")
from bench.report.roofline import roofline_figure  # below matplotlib.use("Agg")
from bench.schema import OK  # below matplotlib.use("Agg")
from bench.store.cells import mpl_text  # below matplotlib.use("Agg")


def speedup_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Default median / variant median per workload (index) and forward variant (columns); NaN where not run."""
    ok = rows[(rows["status"] == OK) & (rows.get("pass", "forward") != "forward+backward")]
    times = ok.pivot_table(index="workload", columns="variant", values="median_s", sort=False)
    if "default" not in times.columns:
        return pd.DataFrame()
    table = times.rdiv(times["default"], axis=0)
    return table[["default"] + [c for c in table.columns if c != "default"]]


def variant_figure(table: pd.DataFrame, *, title: str):
    """A heat map of speed-ups over the default: green faster, red slower, log scale, each cell labelled."""
    logs = table.apply(lambda col: col.map(lambda v: math.log2(v) if v and v > 0 else float("nan")))
    bound = max(1.0, float(logs.abs().max().max()) if logs.notna().any().any() else 1.0)
    fig, ax = plt.subplots(figsize=(1.6 + 1.05 * len(table.columns), 1.4 + 0.42 * len(table)))
    ax.imshow(logs.to_numpy(dtype=float), cmap="RdYlGn", norm=TwoSlopeNorm(0.0, -bound, bound), aspect="auto")
    for i in range(len(table)):
        for j in range(len(table.columns)):
            v = table.iat[i, j]
            ax.text(j, i, "-" if pd.isna(v) else f"{v:.2g}x", ha="center", va="center", fontsize=8, parse_math=False)
    # names are never mathtext: tick labels escape `$`, titles take parse_math=False
    ax.set_xticks(range(len(table.columns)), labels=[mpl_text(c).replace("+", "+\n") for c in table.columns],
                  fontsize=7)
    ax.set_yticks(range(len(table)), labels=[mpl_text(w) for w in table.index], fontsize=8)
    ax.set_title(title, fontsize=10, parse_math=False)
    ax.set_xlabel("variant (forward pass); cell = default time / variant time, >1 = faster, - = did not run")
    fig.tight_layout()
    return fig


def report_figures(frame: pd.DataFrame, samples: pd.DataFrame, peaks: dict[tuple[str, int], Peaks]) -> dict[str, bytes]:
    """Caption -> PNG, in the order the report shows them."""
    figures: dict[str, bytes] = {}
    ok = frame[frame["status"] == OK]
    for (key, device, machine), g in ok.groupby(["machine_key", "device", "machine"], sort=False):
        default = g[g["variant"] == "default"]
        threads = int(default["threads"].iloc[0] if len(default) else g["threads"].iloc[0]) if device == "cpu" else 0
        plural = "" if threads == 1 else "s"
        where = f"{machine} ({device}{f', {threads} thread{plural}' if device == 'cpu' else ''})"
        if (key, threads) in peaks:
            figures[f"Roofline: {where}"] = png(roofline_figure(g, peaks[(key, threads)], title=f"Roofline: {where}"))
        table = speedup_table(frame[(frame["machine"] == machine) & (frame["device"] == device)])
        if table.shape[1] > 1:
            title = f"Variants: speed-up over the default, {where}"
            figures[title] = png(variant_figure(table, title=title))
    default = ok[ok["variant"] == "default"].copy()
    if not default.empty:
        many = default["machine"].nunique() > 1
        label = (default["device"] + " · " + default["machine"]) if many else default["device"]
        samp = samples[samples["variant"] == "default"].copy()
        samp["device"] = (samp["device"] + " · " + samp["machine"]) if many else samp["device"]
        default["device"] = label
        figures["Latency per workload and device (default variant)"] = png(latency_figure(default, samp))
    placed = memory_rows(ok)
    if len(placed):
        figures["Peak memory: measured against planned"] = png(memory_figure(placed))
    return figures


def memory_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows with a measured and a planned peak above 0, the ones a log-log figure can place (a tiny row can
    measure 0: it reused pages freed before it; runs from before the columns have neither)."""
    if "peak_memory_bytes" not in rows.columns or "planned_peak_bytes" not in rows.columns:
        return rows.iloc[0:0]
    measured = pd.to_numeric(rows["peak_memory_bytes"], errors="coerce")
    planned = pd.to_numeric(rows["planned_peak_bytes"], errors="coerce")
    return rows[(measured > 0) & (planned > 0)]


def memory_figure(rows: pd.DataFrame):
    """Measured peak memory against the planned estimate, one point per row (log-log), the line where they agree."""
    have = memory_rows(rows)
    fig, ax = plt.subplots(figsize=(7, 5))
    for i, (device, g) in enumerate(have.groupby("device", sort=True)):
        ax.scatter(g["planned_peak_bytes"], g["peak_memory_bytes"], s=30, color=f"C{i}", label=mpl_text(device))
        for _, r in g[g["variant"] == "default"].iterrows():
            ax.annotate(str(r["workload"]), (r["planned_peak_bytes"], r["peak_memory_bytes"]), fontsize=7,
                        xytext=(4, 2), textcoords="offset points", parse_math=False)
    lo = min(have["planned_peak_bytes"].min(), have["peak_memory_bytes"].min()) / 2
    hi = max(have["planned_peak_bytes"].max(), have["peak_memory_bytes"].max()) * 2
    ax.plot([lo, hi], [lo, hi], color="black", lw=1, label="measured = planned")
    ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi))
    ax.set_xlabel("planned peak (input, weights, every intermediate), bytes")
    ax.set_ylabel("measured peak, bytes (CUDA: allocator; CPU: resident growth)")
    ax.legend(fontsize=8)
    ax.grid(which="both", alpha=0.25)
    fig.tight_layout()
    return fig
