"""What every subcommand shares: exit statuses, one-line argument errors, option types, printing to stderr."""
from __future__ import annotations

import argparse
import math
import sys

from bench.schema import RESULTS_DIR

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL, EXIT_CANNOT_WRITE = 0, 1, 2, 3, 4
EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 130, 141
RESULTS = str(RESULTS_DIR)


def err(text: str) -> None:
    print(text, file=sys.stderr)


class OneLineParser(argparse.ArgumentParser):
    """argparse prints its usage block before an error; a user error here is one line (subparsers inherit this)."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


class Help(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's help shows its default, once: not when the help already says it ("(default: ...)"), nor when
    the default is None or empty (the help says what that means: "empty: ...", "torch's")."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default is None or action.default == "":
            return text
        return super()._get_help_string(action)


def command(sub, name: str, *, help: str, description: str = "") -> OneLineParser:
    return sub.add_parser(name, help=help, description=description or help, formatter_class=Help)


def read_run(path, *, purpose: str):
    """The run a path names (bench.api.load), refused in one line when it has no rows (a header only); an
    incomplete (interrupted) run is read with one warning line on stderr, since its missing rows are easy to miss."""
    from bench.api.comparing import load  # here, not at the top: main imports this module before torch loads
    from bench.store.folder import incomplete_reason, require_rows

    run = require_rows(load(path), purpose=purpose)
    reason = incomplete_reason(run)
    if reason:
        err(f"warning: {run.source or path} is an incomplete run ({reason}): only the rows that finished are in it")
    return run


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


def percent(text: str) -> float:
    """'10%' or '0.1' -> 0.1 (argparse type): a threshold strictly between 0% and 1000%."""
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a percentage such as 10% or a fraction such as 0.1, "
                                         f"found {text!r}") from None
    if not 0 < value < 10:  # NaN fails this too
        raise argparse.ArgumentTypeError(f"expected a threshold between 0% and 1000%, found {text!r}")
    return value


def add_root(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", default=RESULTS, help="the results folder: holds runs, baselines/ and peaks/")


def add_retries(p) -> None:
    """--retries, as `run` and `ab` take it."""
    p.add_argument("--retries", type=number(minimum=0, integer=True), default=0,
                   help="how often a row whose worker process crashed or hung is measured again in a later process "
                   "(0: its status stands and the later processes skip it)")
