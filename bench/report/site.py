"""The history site's data: what the pages show, as JavaScript files that set globals (a page opened from
file:// may not fetch() JSON in Chromium, but it may load <script src>).

data/index.js   LB_INDEX: every trend (row identity x machine key) with its latest value, a sparkline, its
                latest change point and verdict; the filters' choices. The overview and machines pages read it.
data/changes.js LB_CHANGES: every change point, newest first, with the commit range where it may have started
                and a command that reproduces it; changes of the whole suite carry suite: true.
data/runs.js    LB_RUNS: every run, oldest first, as columns (id, time, commit, branch, label, host, link).
data/rows/ID.js one trend's series (LBSite.row(ID, {...})), loaded by row.html only when it is opened.

Numbers are rounded to SIGNIFICANT digits and series are columns of indices into LB_RUNS, which keeps a store of
10,000 runs x 100 rows to tens of megabytes; bench.report.site_pages writes the pages that read these files.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shlex
from pathlib import Path

import numpy as np
import pandas as pd

from bench.schema import KEY_COLUMNS

IDENTITY = (*KEY_COLUMNS, "machine_key")  # a trend, as bench.gate.changes.IDENTITY (the report does not import gate)
SPARK_POINTS = 60  # the newest runs of a trend drawn in its sparkline on the overview
SIGNIFICANT = 5  # digits kept of every time, ratio and spread in the data files


def row_id(identity: tuple) -> str:
    """A trend's file name in data/rows: a hash of its identity (names may hold any character)."""
    return "r" + hashlib.sha1("\x1f".join(map(str, identity)).encode()).hexdigest()[:12]


def _num(value) -> float | None:
    """A number rounded to SIGNIFICANT digits, None for a missing one (JSON has no NaN)."""
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        return None
    return float(f"{value:.{SIGNIFICANT}g}")


def _nums(values) -> list:
    return [_num(v) for v in values]


def js_file(name: str, value) -> str:
    """A script that sets window.<name> to value (JSON; '</' escaped so that no string ends a script element)."""
    return f"window.{name} = {_json(value)};\n"


def _json(value) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).replace("</", "<\\/")


def run_link(run_path: str, out: Path) -> str:
    """A link from the site's folder to a run's report.html, else its folder; "" when neither exists on this machine."""
    if not run_path:
        return ""
    folder = Path(run_path)
    target = folder / "report.html" if (folder / "report.html").is_file() else folder
    if not target.exists():
        return ""
    try:
        return Path(os.path.relpath(target, out.resolve())).as_posix()
    except ValueError:  # another drive (Windows): an absolute link
        return target.resolve().as_uri()


def runs_table(frame: pd.DataFrame, out: Path) -> tuple[dict, dict[str, int]]:
    """LB_RUNS (one entry per run, in run order) and run id -> its index there."""
    runs = frame.drop_duplicates("run_id").sort_values(["time_utc", "run_id"], kind="stable")
    table = {"id": runs["run_id"].tolist(), "time": runs["time_utc"].tolist(), "commit": runs["git_commit"].tolist(),
             "branch": runs["git_branch"].tolist(), "label": runs["label"].tolist(), "host": runs["host"].tolist(),
             "config": runs["config"].tolist(), "link": [run_link(p, out) for p in runs["run_path"]]}
    return table, {r: i for i, r in enumerate(table["id"])}


def reproduce(config: str, identity: dict, before: str, after: str, *, whole_suite: bool = False) -> str:
    """The command that measures a change again: `ab` of the row's suite (all of it for a change of the whole
    suite), the commit before against the commit where the new level starts (checked out first)."""
    suite = config.split(",")[0] if config else "SUITE"
    parts = ["layerbench", "ab", suite]
    if not whole_suite:
        parts += ["--filter", identity["workload"]]
    if identity["device"] in ("cpu", "cuda"):
        parts += ["--device", identity["device"]]
    parts += ["--base-ref", before or "BEFORE"]
    command = " ".join(shlex.quote(p) for p in parts)
    return f"git checkout {shlex.quote(after)} && {command}" if after else command


def _suite_trends(values: pd.DataFrame, suite: str) -> dict[tuple, pd.DataFrame]:
    """The series of suite factors change points were searched in (bench.gate.changes.judge: one per device and
    machine, over the runs judged relative), by the identity of their changes."""
    if not len(values) or "relative" not in values or not values["relative"].any():
        return {}
    runs = values[values["relative"]].drop_duplicates(["run_id", "device", "machine_key"])
    return {(suite, device, "", "", machine): part.reset_index(drop=True)
            for (device, machine), part in runs.groupby(["device", "machine_key"], sort=True)}


