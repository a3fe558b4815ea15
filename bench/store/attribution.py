"""A model's time attributed to its layers: the pure table behind `bench.attribution`, layers.csv and the report's
model sections.

A model run (bench.layers) has, per device, dtype and variant, one results row per distinct layer (kind "layer":
`count` calls of the model stand for it, `paths` name them) and one row of the whole model (kind "model"). Per
layer: total_s = count x median_s, the layer's time in one forward of the model as measured in isolation, and
share = total_s / the sum of total_s over the model's layers that ran. Per model: layers_sum_s (that sum),
outside_s = the model's median_s - layers_sum_s, and ratio = layers_sum_s / the model's median_s.

outside_s is what lies outside the isolated layers. Positive: the model spends time no layer accounts for:
functional calls between modules (torch.flatten, a residual addition, an activation called as F.relu), Python
between modules, and layers that run faster alone (back-to-back isolated calls keep their input and weights in
cache, which the model's larger working set evicts). Negative: the isolated layers together cost more than the
model: each isolated call pays its own dispatch and launch path, where the model's kernels queue back to back
and hide it (a launch-bound layer shows it most), and in the model a layer's input is the previous layer's
output, still in cache. The table cannot tell these apart; the sign says which side dominates.

Rows that did not run (status other than ok) are kept with NaN figures and their status and reason; the
model's row then says how many of its layers have no time (failed_layers), and outside_s and ratio are NaN
because the sum is incomplete. The roofline columns (verdict, pct_of_roof, ridge_flop_per_byte) are read from
the frame when bench.report.roofline has annotated it; without them a row's verdict is "launch-bound" when
results.csv says so, else "unknown".
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from bench.schema import DEFAULT_VARIANT
from bench.store.cells import neutralize
from bench.store.files import write_atomic
from bench.store.run_record import Run

LAYERS_FILE = "layers.csv"  # beside results.csv; derived from it: rewritten, never read back
KINDS = ("layer", "model")
GROUP_COLUMNS = ["model", "device", "dtype", "variant"]
# In a report's merged frame (bench.report.build.merge_runs): rows of different runs or machines are kept apart.
CONTEXT_COLUMNS = ["run", "machine"]
ATTRIBUTION_COLUMNS = [
    "model", "workload", "kind", "device", "dtype", "variant", "status", "reason", "module_type", "count", "paths",
    "median_s", "total_s", "share", "layers_sum_s", "outside_s", "ratio", "failed_layers", "flops", "bytes",
    "verdict", "bound", "pct_of_roof", "note",
]
UNKNOWN = "unknown"


def _num(value) -> float:
    """A finite float, or NaN for anything else (None, NaN, text)."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return math.nan
    return x if math.isfinite(x) else math.nan


def _text(value) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def _kinds(frame: pd.DataFrame) -> pd.Series:
    if "kind" not in frame.columns:
        return pd.Series("", index=frame.index, dtype=object)
    return frame["kind"].map(_text)


def has_models(frame: pd.DataFrame) -> bool:
    """Whether a results frame holds rows of a model (kind "layer" or "model")."""
    return bool(_kinds(frame).isin(KINDS).any())


def verdict_of(row: pd.Series) -> str:
    """A row's roofline verdict: the annotated one, else "launch-bound" when results.csv says so, else "unknown";
    "" for a row that did not run."""
    if row.get("status") != "ok":
        return ""
    verdict = _text(row.get("verdict"))
    if verdict:
        return verdict
    flag = row.get("launch_bound")
    return "launch-bound" if flag is not None and not pd.isna(flag) and bool(flag) else UNKNOWN


def bound_of(row: pd.Series, verdict: str) -> str:
    """What bounds a row that ran: "launch", "no work", "compute" (at or right of the ridge point) or "memory"
    (left of it), "unknown" without peaks; the side of the ridge is given even when the verdict is "far below
    roof" or "above roof"."""
    if row.get("status") != "ok":
        return ""
    if verdict == "launch-bound":
        return "launch"
    if verdict == "no work":
        return "no work"
    ridge, flops, nbytes = _num(row.get("ridge_flop_per_byte")), _num(row.get("flops")), _num(row.get("bytes"))
    if math.isnan(ridge) or math.isnan(nbytes) or nbytes <= 0:
        return UNKNOWN
    return "compute" if (0.0 if math.isnan(flops) else flops) / nbytes >= ridge else "memory"


def _count(value) -> int:
    x = _num(value)
    return int(x) if not math.isnan(x) and x >= 1 else 1


def _base(row: pd.Series, context: list[str]) -> dict:
    ok = row.get("status") == "ok"
    verdict = verdict_of(row)
    median = _num(row.get("median_s")) if ok else math.nan
    count = _count(row.get("count"))
    out = {c: row.get(c) for c in context}
    out.update(model=_text(row.get("model")), workload=str(row["workload"]), kind=_text(row.get("kind")),
               device=str(row["device"]), dtype=str(row["dtype"]), variant=_text(row.get("variant")) or DEFAULT_VARIANT,
               status=_text(row.get("status")), reason=_text(row.get("reason")),
               module_type=_text(row.get("module_type")), count=count, paths=_text(row.get("paths")),
               median_s=median, total_s=count * median, share=math.nan, layers_sum_s=math.nan, outside_s=math.nan,
               ratio=math.nan, failed_layers=math.nan, flops=_num(row.get("flops")), bytes=_num(row.get("bytes")),
               verdict=verdict, bound=bound_of(row, verdict),
               pct_of_roof=_num(row.get("pct_of_roof")) if ok else math.nan, note="")
    return out


