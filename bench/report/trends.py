"""Trends over runs: one figure per row identity (median and its spread per run, one line per machine type,
change points marked) and one HTML page that lists the changes and shows the figures."""
from __future__ import annotations

import html

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # below matplotlib.use("Agg")
import pandas as pd  # below matplotlib.use("Agg")

from bench.report.plots import png  # below matplotlib.use("Agg")
from bench.schema import KEY_COLUMNS, OK, RowKey  # below matplotlib.use("Agg")
from bench.store.cells import mpl_text  # below matplotlib.use("Agg")

CSS = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}table{border-collapse:collapse;"
       "font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}tr.slower td{background:#fde2e1}"
       "tr.faster td{background:#e3f5e1}figure{margin:1em 0}img{max-width:100%}.note{color:#555;font-size:13px}")


def trend_figure(trend: pd.DataFrame, changes: pd.DataFrame, *, title: str):
    """Median per run (a dot, the bar its IQR) over time, one colour per machine key; change points as dashed
    lines labelled with the ratio and commit."""
    fig, ax = plt.subplots(figsize=(9, 3.2))
    for i, (machine, part) in enumerate(trend.groupby("machine_key", sort=True)):
        when = pd.to_datetime(part["time_utc"], utc=True, errors="coerce")
        color = f"C{i % 10}"
        ax.errorbar(when, part["median_s"] * 1e3, yerr=part["iqr_s"].fillna(0) * 1e3 / 2, fmt="o-", ms=3, lw=0.8,
                    elinewidth=0.8, color=color, label=mpl_text(f"{machine or '(no machine key)'}: median, IQR"))
        if part["fastest_process_median_s"].notna().any():
            ax.plot(when, part["fastest_process_median_s"] * 1e3, "x", ms=4, color=color,
                    label=mpl_text(f"{machine or '(no machine key)'}: fastest process"))
        if "relative" in part and part["relative"].any():
            ax.plot(when, part["relative_value"] * 1e3, "+", ms=6, color="k",
                    label=mpl_text(f"{machine or '(no machine key)'}: judged (over the run's suite factor)"))
        for _, change in changes[changes["machine_key"] == machine].iterrows():
            at = pd.to_datetime(change["time_utc"], utc=True, errors="coerce")
            ax.axvline(at, color=color, ls="--", lw=1)
            ax.annotate(f"{change['ratio']:.2f}x at {mpl_text(change['git_commit'] or change['run_id'][:8])}",
                        (at, ax.get_ylim()[1]), rotation=90, va="top", ha="right", fontsize=7, annotation_clip=False)
    ax.set_ylabel("median per call (ms)")
    ax.set_title(title, fontsize=10, parse_math=False)
    ax.legend(fontsize=7, loc="best", framealpha=0.7)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def trend_figures(history: pd.DataFrame, changes: pd.DataFrame) -> dict[RowKey, bytes]:
    """Row identity -> PNG of its trend, for identities with ok rows."""
    ok = history[(history["status"] == OK) & (history["median_s"] > 0)]
    out = {}
    for key, trend in ok.groupby(list(KEY_COLUMNS), sort=True):
        mine = changes
        for name, value in zip(KEY_COLUMNS, key):
            mine = mine[mine[name] == value]
        row = RowKey(*key)
        out[row] = png(trend_figure(trend, mine, title=row.label))
    return out


def suite_figure(values: pd.DataFrame, changes: pd.DataFrame) -> bytes | None:
    """The suite factor per run (how much slower or faster the whole run was than its rows' own levels), one line
    per device and machine key, the suite's change points (changes: those of the suite alone) dashed; None when
    no run was judged relative to its suite (bench.gate.changes)."""
    runs = values[values["relative"]].drop_duplicates(["run_id", "device", "machine_key"])
    if runs.empty:
        return None
    fig, ax = plt.subplots(figsize=(9, 3.2))
    for i, ((device, machine), part) in enumerate(runs.groupby(["device", "machine_key"], sort=True)):
        color = f"C{i % 10}"
        ax.plot(pd.to_datetime(part["time_utc"], utc=True, errors="coerce"), part["suite_factor"], "o-", ms=3,
                lw=0.8, color=color, label=mpl_text(f"{device} {machine or '(no machine key)'}"))
        mine = changes[(changes["device"] == device) & (changes["machine_key"] == machine)]
        for _, change in mine.iterrows():
            ax.axvline(pd.to_datetime(change["time_utc"], utc=True, errors="coerce"), color=color, ls="--", lw=1)
    ax.axhline(1.0, color="0.6", lw=0.6)
    ax.set_ylabel("suite factor (x)")
    ax.set_title("whole suite: each run against its rows' own levels", fontsize=10)
    ax.legend(fontsize=7, loc="lower left")
    fig.autofmt_xdate()
    fig.tight_layout()
    return png(fig)


def render_page(history: pd.DataFrame, changes: pd.DataFrame, figures: dict[RowKey, str], *, store: str) -> str:
    """The history page: where the data comes from, the change points, then every trend (figures: identity ->
    PNG file name beside the page)."""
    runs, machines = history["run_id"].nunique(), history["machine_key"].nunique()
    head = ["row", "machine", "ratio", "direction", "before", "after", "from commit", "may start from", "run",
            "time (UTC)"]
    rows = []
    for _, c in changes.iterrows():
        ms = (lambda v: "" if pd.isna(v) else f"{v * 1e3:.4g} ms")  # noqa: E731 - a suite change has no seconds
        cells = [RowKey.of(c).label, c["machine_key"], f"{c['ratio']:.3f}x",
                 c["direction"], ms(c["before_median_s"]), ms(c["after_median_s"]),
                 c["git_commit"], c["earliest_commit"] if c["earliest_position"] != c["position"] else "",
                 c["run_id"], c["time_utc"]]
        rows.append(f"<tr class='{html.escape(c['direction'])}'>"
                    + "".join(f"<td>{html.escape(str(x))}</td>" for x in cells) + "</tr>")
    table = (f"<table><thead><tr>{''.join(f'<th>{h}</th>' for h in head)}</tr></thead><tbody>{''.join(rows)}"
             "</tbody></table>") if rows else "<p>No change points.</p>"
    figs = "".join(f"<figure><img alt='{html.escape(k.label)}' src='{html.escape(name)}'>"
                   f"<figcaption>{html.escape(k.label)}</figcaption></figure>" for k, name in figures.items())
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>layerbench history</title>"
            f"<style>{CSS}</style></head><body><h1>layerbench history</h1>"
            f"<p class='note'>{runs} runs on {machines} machine type(s) from {html.escape(store)}. A change point is "
            "where a row's median moved to another level and held it for at least 3 runs (ruptures' kernel "
            "change-point detection on log medians scaled by the row's run-to-run noise, odd runs clipped; "
            "docs/history.md). Where a run has at least 5 rows, each row is judged relative to its run's suite "
            "factor (the median of how far the run's rows are from their own levels), so a busy machine is not a "
            "change; moves of the whole suite are listed as '(whole suite)'. Ratio = the change relative to the "
            "suite (median after / before where judged on its own).</p>"
            f"<h2>Changes</h2>{table}<h2>Trends</h2>{figs}</body></html>\n")

