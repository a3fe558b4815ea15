"""A workload: a layer to build and the inputs to feed it (shapes, dtypes, keywords), and its `Plan` (what it will do,
known before it runs: bench.suite.plan makes it). Frozen data, nothing allocated."""
from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from bench.errors import Problem, is_int, is_number
from bench.suite.inputs import DTYPES, TensorSpec, describe, plain

# What a workload name or a tag may hold. Names end up in results.csv, file names, Markdown posted as a
# pull-request comment, HTML and plots: a small set of plain characters is safe in all of them (no
# spreadsheet formula, Markdown or HTML syntax, mathtext, path separator or line break).
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")
NAME_RULE = "1-100 characters: ASCII letters, digits, '.', '_', '+', '-', starting with a letter or digit"


def valid_name(value: object) -> bool:
    """Whether value is a string NAME_PATTERN allows in full (a workload name or a tag)."""
    return isinstance(value, str) and NAME_PATTERN.fullmatch(value) is not None


def _shown(value: str, limit: int = 60) -> str:
    """repr(value): one line, cut after limit characters with the full length said."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(value)} characters)"


def _label(value: str, limit: int = 60) -> str:
    """A name that breaks the rule, as the workload its problems are told under: repr's text without the
    quotes (one line: a line break shows as \\n), cut after limit characters."""
    text = repr(value)[1:-1]
    return text if len(text) <= limit else text[:limit] + "..."


@dataclass(frozen=True, kw_only=True)
class LayerOrigin:
    """Where a workload made by bench.layers comes from. model: the model's name; kind: "layer" (one distinct
    innermost module) or "model" (the whole model); count: the calls of the model's forward it stands for;
    paths: the module paths of those calls in the model ("" for the model itself); module_type: the class name."""

    model: str
    kind: str
    count: int
    paths: tuple[str, ...]
    module_type: str


@dataclass(frozen=True, kw_only=True)
class Workload:
    """One layer (or stack) and its input.

    name: unique in the suite; 1-100 characters from ASCII letters, digits, '.', '_', '+' and '-', starting with
    a letter or digit (NAME_PATTERN: names reach CSV, Markdown, HTML and plots, so they hold no syntax of
    any of them). module: a zero-argument callable that builds the nn.Module (a class, a lambda or a
    functools.partial), so nothing is allocated until needed. input_shape: the input tensor's shape, batch
    first: the short form of one floating input. inputs: the positional inputs instead, each a TensorSpec (shape,
    dtype, integer range) or a plain value passed as it is; kwargs: keyword inputs, name -> TensorSpec or plain value
    (a dict is stored as sorted pairs, so workloads stay hashable). Floating inputs take the workload's dtype.
    dtype: one of DTYPES' keys, for parameters and floating inputs alike. origin: where bench.layers took the
    workload from (a model's layer, or the model), None for a workload written by hand. tags: free labels for
    filtering, each following the name rule. note: shown in listings. threshold: this workload's regression
    threshold for `bench compare` as a fraction (0.1 = 10%), or None for the command's default.

    Construction never raises, so that a config with several mistakes reports them all at once:
    `problems()` lists what is wrong with the fields, and the planner refuses such a workload.
    """

    name: str
    module: Callable[[], Any]
    input_shape: tuple[int, ...] = ()
    inputs: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()
    dtype: str = "float32"
    tags: tuple[str, ...] = ()
    note: str = ""
    threshold: float | None = None
    origin: LayerOrigin | None = None

    def __post_init__(self) -> None:
        # Normalise lists to tuples so workloads hash and compare by value.
        if isinstance(self.input_shape, list):
            object.__setattr__(self, "input_shape", tuple(self.input_shape))
        if isinstance(self.inputs, (list, TensorSpec)):
            object.__setattr__(self, "inputs", tuple(self.inputs) if isinstance(self.inputs, list) else (self.inputs,))
        if isinstance(self.kwargs, dict):
            try:
                object.__setattr__(self, "kwargs", tuple(sorted(self.kwargs.items())))
            except TypeError:  # keys of mixed types: problems() reports them
                object.__setattr__(self, "kwargs", tuple(self.kwargs.items()))
        first = _first_tensor(self.inputs, self.kwargs)
        if first is not None and self.input_shape == ():  # the input_shape column: the first tensor input's
            object.__setattr__(self, "input_shape", first.shape)
        if isinstance(self.tags, (list, set, frozenset)):
            try:
                object.__setattr__(self, "tags", tuple(sorted(self.tags)))
            except TypeError:  # tags of mixed types: problems() reports them, construction never raises
                object.__setattr__(self, "tags", tuple(self.tags))
        elif isinstance(self.tags, str):
            object.__setattr__(self, "tags", (self.tags,))

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]

    @property
    def input_specs(self) -> tuple[Any, ...]:
        """The positional inputs as built: `inputs`, or one floating input of `input_shape`; floating specs in the
        workload's dtype."""
        given = self.inputs if self.inputs or self.kwargs else (TensorSpec(self.input_shape),)
        return tuple(_in_dtype(s, self.dtype) for s in given)

    @property
    def kwarg_specs(self) -> tuple[tuple[str, Any], ...]:
        return tuple((k, _in_dtype(v, self.dtype)) for k, v in self.kwargs)

    @property
    def tensor_specs(self) -> tuple[TensorSpec, ...]:
        """Every tensor input, positional then keyword."""
        return tuple(s for s in (*self.input_specs, *(v for _, v in self.kwarg_specs)) if isinstance(s, TensorSpec))

    @property
    def floating_ndim(self) -> int:
        """Dimensions of the first floating tensor input (what channels_last converts), 0 when there is none."""
        return next((len(s.shape) for s in self.tensor_specs if s.floating), 0)

    @property
    def inputs_text(self) -> str:
        """Every input on one line: "float32[256,3,227,227]" or "int64[2,128]; attention_mask=bool[2,128]"."""
        return describe(self.input_specs, self.kwarg_specs)

    def problems(self, where: str) -> list[Problem]:
        """What is wrong with the declared fields themselves (not yet with the layer against the input)."""
        # the name the problems are told under: a name that breaks the rule is shown as a one-line repr
        if valid_name(self.name):
            name = self.name
        else:
            name = _label(self.name) if isinstance(self.name, str) else repr(self.name)
        out: list[Problem] = []

        def bad(field_name: str, expected: str, found: Any) -> None:
            found = str(found)
            if "\n" in found or "\r" in found:
                found = " ".join(found.split())  # one line even for a multi-line repr (a tensor's)
            out.append(Problem(where=where, workload=name, field=field_name, expected=expected, found=found))

        if not isinstance(self.name, str):
            bad("name", "a non-empty string", repr(self.name))
        elif not valid_name(self.name):
            bad("name", NAME_RULE, _shown(self.name))
        if isinstance(self.module, torch.nn.Module):
            bad("module", "a class or lambda that builds the module when needed (nn.Linear, lambda: nn.Linear(4, 4))",
                f"an already built {type(self.module).__name__} instance")
        elif not callable(self.module):
            bad("module", "a zero-argument callable that builds an nn.Module (a class, lambda or partial)",
                f"{type(self.module).__name__} {self.module!r}"[:120])
        shape = self.input_shape
        if self.inputs != () or self.kwargs != ():
            _input_problems(self, bad)
        elif not isinstance(shape, tuple) or len(shape) == 0:
            bad("input_shape", "a non-empty tuple of positive integers", repr(shape))
        else:
            for i, size in enumerate(shape):
                if not is_int(size):
                    bad(f"input_shape[{i}]", "a positive integer", f"{size!r} ({type(size).__name__})")
                elif size <= 0:
                    bad(f"input_shape[{i}]", "a positive integer", repr(size))
        if not isinstance(self.dtype, str) or self.dtype not in DTYPES:  # a list is unhashable: never raise
            bad("dtype", f"one of {', '.join(DTYPES)}", repr(self.dtype))
        if not isinstance(self.tags, tuple) or not all(isinstance(t, str) for t in self.tags):
            bad("tags", "a tuple of strings", repr(self.tags))
        if isinstance(self.tags, tuple):
            for i, tag in enumerate(self.tags):
                if isinstance(tag, str) and not valid_name(tag):
                    bad(f"tags[{i}]", NAME_RULE, _shown(tag))
        if self.threshold is not None and not (is_number(self.threshold) and 0 < self.threshold < 10):
            bad("threshold", "a fraction such as 0.1 for 10%, or None", repr(self.threshold))
        return out


def _first_tensor(inputs: Any, kwargs: Any) -> TensorSpec | None:
    """The first tensor spec among the positional inputs, else among the keyword ones (None for malformed fields)."""
    values = list(inputs) if isinstance(inputs, tuple) else []
    if isinstance(kwargs, tuple):
        values += [p[1] for p in kwargs if isinstance(p, tuple) and len(p) == 2]
    return next((v for v in values if isinstance(v, TensorSpec)), None)


def _in_dtype(spec: Any, dtype: str) -> Any:
    if isinstance(spec, TensorSpec) and spec.floating and spec.dtype != dtype and dtype in DTYPES:
        return TensorSpec(spec.shape, dtype)
    return spec


def _input_problems(w: Workload, bad: Callable[[str, str, Any], None]) -> None:
    """inputs and kwargs: tensor specs or plain values; input_shape, when also given, the first tensor's shape."""
    if not isinstance(w.inputs, tuple):
        bad("inputs", "a tuple of bench.TensorSpec or plain values", repr(w.inputs)[:120])
        return
    items = [(f"inputs[{i}]", v) for i, v in enumerate(w.inputs)]
    if not isinstance(w.kwargs, tuple) or not all(isinstance(p, tuple) and len(p) == 2 for p in w.kwargs):
        bad("kwargs", "a dict of name -> bench.TensorSpec or plain value", repr(w.kwargs)[:120])
    else:
        for key, value in w.kwargs:
            if not isinstance(key, str) or not key.isidentifier():
                bad("kwargs", "keyword names that are Python identifiers", repr(key))
            items.append((f"kwargs[{key!r}]", value))
    for where, value in items:
        if isinstance(value, TensorSpec):
            for field_name, expected, found in value.problems():
                bad(f"{where}.{field_name}", expected, found)
        elif not plain(value):
            bad(where, "a bench.TensorSpec or a plain value (None, bool, number, string, tuple of them)",
                f"{type(value).__name__} {value!r}"[:120])
    first = _first_tensor(w.inputs, w.kwargs)
    if first is None:
        bad("inputs", "at least one bench.TensorSpec among the inputs or kwargs", repr(w.inputs)[:120])
    elif w.input_shape != first.shape:
        bad("input_shape", f"the first tensor input's shape {list(first.shape)} or nothing", repr(w.input_shape))


@dataclass(frozen=True, kw_only=True)
class Declared:
    """A workload with the config file that declared it (for messages)."""

    workload: Workload
    source: str


@dataclass(frozen=True, kw_only=True)
class Plan:
    """What a workload will do, known before it runs. Sizes in elements, costs in FLOPs and bytes."""

    workload: Workload
    source: str
    output_shape: tuple[int, ...]
    params: int
    flops: int
    input_bytes: int
    param_bytes: int
    output_bytes: int
    is_view: bool
    intermediate_bytes: int = 0
    shape_notes: tuple[str, ...] = ()
    definition: str = ""  # what defines the workload as text (bench.suite.plan): the module, its tensors, its inputs

    def fingerprint(self, variant: str, dtype: str) -> str:
        """A row's definition as 16 hex digits (results.csv `definition`): the workload's definition with the
        variant and dtype the row ran under. Two rows of one name with other digests are different layers."""
        return hashlib.sha256(f"{self.definition}\n{variant}\n{dtype}".encode()).hexdigest()[:16]

    @property
    def bytes_moved(self) -> int:
        """Minimum bytes moved: input, weights and output once each. A workload whose output is a view of its
        input (Flatten alone) runs no kernel and moves nothing: 0."""
        return self.param_bytes if self.is_view else self.input_bytes + self.param_bytes + self.output_bytes

    @property
    def peak_bytes(self) -> int:
        """Memory one forward needs at its peak, an upper estimate: the input, the parameters and buffers, and
        every tensor the workload or any of its submodules returns, all counted as alive at once
        (`intermediate_bytes`, the final output included).

        Each returned tensor counts numel * element_size of the tensor that owns its memory, once: an output that
        is a view of the input (Flatten) or of a tensor already counted, or the input itself (ReLU(inplace=True)),
        adds nothing. Under no_grad most intermediates are freed as the next layer runs, so the real peak of a
        deep stack is lower; temporaries inside one module's forward that no module returns are not seen.
        Unlike `bytes_moved` (traffic), a view still needs its input: Flatten alone peaks at input + 0.
        """
        return self.input_bytes + self.param_bytes + self.intermediate_bytes

    @property
    def name(self) -> str:
        return self.workload.name