def _model_row(group: pd.DataFrame, layers: list[dict], context: list[str]) -> dict:
    """The model's row: its own time against the sum of its layers' (see the module's docstring)."""
    models = group[_kinds(group) == "model"]
    if len(models):
        row = _base(models.iloc[0], context)
    else:  # the run has layers of the model but not its whole-model row (a filter left it out): one without a time
        first = group.iloc[0]
        row = _base(first, context)
        row.update(workload=row["model"] or row["workload"], kind="model", status="", reason="", module_type="",
                   count=1, paths="", median_s=math.nan, total_s=math.nan, flops=math.nan, bytes=math.nan, verdict="",
                   bound="", pct_of_roof=math.nan)
    ran = [x for x in layers if not math.isnan(x["total_s"])]
    missing = [x for x in layers if math.isnan(x["total_s"])]
    notes = []
    row["failed_layers"] = len(missing)
    row["layers_sum_s"] = math.fsum(x["total_s"] for x in ran) if ran else math.nan
    if missing:
        names = ", ".join(f"{x['workload']} ({x['status'] or 'no status'})" for x in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        notes.append(f"{len(missing)} of {len(layers)} layers have no time: {names}{more}; layers_sum_s is the sum "
                     f"of the {len(ran)} that ran, shares are of that sum")
    if not len(models):
        notes.append("the run has no row of the whole model")
    elif row["status"] != "ok":
        notes.append(f"the whole model did not run ({row['status']}): {row['reason']}".rstrip(": "))
    if not missing and not math.isnan(row["median_s"]) and not math.isnan(row["layers_sum_s"]):
        row["outside_s"] = row["median_s"] - row["layers_sum_s"]
        row["ratio"] = row["layers_sum_s"] / row["median_s"]
    row["note"] = "; ".join(notes)
    return row


def _group(group: pd.DataFrame, context: list[str]) -> list[dict]:
    """One model on one device, dtype and variant: its row, then its layers from the largest total_s down (the
    layers without a time last, in their order)."""
    layers = [_base(r, context) for _, r in group[_kinds(group) == "layer"].iterrows()]
    total = math.fsum(x["total_s"] for x in layers if not math.isnan(x["total_s"]))
    for x in layers:
        if not math.isnan(x["total_s"]) and total > 0:
            x["share"] = x["total_s"] / total
    layers.sort(key=lambda x: (math.isnan(x["total_s"]), -(0.0 if math.isnan(x["total_s"]) else x["total_s"])))
    return [_model_row(group, layers, context), *layers]


def attribute(frame: pd.DataFrame) -> pd.DataFrame:
    """The attribution table of a results frame (results.csv's columns, optionally with bench.report.roofline's
    columns and a report's run and machine columns): per model, device, dtype and variant, the model's row and its
    layers' rows (ATTRIBUTION_COLUMNS, see the module's docstring). Plain workloads are left out; a frame without
    rows of a model gives an empty table with the columns."""
    context = [c for c in CONTEXT_COLUMNS if c in frame.columns]
    rows = frame[_kinds(frame).isin(KINDS)]
    columns = [*context, *ATTRIBUTION_COLUMNS]
    if rows.empty:
        return pd.DataFrame(columns=columns)
    variant = rows["variant"].map(_text) if "variant" in rows.columns else pd.Series("", index=rows.index)
    keyed = rows.assign(_model=rows["model"].map(_text) if "model" in rows.columns else "",
                        _variant=variant.replace("", DEFAULT_VARIANT))
    keys = [*context, "_model", "device", "dtype", "_variant"]
    out = []
    for _, group in keyed.groupby(keys, sort=False, dropna=False):
        out += _group(group.drop(columns=["_model", "_variant"]), context)
    table = pd.DataFrame(out, columns=columns)
    return table.astype({"count": int, "failed_layers": float})


def layers_csv(table: pd.DataFrame) -> str:
    """An attribution table as CSV text (no cell reads as a spreadsheet formula)."""
    return neutralize(table).to_csv(index=False)


def write_layers(run: Run, *, table: pd.DataFrame | None = None) -> Path | None:
    """Write layers.csv into the run's folder when the run has rows of a model: `table`, else the attribution of
    its results (verdicts only as results.csv gives them: `layerbench report` rewrites it with the roofline).
    Returns the path, or None: no rows of a model, a run kept in memory, or rounds pooled from several folders.
    OSError propagates (the caller names the folder)."""
    if len(run.run_dirs) != 1 or not has_models(run.results):
        return None
    return write_atomic(run.run_dirs[0] / LAYERS_FILE, layers_csv(attribute(run.results) if table is None else table))
