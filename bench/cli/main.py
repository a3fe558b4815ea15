"""Command line: the only module that prints. `main(argv) -> exit status`, testable in-process.

Exit statuses: 0 success; 1 some rows failed (run) or something got slower (compare);
2 a user error (bad config, file or argument), one line each, no traceback; 130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import math
import sys

import pandas as pd

from bench.suite import config
from bench.suite import plan as planning
from bench.errors import BenchError
from bench.units import fmt_si

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _err(text: str) -> None:
    print(text, file=sys.stderr)


class OneLineParser(argparse.ArgumentParser):
    """argparse prints its usage block before an error; a user error here is one line (subparsers inherit this)."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def number(*, minimum: float = 0.0, strict: bool = False, integer: bool = False):
    """An argparse type: a finite number (or integer) >= minimum (> minimum when strict), else one clear line."""
    kind = "an integer" if integer else "a finite number"
    rule = f"{kind} {'>' if strict else '>='} {minimum:g}"

    def parse(text: str):
        try:
            value = int(text) if integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {rule}, found {text!r}") from None
        if not math.isfinite(value) or value < minimum or (strict and value == minimum):
            raise argparse.ArgumentTypeError(f"expected {rule}, found {text!r}")
        return value

    return parse


# ---------------------------------------------------------------- list
def cmd_list(args) -> int:
    declared = config.load_all(args.configs)
    plans, problems = planning.plan_suite(declared)
    if args.json:
        print(json.dumps([{
            "name": p.name, "source": p.source, "input_shape": list(p.workload.input_shape),
            "output_shape": list(p.output_shape), "dtype": p.workload.dtype, "flops": p.flops, "params": p.params,
            "bytes": p.bytes_moved, "is_view": p.is_view, "shape_notes": list(p.shape_notes), "tags": list(p.workload.tags),
        } for p in plans], indent=2))
    else:
        table = pd.DataFrame([{
            "workload": p.name, "input": str(list(p.workload.input_shape)), "output": str(list(p.output_shape)),
            "dtype": p.workload.dtype, "params": fmt_si(p.params), "FLOPs": fmt_si(p.flops),
            "bytes": fmt_si(p.bytes_moved, "B"), "note": p.workload.note,
        } for p in plans])
        if len(table):
            print(table.to_string(index=False))
        notes = [f"  {p.name}: {n}" for p in plans for n in p.shape_notes]
        if notes:
            print("\nConv output sizes, floor((in + 2*padding - dilation*(kernel - 1) - 1) / stride) + 1:")
            print("\n".join(notes))
        print(f"\n{len(plans)} workloads checked. FLOPs: a multiply-add counts 2 (FlopCounterMode); "
              "bytes: input, weights and output once each.")
    for p in problems:
        _err(str(p))
    if problems:
        _err(f"{len(problems)} problem(s): fix them before `bench run`.")
        return EXIT_USAGE
    return EXIT_OK


# ---------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m bench",
                                     description="Check, time and compare PyTorch layers on CPU and CUDA. See README.md.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="check workloads on the meta device: shapes, FLOPs, bytes, problems")
    p.add_argument("configs", nargs="+", help="config names in configs/ (seed) or paths to .py files")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    p.set_defaults(func=cmd_list)

    from bench.cli import gate as gate_cli
    from bench.cli import report as report_cli
    from bench.cli import run as run_cli

    run_cli.register(sub)
    gate_cli.register(sub)
    report_cli.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # OneLineParser already printed its one-line error
        return EXIT_USAGE if exc.code else EXIT_OK
    args.argv = argv
    try:
        return args.func(args)
    except BenchError as exc:
        for problem in exc.problems:
            _err(str(problem))
        return EXIT_USAGE
    except ValueError as exc:  # bad option values, e.g. an impossible Policy
        _err(f"error: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _err("interrupted")
        return EXIT_INTERRUPTED
