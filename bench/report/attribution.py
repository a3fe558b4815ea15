"""The report's section per model: where the model's time goes among its layers (bench.store.attribution).

A section per model, machine and device: the model against the sum of its isolated layers for every dtype and
variant measured (and the remainder, outside the layers), a bar chart of the layers' shares (the TOP_N largest,
the rest grouped), the model's rows on the device's roofline, and its largest layers with what bounds them; and
the same table as console text (`models_text`), which `attribution` and `report` print.
"""
from __future__ import annotations

from itertools import pairwise

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # below matplotlib.use("Agg")
import pandas as pd  # below matplotlib.use("Agg")
from matplotlib.patches import Patch  # below matplotlib.use("Agg")

from bench.measure.roofs import Peaks  # below matplotlib.use("Agg")
from bench.report.model import ModelSection  # below matplotlib.use("Agg")
from bench.report.plots import png  # below matplotlib.use("Agg")
from bench.report.roofline import roofline_figure, verdict_text  # below matplotlib.use("Agg")
from bench.schema import DEFAULT_VARIANT  # below matplotlib.use("Agg")
from bench.store.cells import mpl_text  # below matplotlib.use("Agg")
from bench.units import fmt_s  # below matplotlib.use("Agg")

# The console's table of a model's layers (`layerbench attribution`): the attribution table's columns, renamed.
LAYER_COLUMNS = {"workload": "layer", "module_type": "type", "count": "calls", "median_s": "median/call",
                 "total_s": "total", "share": "share", "bound": "bound by", "verdict": "verdict"}

TOP_N = 10  # layers shown by name in the chart and the table; the rest are grouped
BOUND_COLORS = {"compute": "#d62728", "memory": "#1f77b4", "launch": "#7f7f7f", "no work": "#c7c7c7",
                "unknown": "#bcbd22"}
SUMMARY_HEADERS = ("dtype", "variant", "model", "sum of layers", "outside the layers", "layers / model", "layers",
                   "status", "note")
TOP_HEADERS = ("layer", "type", "calls", "median/call", "total (calls x median)", "share", "bound by", "verdict",
               "% of roof", "paths")
OUTSIDE_NOTE = ("Outside the layers = the model's time - the sum of its isolated layers' (calls x median). Positive: "
                "time no layer accounts for (functional calls between modules such as torch.flatten or a residual "
                "addition, Python between modules, layers that run faster alone with their data in cache). Negative: "
                "the isolated layers cost more than the model (each isolated call pays its own dispatch and launch, "
                "which the model's kernels, queued back to back, hide; inside the model a layer's input is still in "
                "cache). Shares are of the sum of the layers that ran.")


def _pct(value) -> str:
    return "-" if value is None or pd.isna(value) else f"{100 * value:.1f}%"


def _paths(text: str, limit: int = 60) -> str:
    """The paths a row stands for, cut to `limit` characters with how many more there are."""
    paths = [p for p in str(text or "").split(";") if p]
    shown = ""
    for i, p in enumerate(paths):
        if len(shown) + len(p) > limit and shown:
            return f"{shown} (+{len(paths) - i} more)"
        shown = f"{shown}, {p}" if shown else p
    return shown


def summary_line(m: pd.Series) -> str:
    """"model 5 ms; sum of its layers 4 ms (0.80x); outside the layers 1 ms" for a model row of the table."""
    ratio = "" if pd.isna(m["ratio"]) else f" ({m['ratio']:.2f}x)"
    return (f"model {fmt_s(m['median_s'], 3)}; sum of its layers {fmt_s(m['layers_sum_s'], 3)}{ratio}; "
            f"outside the layers {fmt_s(m['outside_s'], 3)}")


def _summary_row(m: pd.Series) -> tuple[str, ...]:
    layers = "-" if pd.isna(m["failed_layers"]) else f"{int(m['failed_layers'])} without a time"
    ratio = "-" if pd.isna(m["ratio"]) else f"{m['ratio']:.2f}"
    return (m["dtype"], m["variant"], fmt_s(m["median_s"]), fmt_s(m["layers_sum_s"]), fmt_s(m["outside_s"]), ratio,
            layers if m["failed_layers"] else "all ran", m["status"] or "-", m["note"])


