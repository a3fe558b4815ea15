"""Models as suites: a model factory (or "module.path:callable"), its example inputs and a depth become the
workloads of its distinct layers and of the whole model (bench.suite.capture). `Model` is the record a config's
MODELS list holds; `expand` turns it into workloads, as `bench.layers` does."""
from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.errors import BenchError, Problem, one_line
from bench.suite.capture import model_name, model_workloads
from bench.suite.inputs import INPUT_DTYPES, TensorSpec
from bench.suite.vision import Factory, import_module
from bench.suite.workload import DTYPES, Workload, valid_name


@dataclass(frozen=True, kw_only=True)
class Model:
    """A model to measure layer by layer, in a config's MODELS. factory: a zero-argument callable (or
    "module.path:callable"); inputs: a shape, a list of shapes or TensorSpecs (batch first); depth: None for the
    innermost modules, N to stop at containers N levels deep; kwargs: keyword arguments for the factory."""

    name: str | None = None
    factory: Any
    inputs: Any
    depth: int | None = None
    dtype: str = "float32"
    kwargs: tuple[tuple[str, Any], ...] = field(default=())

    def __post_init__(self) -> None:
        if isinstance(self.kwargs, dict):
            object.__setattr__(self, "kwargs", tuple(sorted(self.kwargs.items())))


def resolve_factory(spec: Any, *, where: str = "model") -> Callable:
    """A callable, or "module.path:callable" imported; BenchError (one line) when it does not import or call."""
    if not isinstance(spec, str):
        if not callable(spec):
            raise BenchError(Problem(where=where, field="model", expected="a zero-argument callable that builds an "
                                     "nn.Module, or 'module.path:callable'",
                                     found=f"{type(spec).__name__} {spec!r}"[:120]))
        return spec
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise BenchError(Problem(where=where, field="model", expected="MODULE:CALLABLE such as "
                                 "torchvision.models:resnet18", found=repr(spec)))
    try:
        module = import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any import failure of the user's module is one line
        raise BenchError(Problem(where=where, workload=spec, field="model", expected=f"an importable module "
                                 f"'{module_name}'", found=one_line(exc))) from None
    target: Any = module
    for part in attr.split("."):
        target = getattr(target, part, None)
    if not callable(target):
        raise BenchError(Problem(where=where, workload=spec, field="model", expected=f"a callable '{attr}' in "
                                 f"'{module_name}'", found="none" if target is None else type(target).__name__))
    return target


def input_specs(inputs: Any, dtypes: Sequence[str] = (), *, where: str = "model",
                name: str = "") -> tuple[TensorSpec, ...]:
    """A shape, a list of shapes or TensorSpecs as TensorSpecs; dtypes: each shape's dtype in order (default
    float32). BenchError (one line) for anything else."""
    def shape_like(v: Any) -> bool:
        return isinstance(v, (tuple, list)) and all(isinstance(s, int) and not isinstance(s, bool) for s in v)

    items = [inputs] if isinstance(inputs, TensorSpec) or (shape_like(inputs) and inputs) else list(inputs or [])
    if not items:
        raise BenchError(Problem(where=where, workload=name, field="inputs", expected="a shape, a list of shapes or "
                                 "bench.TensorSpec", found=repr(inputs)))
    if len(dtypes) > len(items):
        raise BenchError(Problem(where=where, workload=name, field="--input-dtype", expected=f"at most one dtype per "
                                 f"input ({len(items)})", found=f"{len(dtypes)} dtypes"))
    specs = []
    for i, item in enumerate(items):
        dtype = dtypes[i] if i < len(dtypes) else "float32"
        if dtype not in INPUT_DTYPES:
            raise BenchError(Problem(where=where, workload=name, field=f"inputs[{i}].dtype",
                                     expected=f"one of {', '.join(INPUT_DTYPES)}", found=repr(dtype)))
        spec = item if isinstance(item, TensorSpec) else TensorSpec(tuple(item), dtype) if shape_like(item) else None
        if spec is None:
            raise BenchError(Problem(where=where, workload=name, field=f"inputs[{i}]", expected="a shape (a tuple of "
                                     "positive integers) or a bench.TensorSpec", found=repr(item)[:120]))
        for field_name, expected, found in spec.problems():
            raise BenchError(Problem(where=where, workload=name, field=f"inputs[{i}].{field_name}", expected=expected,
                                     found=found))
        specs.append(spec)
    return tuple(specs)


def expand(model: Any, inputs: Any, *, name: str | None = None, depth: int | None = None, dtype: str = "float32",
           model_kwargs: dict | None = None, input_dtypes: Sequence[str] = (), where: str = "model") -> list[Workload]:
    """The workloads of a model's distinct layers, then the whole model's (bench.suite.capture.model_workloads)."""
    factory = resolve_factory(model, where=where)
    if model_kwargs:
        factory = functools.partial(factory, **dict(model_kwargs))
    label = name if name is not None else model_name(factory)
    factory = Factory(factory)  # pickles by value; unpickles where torchvision needs its schemas first
    if not valid_name(label):
        raise BenchError(Problem(where=where, field="name", expected="a model name of 1-100 characters: letters, "
                                 "digits, '.', '_', '+', '-'", found=repr(label)[:120]))
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 1):
        raise BenchError(Problem(where=where, workload=label, field="depth", expected="None or an integer >= 1",
                                 found=repr(depth)))
    if dtype not in DTYPES:
        raise BenchError(Problem(where=where, workload=label, field="dtype", expected=f"one of {', '.join(DTYPES)}",
                                 found=repr(dtype)))
    specs = input_specs(inputs, input_dtypes, where=where, name=label)
    return model_workloads(factory, specs, name=label, depth=depth, dtype=dtype)


def expand_model(m: Model, where: str) -> list[Workload]:
    """A config's Model record as workloads."""
    return expand(m.factory, m.inputs, name=m.name, depth=m.depth, dtype=m.dtype, model_kwargs=dict(m.kwargs),
                  where=where)
