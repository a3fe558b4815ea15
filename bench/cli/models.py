"""`--model` for `list` and `run`: a model's distinct layers and the whole model as the suite (bench.layers)."""
from __future__ import annotations

import ast

from bench.api.models import layers
from bench.errors import BenchError, Problem
from bench.suite.config import Config, Suite, from_workloads, load_suite


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


def suite_of(args) -> Suite:
    """The configs given, and the model's workloads with --model; BenchError when neither is given."""
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
    model: Config = from_workloads(workloads, where=args.model)
    return Suite(configs=(*configs, model))


def json_fields(workload) -> dict:
    """kind, count, paths, module_type and inputs of one workload, as `list --json` adds them."""
    o = workload.origin
    inputs = [s.as_dict() for s in workload.input_specs if hasattr(s, "as_dict")]
    inputs += [dict(s.as_dict(), name=k) for k, s in workload.kwarg_specs if hasattr(s, "as_dict")]
    return dict(kind=o.kind if o else "", count=o.count if o else 1, paths=list(o.paths) if o else [],
                module_type=o.module_type if o else "", inputs=inputs)
