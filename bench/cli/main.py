"""Command line: the only package that prints. `main(argv) -> exit status`, testable in-process.

Exit statuses: 0 success; 1 some rows failed (run) or something got slower (compare); 2 a user error
(bad config, file or argument), one line each, no traceback; 3 an internal error (a bug in bench: the
traceback is printed); 4 a file could not be written (disk full, read-only), one line; 130 interrupted;
141 standard output closed by its reader (as shell tools after SIGPIPE).
"""
from __future__ import annotations

import os
import sys
import traceback

from bench.cli import attribution, gate, history, report, run
from bench.cli.common import (EXIT_BROKEN_PIPE, EXIT_CANNOT_WRITE, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK,
                              EXIT_USAGE, OneLineParser, err)
from bench.errors import BenchError, WriteError


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog="bench", description="Check, time and compare PyTorch layers on CPU and CUDA. "
                           "Every command that reads a run takes a run folder, the folder given to `run --out`, or a "
                           "run's results.csv. See README.md.")
    sub = parser.add_subparsers(dest="command", required=True)
    run.register(sub)
    gate.register(sub)
    report.register(sub)
    attribution.register(sub)
    history.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # OneLineParser already printed its one-line error (or --help its text)
        return EXIT_USAGE if exc.code else EXIT_OK
    args.argv = argv
    try:
        return args.func(args)
    except WriteError as exc:
        err(f"cannot write: {exc}")
        return EXIT_CANNOT_WRITE
    except BenchError as exc:
        for problem in exc.problems:
            err(str(problem))
        return EXIT_USAGE
    except KeyboardInterrupt:
        err("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (`bench export RUN | head`): nothing more to say, as a shell tool
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception:  # noqa: BLE001 - not the user's mistake: say so, with the traceback to report
        traceback.print_exc()
        err("internal error: this is a bug in bench, not a problem with your input (exit 3)")
        return EXIT_INTERNAL
