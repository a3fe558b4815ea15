"""What every subcommand shares: exit statuses, one-line argument errors, option types, printing to stderr; and
`--model` for `list` and `run`, a model's distinct layers and the whole model as the suite (bench.layers)."""
from __future__ import annotations

import argparse
import ast
import math
import sys

from bench.errors import BenchError, Problem
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
    from bench.store.folder import incomplete_reason, require_rows  # here: main imports this module before torch
    from bench.store.runs import load

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


def add_model_options(p) -> None:
    p.add_argument("--model", default=None, metavar="MODULE:CALLABLE",
                   help="measure a model's distinct layers and the whole model: a callable that builds it, such as "
                   "torchvision.models:resnet18 (captured on the meta device; weights are never downloaded)")
    p.add_argument("--input", action="append", default=[], metavar="SHAPE",
                   help="with --model: an input's shape, batch first, such as 1,3,224,224; repeat for each input")
    p.add_argument("--input-dtype", action="append", default=[], metavar="DTYPE",
                   help="with --model: each --input's dtype, in the same order (default float32; int64 makes indices "
                   "valid for the embeddings that read them)")
    p.add_argument("--model-arg", action="append", default=[], metavar="K=V",
                   help="with --model: a keyword argument for the callable (values read as Python literals: 10, False, "
                   "None; anything else as a string)")
    p.add_argument("--depth", type=int, default=None, metavar="N",
                   help="with --model: stop at modules N levels deep (a block as one layer); default: the innermost "
                   "modules")
    p.add_argument("--name", default=None, help="with --model: the model's name in workload names (default: the "
                   "callable's)")


def _shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in text.split(","))
    except ValueError:
        shape = ()
    if not shape or any(s <= 0 for s in shape):
        raise BenchError(Problem(where="--input", expected="a shape of positive integers such as 1,3,224,224",
                                 found=repr(text)))
    return shape


def _model_arg(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip().isidentifier():
        raise BenchError(Problem(where="--model-arg", expected="K=V with K a keyword name, such as num_classes=10",
                                 found=repr(text)))
    try:
        return key.strip(), ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key.strip(), value


def suite_of(args):
    """The configs given, and the model's workloads with --model, as a bench.suite.config.Suite; BenchError when
    neither is given."""
    from bench.api.models import layers  # here, not at the top: main imports this module before torch loads
    from bench.suite.config import Suite, from_workloads, load_suite

    configs = list(load_suite(args.configs).configs) if args.configs else []
    if args.model is None:
        if any((args.input, args.input_dtype, args.model_arg, args.depth is not None, args.name)):
            raise BenchError(Problem(where="command line", field="--input", expected="--model with its inputs",
                                     found="model options without --model"))
        if not configs:
            raise BenchError(Problem(where="command line", expected="a config name or path, or --model MODULE:CALLABLE",
                                     found="neither"))
        return Suite(configs=tuple(configs))
    if not args.input:
        raise BenchError(Problem(where="--model", workload=args.model, field="--input",
                                 expected="at least one input shape, such as --input 1,3,224,224", found="none"))
    workloads = layers(args.model, [_shape(t) for t in args.input], name=args.name, depth=args.depth,
                       model_kwargs=dict(_model_arg(t) for t in args.model_arg), input_dtypes=tuple(args.input_dtype))
    model = from_workloads(workloads, where=args.model)
    return Suite(configs=(*configs, model))


def json_fields(workload) -> dict:
    """kind, count, paths, module_type and inputs of one workload, as `list --json` adds them."""
    o = workload.origin
    inputs = [s.as_dict() for s in workload.input_specs if hasattr(s, "as_dict")]
    inputs += [dict(s.as_dict(), name=k) for k, s in workload.kwarg_specs if hasattr(s, "as_dict")]
    return dict(kind=o.kind if o else "", count=o.count if o else 1, paths=list(o.paths) if o else [],
                module_type=o.module_type if o else "", inputs=inputs)
