"""The regression gate's subcommands: compare, baseline, calibrate, export. Registered by bench.cli.main.

Each command returns an exit status; BenchError and ValueError reach bench.cli.main.main, which prints one
line and returns 2. compare: 0 when no row is slower, 1 when some row is, 2 for bad input.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench.errors import BenchError, Problem
from bench.measure.sampling import Policy

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


def int_at_least(low: int):
    """An argparse type: an integer >= low (e.g. --threads 1 and up; 0, -3 and 'x' are usage errors)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, found {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, found {text!r}")
        return value
    return parse


def write_output(path: Path, text: str, *, option: str) -> Path:
    """Write text atomically to a user-given path, creating its folder; an OSError (a parent that is a
    file, no permission, a read-only or virtual file system) becomes a one-line BenchError naming it."""
    from bench.store.runs import write_atomic

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, text)
    except OSError as exc:
        found = exc.strerror or str(exc)
        blocker = next((p for p in path.parents if p.exists()), None)
        if blocker is not None and not blocker.is_dir():
            found = f"{blocker} is a file, not a folder ({found})"
        raise BenchError(Problem(where=str(path), field=option, expected="a writable file path",
                                 found=found)) from None
    return path


def cmd_compare(args) -> int:
    from bench.gate.compare import Rule, compare
    from bench.gate.render import console, markdown, ratio_figure, save_figure

    cmp = compare(args.baseline, args.candidate, rule=Rule(threshold=args.threshold),
                  allow_env_mismatch=args.allow_env_mismatch)
    print(console(cmp))
    candidate = Path(args.candidate)
    folder = candidate if candidate.is_dir() else candidate.parent
    report = markdown(cmp)
    written = [write_output(folder / "gate.md", report, option="gate.md (beside the candidate)")]
    if args.markdown:
        written.append(write_output(Path(args.markdown), report, option="--markdown"))
    fig = ratio_figure(cmp)
    if fig is not None:
        try:
            written.append(save_figure(fig, folder / "gate.png"))
        except OSError as exc:
            raise BenchError(Problem(where=str(folder / "gate.png"), field="gate.png (beside the candidate)",
                                     expected="a writable file path", found=exc.strerror or str(exc))) from None
    print("Wrote " + ", ".join(str(p) for p in written))
    return EXIT_SLOWER if cmp.slower else EXIT_OK


def cmd_baseline(args) -> int:
    from bench.gate.baseline import BASELINES_DIR, promote, store_dir

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

    from bench.suite import config
    from bench.measure import env as envmod
    from bench.suite import plan as planning
    from bench.gate.baseline import BASELINES_DIR, calibrate, save_calibration
    from bench.gate.compare import Rule
    from bench.measure.runner import available_devices

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
    unmeasured = len(cal.medians.drop_duplicates(["workload", "device", "dtype"])) - len(cal.noise)
    if unmeasured > 0:
        print(f"{unmeasured} row(s) ran in fewer than 2 repeats: no noise stored for them (their threshold is not widened).")
    print("noise: max/min - 1 of each row's medians over the repeats; `bench compare` widens a row's "
          "threshold to noise_factor (3) x its noise when that exceeds the threshold it would use.")
    print("Wrote " + ", ".join(str(f / "noise.csv") for f in folders))
    return EXIT_OK


def cmd_export(args) -> int:
    from bench.store.export import export_run

    text = json.dumps(export_run(args.run_dir), indent=4) + "\n"
    if args.out:
        path = write_output(Path(args.out), text, option="--out")
        print(f"Wrote {path}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def register(sub) -> None:
    """Add compare, baseline, calibrate and export to bench.cli.main's subparsers."""
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
    p.add_argument("--repeats", type=int_at_least(2), default=5, help="A/A runs, at least 2 (default 5)")
    p.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    p.add_argument("--budget-s", type=float, default=Policy.budget_s)
    p.add_argument("--warmup-s", type=float, default=Policy.warmup_s)
    p.add_argument("--min-samples", type=int_at_least(1), default=Policy.min_samples)
    p.add_argument("--threads", type=int_at_least(1), default=0, help="CPU threads, 1 or more (default: torch's)")
    p.add_argument("--root", default="", help="store root (default results/baselines)")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("export", help="a run folder as another tool's format (pytest-benchmark JSON)")
    p.add_argument("run_dir")
    p.add_argument("--format", choices=["pytest-benchmark"], required=True)
    p.add_argument("--out", metavar="FILE", help="write to FILE instead of standard output")
    p.set_defaults(func=cmd_export)