def _top_row(r: pd.Series) -> tuple[str, ...]:
    return (r["workload"], r["module_type"], str(r["count"]), fmt_s(r["median_s"]), fmt_s(r["total_s"]),
            _pct(r["share"]), r["bound"], verdict_text(r["verdict"], r["pct_of_roof"]),
            "-" if pd.isna(r["pct_of_roof"]) else f"{r['pct_of_roof']:.3g}%", _paths(r["paths"]))


def shares_figure(layers: pd.DataFrame, *, title: str, top: int = TOP_N, summary: str = ""):
    """Horizontal bars of the layers' shares of the sum of the model's layers: the `top` largest by name (coloured
    by what bounds them), the rest as one bar; each bar says its share and calls x median. summary: a line under
    the title (the model against the sum of its layers)."""
    ran = layers[layers["share"].notna()].sort_values("total_s", ascending=False)
    shown, rest = ran.iloc[:top], ran.iloc[top:]
    labels = [f"{w} (x{c})" if c > 1 else str(w) for w, c in zip(shown["workload"], shown["count"])]
    shares, colors = list(shown["share"]), [BOUND_COLORS.get(b, BOUND_COLORS["unknown"]) for b in shown["bound"]]
    notes = [fmt_s(t, 3) + ("" if v in ("", "unknown") else f"; {verdict_text(v, p)}")
             for t, v, p in zip(shown["total_s"], shown["verdict"], shown["pct_of_roof"])]
    if len(rest):
        labels.append(f"other {len(rest)} layers")
        shares.append(float(rest["share"].sum()))
        colors.append("#dddddd")
        notes.append(fmt_s(float(rest["total_s"].sum()), 3))
    fig, ax = plt.subplots(figsize=(9, 1.3 + 0.38 * max(len(labels), 1)))
    ax.barh(range(len(labels)), [100 * s for s in shares], color=colors, edgecolor="black", linewidth=0.4)
    for y, (s, note) in enumerate(zip(shares, notes)):
        ax.text(100 * s, y, f" {100 * s:.1f}% ({note})", va="center", fontsize=8, parse_math=False)
    ax.set_yticks(range(len(labels)), labels=[mpl_text(x) for x in labels], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, max([100 * s for s in shares] + [1.0]) * 1.3)
    ax.set_xlabel("share of the sum of the layers' time (calls x median per call, each layer timed alone)")
    handles = [Patch(color=BOUND_COLORS.get(name, BOUND_COLORS["unknown"]), label=mpl_text(f"bound by {name}"))
               for name in dict.fromkeys(shown["bound"])]
    if handles:
        ax.legend(handles=handles, fontsize=7, loc="lower right")
    ax.set_title(f"{title}\n{summary}" if summary else title, fontsize=10, parse_math=False)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def _chosen(models: pd.DataFrame) -> pd.Series:
    """The model row whose layers the chart and the table show: the default variant's, else the first measured."""
    default = models[models["variant"] == DEFAULT_VARIANT]
    return default.iloc[0] if len(default) else models.iloc[0]


def _section(index: int, where: str, rows: pd.DataFrame, device_rows: pd.DataFrame, peaks: Peaks | None,
             threads: int) -> ModelSection:
    models = rows[rows["kind"] == "model"]
    pick = _chosen(models)
    same = (rows["dtype"] == pick["dtype"]) & (rows["variant"] == pick["variant"])
    layers = rows[same & (rows["kind"] == "layer")]
    name = pick["model"] or pick["workload"]
    label = pick["variant"] if pick["dtype"] in pick["variant"] else f"{pick['variant']}, {pick['dtype']}"
    notes = [OUTSIDE_NOTE]
    figures: dict[str, bytes] = {}
    if layers["share"].notna().any():
        caption = f"{name}: share of each layer, {where}, {label}"
        figures[caption] = png(shares_figure(layers, title=caption, summary=summary_line(pick)))
    if peaks is not None:
        caption = f"{name} on the roofline, {where}"
        highlight = set(rows["workload"])
        figures[caption] = png(roofline_figure(device_rows, peaks, title=caption, highlight=highlight))
    else:
        notes.append(f"no peaks for this machine ({threads} threads): no roofline and no verdicts for the layers")
    ran = layers[layers["total_s"].notna()]
    return ModelSection(anchor=f"model-{index + 1}", title=f"Model {name}: {where}",
                        summary_headers=SUMMARY_HEADERS, summary=tuple(_summary_row(m) for _, m in models.iterrows()),
                        top_title=f"Largest layers ({label}): {min(len(ran), TOP_N)} of {len(layers)}",
                        top_headers=TOP_HEADERS, top=tuple(_top_row(r) for _, r in ran.iloc[:TOP_N].iterrows()),
                        notes=tuple(notes), figures=figures)


