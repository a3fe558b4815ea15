"""Command line for `report` and `peaks` (registered into bench.cli.main's parser). Prints; the core does not."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.errors import BenchError, Problem


def _overrides(spec: str) -> dict | None:
    from bench.measure.peaks import load_overrides

    return load_overrides(spec) if spec else None


def latest_run(root: Path) -> Path:
    """The most recently written run folder under root (a folder with an env.json), for `make bench`."""
    runs = sorted((p.parent for p in root.glob("*/env.json")), key=lambda p: (p / "env.json").stat().st_mtime)
    if not runs:
        raise BenchError(Problem(where=str(root), field="--latest", expected="a run folder (with env.json) in it",
                                 found="none"))
    return runs[-1]


def cmd_report(args) -> int:
    from bench.report.build import build_report
    from bench.report.render import write_report

    run_dirs = list(args.run_dirs) or ([latest_run(Path(args.root))] if args.latest else [])
    if not run_dirs:
        raise BenchError("report: expected one or more run folders (or --latest), found none")
    out = Path(args.out) if args.out else Path(run_dirs[0])
    if out.exists() and not out.is_dir():
        raise BenchError(Problem(where=str(out), field="--out", expected="a folder", found="a file"))
    report = build_report(run_dirs, overrides=_overrides(args.peaks), probe=not args.no_probe,
                          quick=args.quick_peaks)
    html_path, md_path = write_report(report, out)
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    ok = report.frame[report.frame["status"] == "ok"]
    print(f"{len(ok)} of {len(report.frame)} rows ran, from {len(report.run_dirs)} run folder(s); "
          f"{(ok['verdict'] == 'launch-bound').sum()} launch-bound, {ok['noisy'].astype(bool).sum()} noisy.")
    if len(report.best):
        print(report.best[["machine", "device", "workload", "best_variant", "speedup"]].to_string(index=False))
    print(f"Wrote {html_path}\nWrote {md_path}")
    return 0


def cmd_peaks(args) -> int:
    import pandas as pd

    from bench.measure.peaks import peaks_for
    from bench.measure.runner import available_devices

    have = available_devices()
    devices = have if args.device == "all" else [args.device]
    if any(d not in have for d in devices):
        raise BenchError("--device cuda: expected a CUDA device, found none (torch.cuda.is_available() is False)")
    overrides = _overrides(args.peaks)
    rows = []
    for device in devices:
        p = peaks_for(device, threads=args.threads, quick=args.quick, refresh=args.refresh, overrides=overrides)
        rows.append({"device": device, "name": p.device_name, "threads": p.threads, "source": p.source,
                     **{f"{k} TFLOP/s": round(v / 1e12, 3) for k, v in p.flops_per_s.items()},
                     "GB/s": round(p.bytes_per_s / 1e9, 1), "ridge fp32 FLOP/B": round(p.ridge("float32"), 1)})
    print(pd.DataFrame(rows).to_string(index=False))
    print("Matrix products (2 n^3 FLOPs) per dtype and a device-to-device copy (bytes read + written); best "
          "sample kept. Cached under results/peaks/ (--refresh to measure again).")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `report` and `peaks` commands to bench.cli.main's subparsers."""
    p = sub.add_parser("report", help="write report.html and report.md from one or more run folders")
    p.add_argument("run_dirs", nargs="*", help="run folders (results/<run>), from one or many machines")
    p.add_argument("--latest", action="store_true", help="report on the newest run folder under --root")
    p.add_argument("--root", default="results", help="where --latest looks (default results)")
    p.add_argument("--out", default="", help="folder for the report (default: the first run folder)")
    p.add_argument("--peaks", default="", help="a config (name or .py path) whose PEAKS replace the probed peaks")
    p.add_argument("--no-probe", action="store_true", help="use stored or cached peaks only; never probe")
    p.add_argument("--quick-peaks", action="store_true", help="probe with small sizes (under a second; rougher)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("peaks", help="measure (or show cached) peak FLOP/s and bytes/s of this machine's devices")
    p.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (default: torch's)")
    p.add_argument("--quick", action="store_true", help="small sizes: under a second, rougher")
    p.add_argument("--refresh", action="store_true", help="measure again even when cached")
    p.add_argument("--peaks", default="", help="a config whose PEAKS override the probe")
    p.set_defaults(func=cmd_peaks)