def change_records(changes: pd.DataFrame, values: pd.DataFrame, *, suite: str) -> list[dict]:
    """LB_CHANGES: one record per change point, newest first; suite: the workload name of a whole-suite change."""
    trends = {key: part.reset_index(drop=True) for key, part in values.groupby(list(IDENTITY), sort=True)}
    trends.update(_suite_trends(values, suite))
    out = []
    for _, c in changes.iterrows():
        key = tuple(c[k] for k in IDENTITY)
        trend = trends.get(key)
        earliest = int(c["earliest_position"])
        before = trend.iloc[earliest - 1] if trend is not None and earliest >= 1 else None
        identity = dict(zip(IDENTITY, key))
        at = trend.iloc[int(c["position"])] if trend is not None else None
        config = str(at["config"]) if at is not None else ""
        before_commit = str(before["git_commit"]) if before is not None else ""
        whole = key[0] == suite
        out.append(dict(identity, machine=identity.pop("machine_key"), suite=whole, row="" if whole else row_id(key),
                        run=c["run_id"], commit=c["git_commit"], time=c["time_utc"], position=int(c["position"]),
                        n_runs=int(c["n_runs"]), earliest_commit=c["earliest_commit"],
                        earliest_run=c["earliest_run_id"],
                        before_commit=before_commit, before_run=str(before["run_id"]) if before is not None else "",
                        ratio=_num(c["ratio"]), raw_ratio=_num(c["raw_ratio"]), direction=c["direction"],
                        before_s=_num(c["before_median_s"]), after_s=_num(c["after_median_s"]), config=config,
                        command=reproduce(config, dict(zip(IDENTITY, key)), before_commit, str(c["git_commit"]),
                                          whole_suite=whole)))
    out.sort(key=lambda r: (r["time"], r["run"]), reverse=True)
    return out


def _verdict(latest_status: str, change: dict | None) -> str:
    """A trend in one word: failed (its newest run did not run ok), slower or faster (its newest change point),
    else steady."""
    if latest_status != "ok":
        return latest_status or "failed"
    return change["direction"] if change else "steady"


def trend_files(frame: pd.DataFrame, values: pd.DataFrame, changes: pd.DataFrame, run_index: dict[str, int],
                *, column: str) -> tuple[list[dict], dict[str, str]]:
    """LB_INDEX's rows and the data/rows files (file name -> text), one per trend in the frame; column: the
    stored statistic the trends follow."""
    ok_trends = {key: part for key, part in values.groupby(list(IDENTITY), sort=True)}
    by_trend = {key: part for key, part in changes.groupby(list(IDENTITY), sort=True)} if len(changes) else {}
    rows, files = [], {}
    for key, part in frame.groupby(list(IDENTITY), sort=True):
        rid = row_id(key)
        ok = ok_trends.get(key, part.iloc[:0])
        found = by_trend.get(key, changes.iloc[:0])
        marks = [dict(position=int(c["position"]), earliest=int(c["earliest_position"]),
                      latest=int(c["latest_position"]), ratio=_num(c["ratio"]), raw_ratio=_num(c["raw_ratio"]),
                      direction=c["direction"], commit=c["git_commit"], run=c["run_id"],
                      before_s=_num(c["before_median_s"]), after_s=_num(c["after_median_s"]))
                 for _, c in found.iterrows()]
        failed = part[part["status"] != "ok"]
        latest = part.iloc[-1]
        change = max(marks, key=lambda m: m["position"]) if marks else None
        if change is not None:
            change = dict(change, time=str(ok.iloc[change["position"]]["time_utc"]))
        identity = dict(zip(IDENTITY, key))
        identity["machine"] = identity.pop("machine_key")
        values_s = ok["value"].to_numpy(dtype=float) if len(ok) else np.array([])
        rows.append(dict(identity, id=rid, tags=[t for t in str(latest["tags"]).split(",") if t], n_runs=len(part),
                         n_ok=len(ok), latest_s=_num(values_s[-1]) if len(values_s) else None,
                         latest_time=str(latest["time_utc"]), latest_commit=str(latest["git_commit"]),
                         latest_status=str(latest["status"]), spark=_nums(values_s[-SPARK_POINTS:]),
                         change=change, verdict=_verdict(str(latest["status"]), change)))
        series = dict(identity, id=rid, column=column,
                      run=[run_index[r] for r in ok["run_id"]], value=_nums(values_s),
                      median=_nums(ok["median_s"]), spread=_nums(ok["rel_iqr_between"]),
                      judged=_nums(ok["relative_value"]) if "relative_value" in ok else [],
                      relative=bool(ok["relative"].any()) if "relative" in ok and len(ok) else False,
                      changes=marks, failed=[[run_index[r], s, str(w)[:200]] for r, s, w in
                                             zip(failed["run_id"], failed["status"], failed["reason"])])
        files[f"data/rows/{rid}.js"] = f"LBSite.row({_json(rid)}, {_json(series)});\n"
    return rows, files


def site_data(frame: pd.DataFrame, values: pd.DataFrame, changes: pd.DataFrame, *, store: str, out: Path,
              column: str, suite: str, generated_utc: str) -> dict[str, str]:
    """Every data file of the site (path under the site's folder -> text) from a history frame and its judgement
    (bench.gate.changes.judge); out: the site's folder, from which run folders are linked; column: the stored
    statistic the trends follow; suite: the workload name of a change of the whole suite."""
    runs, run_index = runs_table(frame, out)
    rows, files = trend_files(frame, values, changes, run_index, column=column)
    tags = sorted({t for r in rows for t in r["tags"]})
    index = dict(store=store, generated_utc=generated_utc, column=column,
                 n_runs=len(runs["id"]), n_trends=len(rows), rows=rows, tags=tags,
                 relative=bool(values["relative"].any()) if "relative" in values and len(values) else False,
                 **{f"{c}s": sorted({str(r[c]) for r in rows}) for c in ("device", "dtype", "variant", "machine")})
    files["data/index.js"] = js_file("LB_INDEX", index)
    files["data/changes.js"] = js_file("LB_CHANGES", change_records(changes, values, suite=suite))
    files["data/runs.js"] = js_file("LB_RUNS", runs)
    return files