def model_sections(frame: pd.DataFrame, table: pd.DataFrame,
                   peaks: dict[tuple[str, int], Peaks]) -> tuple[ModelSection, ...]:
    """A section per model, machine and device of the attribution `table` (bench.store.attribution.attribute over
    the report's annotated `frame`); peaks: as bench.report.build.peaks_for_rows found them."""
    if table.empty:
        return ()
    sections = []
    context = [c for c in ("run", "machine") if c in table.columns]
    for keys, rows in table.groupby([*context, "device", "model"], sort=False):
        values = dict(zip([*context, "device", "model"], keys))
        machine, device = values.get("machine", ""), values["device"]
        on = frame[(frame["device"] == device) & ((frame["machine"] == machine) if "machine" in frame else True)]
        mine = on[on["workload"].isin(set(rows["workload"]))]
        threads = int(mine["threads"].dropna().iloc[0]) if device == "cpu" and mine["threads"].notna().any() else 0
        key = str(mine["machine_key"].iloc[0]) if "machine_key" in mine and len(mine) else ""
        where = f"{machine} ({device})" if machine else device
        sections.append(_section(len(sections), where, rows, on, peaks.get((key, threads)), threads))
    return tuple(sections)


def model_line(m: pd.Series) -> str:
    """One line per model, device, dtype and variant: its time, the sum of its layers and what lies outside."""
    where = ", ".join(str(m[c]) for c in ("machine", "device", "variant", "dtype") if c in m and str(m[c]))
    ratio = "" if pd.isna(m["ratio"]) else f" ({m['ratio']:.2f}x the model)"
    line = (f"{m['model'] or m['workload']} [{where}]: model {fmt_s(m['median_s'])}, sum of layers "
            f"{fmt_s(m['layers_sum_s'])}{ratio}, outside the layers {fmt_s(m['outside_s'])}")
    return f"{line}; {m['note']}" if m["note"] else line


def _layers(rows: pd.DataFrame, top: int) -> str:
    shown = rows if top == 0 else rows.iloc[:top]
    table = shown[list(LAYER_COLUMNS)].rename(columns=LAYER_COLUMNS)
    table["median/call"] = [fmt_s(x) for x in shown["median_s"]]
    table["total"] = [fmt_s(x) for x in shown["total_s"]]
    table["share"] = ["-" if pd.isna(x) else f"{100 * x:.1f}%" for x in shown["share"]]
    table["verdict"] = [v if s == "ok" else s for v, s in zip(shown["verdict"], shown["status"])]
    more = f"\n  ... {len(rows) - len(shown)} more layers" if len(rows) > len(shown) else ""
    return "  " + table.to_string(index=False).replace("\n", "\n  ") + more


def models_text(table: pd.DataFrame, *, top: int = 0) -> list[str]:
    """The console's text of an attribution table (`attribution`, and `report` for the models it reported): a model
    line per model, device, dtype and variant; its layers when top > 0 (largest first, 0 lines without)."""
    lines: list[str] = []
    starts = [i for i, kind in enumerate(table["kind"]) if kind == "model"] + [len(table)]
    for a, b in pairwise(starts):
        lines.append(model_line(table.iloc[a]))
        if top and b > a + 1:
            lines.append(_layers(table.iloc[a + 1:b], top))
    return lines
