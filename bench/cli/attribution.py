"""`attribution`: where a model's time goes among its layers (bench.attribution), printed; and the lines `report`
prints about the models it reported."""
from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pandas as pd

from bench.api.attributing import attribution
from bench.api.comparing import load
from bench.cli.common import EXIT_OK, add_root, command, number
from bench.errors import BenchError, Problem
from bench.store.attribution import LAYERS_FILE
from bench.units import fmt_s

LAYER_COLUMNS = {"workload": "layer", "module_type": "type", "count": "calls", "median_s": "median/call",
                 "total_s": "total", "share": "share", "bound": "bound by", "verdict": "verdict"}


def register(sub) -> None:
    p = command(sub, "attribution", help="print where a model's time goes among its layers (a run of `--model`): "
                "each layer's calls x median, its share, what bounds it; the model against the sum of its layers")
    p.add_argument("run", help="a run folder (or the folder given to `run --out`, or its results.csv)")
    p.add_argument("--top", type=number(minimum=0, integer=True), default=10,
                   help="layers shown per model, largest first (0: all)")
    p.add_argument("--peaks", default="", help="roofs to use: a config (name or .py path) whose PEAKS give them, "
                   "or a peaks.json (empty: peaks.json in the run folder, then this machine's cache under "
                   "<root>/peaks)")
    add_root(p)
    p.set_defaults(func=cmd_attribution)


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


def print_models(table: pd.DataFrame, *, top: int = 0, written: Path | None = None) -> None:
    """A model line per model, device, dtype and variant of an attribution table; its layers when top > 0
    (largest first, 0 lines without); the layers.csv written, when given."""
    if table.empty:
        return
    starts = [i for i, kind in enumerate(table["kind"]) if kind == "model"] + [len(table)]
    for a, b in pairwise(starts):
        print(model_line(table.iloc[a]))
        if top and b > a + 1:
            print(_layers(table.iloc[a + 1:b], top))
    if written is not None:
        print(f"Wrote {written}")


def cmd_attribution(args) -> int:
    table = attribution(load(args.run), peaks=args.peaks or None, root=args.root)
    if table.empty:
        raise BenchError(Problem(where=args.run, field="RUN", expected="rows of a model (`layerbench run --model ...`)",
                                 found="plain workloads only"))
    print_models(table, top=args.top if args.top else len(table))
    return EXIT_OK


def report_models(table: pd.DataFrame, out: Path) -> None:
    """What `report` prints about the models it reported: a line per model, and the layers.csv it wrote."""
    print_models(table, written=out / LAYERS_FILE if len(table) else None)
