"""`report` and `peaks`: a report over runs (it never measures unless asked to) and this machine's roofs."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.api.reporting import default_report_dir, make_report, peaks
from bench.cli.common import EXIT_OK, add_root, command, err, number, read_run
from bench.errors import BenchError, Problem
from bench.report.attribution import models_text
from bench.schema import OK
from bench.store.attribution import LAYERS_FILE
from bench.store.files import writable_folder
from bench.store.folder import latest_run_dir

PEAKS_HELP = "roofs to use: a config (name or .py path) whose PEAKS give them, or a peaks.json"


def register(sub) -> None:
    p = command(sub, "report", help="write report.html and report.md over one or more runs (one or many machines)")
    p.add_argument("runs", nargs="*", help="runs: run folders, folders given to `run --out`, or results.csv files")
    p.add_argument("--latest", action="store_true",
                   help="report on the newest run folder under --root (named on stderr)")
    add_root(p)
    p.add_argument("--out", default="",
                   help="the folder this command writes the report into (empty: the first run's folder)")
    p.add_argument("--peaks", default="", help=PEAKS_HELP + " (empty: peaks.json in the run folders, then this "
                   "machine's cache under <root>/peaks)")
    p.add_argument("--probe-peaks", action="store_true",
                   help="measure this machine's peaks when none are found (announced; a few seconds)")
    p.add_argument("--quick-peaks", action="store_true",
                   help="with --probe-peaks: small sizes, under a second, rougher")
    p.add_argument("--site", default=None, metavar="DIR", help="a history site (`history site --out DIR`) the report "
                   "links to")
    p.set_defaults(func=cmd_report)

    p = command(sub, "peaks", help="show this machine's peak FLOP/s and bytes/s per device (cached; probed when not)")
    p.add_argument("--device", choices=["cpu", "cuda", "all"], default="all", help="which devices")
    p.add_argument("--threads", type=number(minimum=1, integer=True), default=None,
                   help="CPU threads (default: torch's), as `run --threads`")
    p.add_argument("--quick", action="store_true", help="small sizes: under a second, rougher")
    p.add_argument("--refresh", action="store_true", help="measure again even when cached")
    add_root(p)
    p.set_defaults(func=cmd_peaks)


def cmd_report(args) -> int:
    runs = list(args.runs)
    if args.latest:
        latest = latest_run_dir(Path(args.root))
        err(f"report: the newest run under {args.root} is {latest}")
        runs.append(str(latest))
    if not runs:
        raise BenchError(Problem(where="report", field="RUNS", expected="one or more runs (or --latest)", found="none"))
    loaded = [read_run(r, purpose="to report") for r in runs]
    out = Path(args.out) if args.out else default_report_dir(loaded[0])
    written = make_report(loaded, out=out, peaks=args.peaks or None, probe_peaks=args.probe_peaks,
                          quick_peaks=args.quick_peaks, root=args.root, on_step=lambda s: err(f"measuring peaks: {s}"),
                          site=args.site)
    for note in written.notes:
        err(f"note: {note}")
    ok = written.frame[written.frame["status"] == OK]
    print(f"{len(ok)} of {len(written.frame)} rows ran, from {len(written.runs)} run(s); "
          f"{(ok['verdict'] == 'launch-bound').sum()} launch-bound, {ok['noisy'].astype(bool).sum()} noisy.")
    if len(written.best):
        print(written.best[["machine", "device", "workload", "best_variant", "speedup"]].to_string(index=False))
    if len(written.attribution):  # a line per model reported, and its layers.csv
        for line in models_text(written.attribution):
            print(line)
        print(f"Wrote {out / LAYERS_FILE}")
    print(f"Wrote {out / 'report.html'}\nWrote {out / 'report.md'}")
    return EXIT_OK


def cmd_peaks(args) -> int:
    writable_folder(Path(args.root), option="--root")  # the cache lives there: check it before probing
    found = peaks(args.device, threads=args.threads or 0, quick=args.quick, refresh=args.refresh, root=args.root,
                      on_step=lambda s: err(f"measuring peaks: {s}"))
    rows = [{"device": p.device, "name": p.device_name, "threads": p.threads,
             **{f"{k} TFLOP/s": round(v / 1e12, 3) for k, v in p.flops_per_s.items()},
             "GB/s": round(p.bytes_per_s / 1e9, 1), "ridge fp32 FLOP/B": round(p.ridge("float32"), 1),
             "from": p.provenance} for p in found]
    print(pd.DataFrame(rows).to_string(index=False))
    for p in found:
        if p.busy:
            err(f"warning: {p.device} peaks measured while other processes kept {p.others_busy_cores:.1f} of "
                f"{p.cores} cores busy: the roofs are low (flagged in reports); --refresh on a quiet machine")
    print(f"Matrix products (2 n^3 FLOPs) per dtype and a device-to-device copy (bytes read + written); best "
          f"sample kept. Cached under {Path(args.root) / 'peaks'} (--refresh to measure again).")
    return EXIT_OK
