"""A workload: a layer to build and the input shape to feed it. Frozen data, nothing allocated."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from bench.errors import Problem

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}


@dataclass(frozen=True, kw_only=True)
class Workload:
    """One layer (or stack) and its input.

    name: unique in the suite. module: a zero-argument callable that builds the nn.Module (a class,
    a lambda or a functools.partial), so nothing is allocated until needed. input_shape: the input
    tensor's shape, batch first. dtype: one of DTYPES' keys, for parameters and input alike.
    tags: free labels for filtering. note: shown in listings. threshold: this workload's regression
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
            object.__setattr__(self, "tags", tuple(sorted(self.tags)))
        elif isinstance(self.tags, str):
            object.__setattr__(self, "tags", (self.tags,))

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]

    def problems(self, where: str) -> list[Problem]:
        """What is wrong with the declared fields themselves (not yet with the layer against the input)."""
        name = self.name if isinstance(self.name, str) else repr(self.name)
        out: list[Problem] = []

        def bad(field_name: str, expected: str, found: Any) -> None:
            found = " ".join(str(found).split())  # one line even for a multi-line repr (a tensor's)
            out.append(Problem(where=where, workload=name, field=field_name, expected=expected, found=found))

        if not isinstance(self.name, str) or not self.name.strip():
            bad("name", "a non-empty string", repr(self.name))
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
                if isinstance(size, bool) or not isinstance(size, int):
                    bad(f"input_shape[{i}]", "a positive integer", f"{size!r} ({type(size).__name__})")
                elif size <= 0:
                    bad(f"input_shape[{i}]", "a positive integer", repr(size))
        if self.dtype not in DTYPES:
            bad("dtype", f"one of {', '.join(DTYPES)}", repr(self.dtype))
        if not isinstance(self.tags, tuple) or not all(isinstance(t, str) for t in self.tags):
            bad("tags", "a tuple of strings", repr(self.tags))
        if self.threshold is not None and (
            isinstance(self.threshold, bool) or not isinstance(self.threshold, (int, float)) or not 0 < self.threshold < 10
        ):
            bad("threshold", "a fraction such as 0.1 for 10%, or None", repr(self.threshold))
        return out


@dataclass(frozen=True, kw_only=True)
class Declared:
    """A workload with the config file that declared it (for messages)."""

    workload: Workload
    source: str
