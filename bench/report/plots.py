"""Matplotlib figures of a run: latency per workload and device, and the CPU-to-CUDA speed-up.

Names (workloads, devices, machines) are never read as mathtext: text of our own takes parse_math=False,
tick labels and legend entries go through bench.store.cells.mpl_text.
"""
from __future__ import annotations

import io
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # below matplotlib.use("Agg")
import pandas as pd  # below matplotlib.use("Agg")

from bench.schema import OK  # below matplotlib.use("Agg")
from bench.store.cells import mpl_text  # below matplotlib.use("Agg")
from bench.store.files import write_atomic  # below matplotlib.use("Agg")
from bench.units import fmt_s  # below matplotlib.use("Agg")

COLORS = {"cpu": "#1f77b4", "cuda": "#76b900"}


def png(fig) -> bytes:
    """A figure as PNG bytes, closed."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def latency_figure(results: pd.DataFrame, samples: pd.DataFrame):
    """Median device time per call for each workload and device, log scale, with the IQR as error bars."""
    ok = results[results["status"] == OK]
    workloads = list(dict.fromkeys(ok["workload"]))
    devices = list(dict.fromkeys(ok["device"]))
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.45 * max(len(workloads), 1) * max(len(devices), 1)))
    height = 0.8 / max(len(devices), 1)
    q = samples.groupby(["workload", "device", "dtype"])["device_s"].quantile([0.25, 0.75]).unstack()
    for j, device in enumerate(devices):
        rows = ok[ok["device"] == device].set_index("workload")
        ys, med, lo, hi = [], [], [], []
        for i, name in enumerate(workloads):
            if name not in rows.index:
                continue
            row = rows.loc[name]
            key = (name, device, row["dtype"])
            q25, q75 = (q.loc[key, 0.25], q.loc[key, 0.75]) if key in q.index else (row["median_s"],) * 2
            ys.append(i + (j - (len(devices) - 1) / 2) * height)
            med.append(row["median_s"])
            lo.append(max(row["median_s"] - q25, 0))
            hi.append(max(q75 - row["median_s"], 0))
        ax.barh(ys, med, height=height * 0.9, xerr=[lo, hi], color=COLORS.get(device, "gray"), label=mpl_text(device),
                capsize=2, log=True)
        for y, m in zip(ys, med):
            ax.text(m, y, " " + fmt_s(m, digits=3), va="center", fontsize=8, parse_math=False)
    ax.set_yticks(range(len(workloads)), labels=[mpl_text(w) for w in workloads])
    ax.invert_yaxis()
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: fmt_s(v, digits=3)))
    ax.set_xlabel("device time per call (log scale; bar = median, whiskers = interquartile range)")
    ax.set_title("Latency per workload and device")
    ax.grid(axis="x", which="both", alpha=0.3)
    ax.legend(title="device", loc="lower right")
    fig.tight_layout()
    return fig


def speedup_figure(results: pd.DataFrame):
    """CPU time / CUDA time per workload (x times faster on CUDA), or None when not both devices ran."""
    ok = results[results["status"] == OK]
    table = ok.pivot_table(index="workload", columns="device", values="median_s", sort=False)
    if not {"cpu", "cuda"} <= set(table.columns):
        return None
    speedup = (table["cpu"] / table["cuda"]).dropna()
    if speedup.empty:
        return None
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.4 * len(speedup)))
    # numeric positions and labels of our own: a categorical axis would read the names as mathtext
    ax.barh(range(len(speedup)), speedup.values, color=COLORS["cuda"], log=True)
    ax.axvline(1.0, color="black", linewidth=1)
    for y, v in enumerate(speedup.values):
        ax.text(v, y, f" {v:.3g}x", va="center", fontsize=8, parse_math=False)
    ax.set_yticks(range(len(speedup)), labels=[mpl_text(w) for w in speedup.index])
    ax.invert_yaxis()
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}x"))
    ax.set_xlabel("speed-up of CUDA over CPU (CPU median / CUDA median, log scale; >1 = CUDA faster)")
    ax.set_title("CPU-to-CUDA speed-up")
    ax.grid(axis="x", which="both", alpha=0.3)
    fig.tight_layout()
    return fig


def default_variant(frame: pd.DataFrame) -> pd.DataFrame:
    """Only the default variant's rows: a run's plots have one bar per workload and device (variants: `report`)."""
    return frame[frame["variant"].fillna("default") == "default"] if "variant" in frame.columns else frame


def save_plots(run_dir: Path, results: pd.DataFrame, samples: pd.DataFrame) -> list[Path]:
    """Write latency.png (and speedup.png when CPU and CUDA both ran) of the default variant's rows into
    run_dir, atomically; return the paths written (none when no row ran)."""
    results, samples = default_variant(results), default_variant(samples)
    written = []
    if (results["status"] == OK).any():
        figures = {"latency.png": latency_figure(results, samples), "speedup.png": speedup_figure(results)}
        for name, fig in figures.items():
            if fig is None:
                continue
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=110)
            plt.close(fig)
            written.append(write_atomic(run_dir / name, buf.getvalue()))
    return written
