"""A workload: a layer to build and the input shape to feed it. Frozen data, nothing allocated."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

import torch

from bench.checks import is_int, is_number
from bench.errors import Problem

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}

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
class Workload:
    """One layer (or stack) and its input.

    name: unique in the suite; 1-100 characters from ASCII letters, digits, '.', '_', '+' and '-', starting with
    a letter or digit (NAME_PATTERN: names reach CSV, Markdown, HTML and plots, so they hold no syntax of
    any of them). module: a zero-argument callable that builds the nn.Module (a class, a lambda or a
    functools.partial), so nothing is allocated until needed. input_shape: the input tensor's shape, batch
    first. dtype: one of DTYPES' keys, for parameters and input alike. tags: free labels for filtering, each
    following the name rule. note: shown in listings. threshold: this workload's regression
    threshold for `bench compare` as a fraction (0.1 = 10%), or None for the command's default.

    Construction never raises, so that a config with several mistakes reports them all at once:
    `problems()` lists what is wrong with the fields, and the planner refuses such a workload.
    """

    name: str
    module: Callable[[], Any]
    input_shape: tuple[int, ...]
    dtype: str = "float32"
    tags: tuple[str, ...] = ()
    note: str = ""
    threshold: float | None = None

    def __post_init__(self) -> None:
        # Normalise lists to tuples so workloads hash and compare by value.
        if isinstance(self.input_shape, list):
            object.__setattr__(self, "input_shape", tuple(self.input_shape))
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
        if not isinstance(shape, tuple) or len(shape) == 0:
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


@dataclass(frozen=True, kw_only=True)
class Declared:
    """A workload with the config file that declared it (for messages)."""

    workload: Workload
    source: str
