"""The regression gate's subcommands: compare, baseline, calibrate, export. Registered by bench.cli.

Each command returns an exit status; BenchError and ValueError reach bench.cli.main, which prints one
line and returns 2. compare: 0 when no row is slower, 1 when some row is, 2 for bad input.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench.errors import BenchError, Problem
from bench.measure import Policy

EXIT_OK, EXIT_SLOWER, EXIT_USAGE = 0, 1, 2


def percent(text: str) -> float:
    """'10%' or '0.1' -> 0.1 (argparse type)."""
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a percentage such as 10% or a fraction such as 0.1, "
                                         f"found {text!r}") from None
    if not 0 < value < 10:
        raise argparse.ArgumentTypeError(f"expected a threshold between 0% and 1000%, found {text!r}")
    return value


def cmd_compare(args) -> int:
    from bench.compare import Rule, compare
    from bench.gate_report import console, markdown, ratio_figure, save_figure
    from bench.results import write_atomic

    cmp = compare(args.baseline, args.candidate, rule=Rule(threshold=args.threshold),
                  allow_env_mismatch=args.allow_env_mismatch)
    print(console(cmp))
    candidate = Path(args.candidate)
    folder = candidate if candidate.is_dir() else candidate.parent
    report = markdown(cmp)
    written = [folder / "gate.md"]
    write_atomic(folder / "gate.md", report)
    if args.markdown:
        path = Path(args.markdown)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, report)
        written.append(path)
    fig = ratio_figure(cmp)
    if fig is not None:
        written.append(save_figure(fig, folder / "gate.png"))
    print("Wrote " + ", ".join(str(p) for p in written))
    return EXIT_SLOWER if cmp.slower else EXIT_OK


def cmd_baseline(args) -> int:
    from bench.baseline import BASELINES_DIR, promote, store_dir

    root = Path(args.root) if args.root else BASELINES_DIR
    if args.where:
        print(store_dir(args.device, root=root))
        return EXIT_OK
    if not args.run_dir:
        raise BenchError(Problem(where="bench baseline", field="RUN_DIR", expected="a run folder to promote "
                                 "(or --where to print this machine's store folder)", found="nothing"))
    for folder in promote(args.run_dir, root=root):
        print(f"baseline: {folder}")
    return EXIT_OK


def cmd_calibrate(args) -> int:
    import torch

    from bench import config, env as envmod, plan as planning
    from bench.baseline import BASELINES_DIR, calibrate, save_calibration
    from bench.compare import Rule
    from bench.run import available_devices

    if args.threads:
        torch.set_num_threads(args.threads)
    plans = planning.check(config.load_all(args.configs))
    devices = available_devices() if args.device == "all" else [args.device]
    if args.device == "cuda" and "cuda" not in available_devices():
        raise BenchError("--device cuda: expected a CUDA device, found none (torch.cuda.is_available() is False)")
    policy = Policy(budget_s=args.budget_s, warmup_s=args.warmup_s, min_samples=args.min_samples)
    print(f"calibrating: {len(plans)} workloads x {len(devices)} device(s), {args.repeats} repeats", file=sys.stderr)
    cal = calibrate(plans, devices, repeats=args.repeats, policy=policy,
                    cuda_policy=Policy(budget_s=args.budget_s, warmup_s=max(args.warmup_s, 0.5),
                                       min_samples=args.min_samples))
    env = envmod.capture(devices=devices, argv=["bench", *(args.argv or [])], threads=torch.get_num_threads())
    folders = save_calibration(cal, env, root=Path(args.root) if args.root else BASELINES_DIR)
    table = cal.noise.assign(noise=cal.noise["noise"].map(lambda x: f"{x:.1%}"),
                             threshold=cal.noise["noise"].map(lambda x: f"{Rule().noise_factor * x:.1%}"))
    print(table.to_string(index=False))
    print("noise: max/min - 1 of each row's medians over the repeats; `bench compare` widens a row's "
          "threshold to noise_factor (3) x its noise when that exceeds the threshold it would use.")
    print("Wrote " + ", ".join(str(f / "noise.csv") for f in folders))
    return EXIT_OK


def cmd_export(args) -> int:
    from bench.export import export_run
    from bench.results import write_atomic

    text = json.dumps(export_run(args.run_dir), indent=4) + "\n"
    if args.out:
        path = Path(args.out)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, text)
        print(f"Wrote {path}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def register(sub) -> None:
    """Add compare, baseline, calibrate and export to bench.cli's subparsers."""
    p = sub.add_parser("compare", help="compare two runs: exit 0 nothing slower, 1 something slower, 2 bad input")
    p.add_argument("baseline", help="a run folder (or its results.csv), e.g. results/baselines/<machine>")
    p.add_argument("candidate", help="a run folder (or its results.csv); gate.md and gate.png are written there")
    p.add_argument("--threshold", type=percent, default=0.10,
                   help="slowdown to catch, for rows whose workload sets none (default 10%%)")
    p.add_argument("--allow-env-mismatch", action="store_true",
                   help="compare even when device, torch version or precision settings differ (the report says so)")
    p.add_argument("--markdown", metavar="FILE", help="also write the Markdown report to FILE")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("baseline", help="promote a run folder to results/baselines/<machine_key>/")
    p.add_argument("run_dir", nargs="?")
    p.add_argument("--where", action="store_true", help="print this machine's store folder for --device and exit")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--root", default="", help="store root (default results/baselines)")
    p.set_defaults(func=cmd_baseline)

    p = sub.add_parser("calibrate", help="A/A: run the suite several times, store each row's noise with the baseline")
    p.add_argument("configs", nargs="+")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    p.add_argument("--budget-s", type=float, default=Policy.budget_s)
    p.add_argument("--warmup-s", type=float, default=Policy.warmup_s)
    p.add_argument("--min-samples", type=int, default=Policy.min_samples)
    p.add_argument("--threads", type=int, default=0, help="CPU threads (default: torch's)")
    p.add_argument("--root", default="", help="store root (default results/baselines)")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("export", help="a run folder as another tool's format (pytest-benchmark JSON)")
    p.add_argument("run_dir")
    p.add_argument("--format", choices=["pytest-benchmark"], required=True)
    p.add_argument("--out", metavar="FILE", help="write to FILE instead of standard output")
    p.set_defaults(func=cmd_export)
