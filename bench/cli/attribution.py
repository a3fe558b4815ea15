"""`attribution`: where a model's time goes among its layers (bench.attribution), printed
(bench.report.attribution.models_text)."""
from __future__ import annotations

from bench.api.comparing import load
from bench.api.reporting import attribution
from bench.cli.common import EXIT_OK, add_root, command, number
from bench.errors import BenchError, Problem
from bench.report.attribution import models_text


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


def cmd_attribution(args) -> int:
    table = attribution(load(args.run), peaks=args.peaks or None, root=args.root)
    if table.empty:
        raise BenchError(Problem(where=args.run, field="RUN", expected="rows of a model (`layerbench run --model ...`)",
                                 found="plain workloads only"))
    for line in models_text(table, top=args.top if args.top else len(table)):
        print(line)
    return EXIT_OK
