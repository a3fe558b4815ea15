"""A workload's real inputs, built: positional and keyword values with tensors among them, and what a variant,
a cold cache, the accuracy check and the backward pass do to them (floating tensors only, where it matters)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from bench.suite.inputs import TensorSpec
from bench.suite.workload import Workload


class Args:
    """The inputs of one call: `args` (positional) and `kwargs`; plain values pass through every transformation."""

    def __init__(self, args: tuple, kwargs: dict | None = None) -> None:
        self.args, self.kwargs = tuple(args), dict(kwargs or {})

    @classmethod
    def build(cls, workload: Workload, device: str | torch.device) -> Args:
        """Seeded random inputs on device: floating ones in the workload's dtype, integers in their range."""
        def one(spec: Any) -> Any:
            return spec.make(device, workload.torch_dtype) if isinstance(spec, TensorSpec) else spec

        return cls(tuple(one(s) for s in workload.input_specs), {k: one(v) for k, v in workload.kwarg_specs})

    @property
    def tensors(self) -> list[torch.Tensor]:
        return [t for t in (*self.args, *self.kwargs.values()) if isinstance(t, torch.Tensor)]

    @property
    def first(self) -> torch.Tensor:
        return self.tensors[0]

    @property
    def device(self) -> torch.device:
        return self.first.device

    @property
    def single(self) -> bool:
        """One positional tensor and nothing else: the short form (module(x))."""
        return len(self.args) == 1 and isinstance(self.args[0], torch.Tensor) and not self.kwargs

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tensors)

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor], *, floating: bool = True) -> Args:
        """fn applied to every tensor (floating: only to floating-point ones)."""
        def one(v: Any) -> Any:
            return fn(v) if isinstance(v, torch.Tensor) and (v.is_floating_point() or not floating) else v

        return Args(tuple(one(v) for v in self.args), {k: one(v) for k, v in self.kwargs.items()})

    def clone(self) -> Args:
        return self.map(torch.Tensor.clone, floating=False)

    def call(self, module: Callable[..., Any]) -> Any:
        return module(*self.args, **self.kwargs)

    def rows(self, n: int) -> Args:
        """The first n rows (dim 0) of the short form's input; several inputs are kept whole (their batch
        dimensions need not be dim 0, nor agree)."""
        return Args((self.args[0][:n],)) if self.single else self

    def reference(self) -> Args:
        """On the CPU, floating tensors in float64 (the accuracy check's reference inputs)."""
        return self.map(lambda t: t.to("cpu"), floating=False).map(lambda t: t.to(torch.float64))


def as_args(x: Any) -> Args:
    """A tensor (the short form) or Args, as Args."""
    return x if isinstance(x, Args) else Args((x,))


def first_tensor(out: Any) -> torch.Tensor:
    from torch.utils._pytree import tree_leaves

    return out if isinstance(out, torch.Tensor) else next(t for t in tree_leaves(out) if isinstance(t, torch.Tensor))
