"""A workload's inputs as data: tensor specs (shape, dtype, value range) and plain values, nothing allocated.

`TensorSpec` describes one tensor: floating tensors are filled with seeded normal values (and follow the workload's
dtype and its variants' casts), integer tensors with seeded integers in [low, high) (an embedding's indices must be
valid), bool tensors with seeded True/False (masks). `describe` writes a workload's inputs as one line for
results.csv: `float32[256,3,227,227]` or `int64[2,128]; attention_mask=bool[2,128]`.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch

FLOATING = ("float32", "float64", "float16", "bfloat16")
INTEGER = ("int64", "int32", "int16", "int8", "uint8")
INPUT_DTYPES: dict[str, torch.dtype] = {name: getattr(torch, name) for name in (*FLOATING, *INTEGER, "bool")}
# A workload's dtypes (its parameters and floating inputs), and a variant's: the floating-point ones.
DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}
DEFAULT_HIGH = 2  # integer inputs with no range given: [0, 2), valid for every embedding


def dtype_name(dtype: torch.dtype) -> str:
    """torch.float32 -> "float32"."""
    return str(dtype).removeprefix("torch.")


@dataclass(frozen=True)
class TensorSpec:
    """One input tensor: its shape, dtype (a key of INPUT_DTYPES) and, for integers, the range [low, high) its values
    are drawn from (None: [0, DEFAULT_HIGH))."""

    shape: tuple[int, ...]
    dtype: str = "float32"
    low: int | None = None
    high: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.shape, (list, torch.Size)):
            object.__setattr__(self, "shape", tuple(self.shape))

    @property
    def floating(self) -> bool:
        return self.dtype in FLOATING

    @property
    def integer(self) -> bool:
        return self.dtype in INTEGER

    @property
    def range(self) -> tuple[int, int]:
        """The integer values drawn: [low, high)."""
        low = 0 if self.low is None else self.low
        return low, (max(low + 1, DEFAULT_HIGH) if self.high is None else self.high)

    def text(self) -> str:
        """"float32[256,3,227,227]"."""
        return f"{self.dtype}[{','.join(str(s) for s in self.shape)}]"

    def as_dict(self) -> dict:
        return {"shape": list(self.shape), "dtype": self.dtype}

    def problems(self) -> list[tuple[str, str, str]]:
        """(field, expected, found) for each thing wrong: field is "" for the spec, or shape[i], dtype, low, high."""
        out = []
        shape = self.shape
        if not isinstance(shape, tuple):
            out.append(("shape", "a tuple of positive integers", repr(shape)))
        else:
            for i, size in enumerate(shape):
                if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
                    out.append((f"shape[{i}]", "a positive integer", repr(size)))
        if not isinstance(self.dtype, str) or self.dtype not in INPUT_DTYPES:
            out.append(("dtype", f"one of {', '.join(INPUT_DTYPES)}", repr(self.dtype)))
            return out
        for name in ("low", "high"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                out.append((name, "an integer or None", repr(value)))
            elif value is not None and not self.integer:
                out.append((name, f"None for a {self.dtype} input (a value range is for integer inputs)", repr(value)))
        if not out and self.integer:
            low, high = self.range
            if high <= low:
                out.append(("high", f"an integer above low ({low})", repr(high)))
        return out

    def meta(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """An empty tensor on the meta device (dtype: the floating dtype to use instead of the spec's)."""
        chosen = dtype if dtype is not None and self.floating else INPUT_DTYPES[self.dtype]
        return torch.empty(self.shape, dtype=chosen, device="meta")

    def make(self, device: str | torch.device, dtype: torch.dtype | None = None) -> torch.Tensor:
        """A seeded random tensor on device (call torch.manual_seed first for the same values every run)."""
        if self.floating:
            return torch.randn(self.shape, dtype=dtype or INPUT_DTYPES[self.dtype], device=device)
        if self.dtype == "bool":
            return torch.randint(0, 2, self.shape, device=device).bool()
        low, high = self.range
        return torch.randint(low, high, self.shape, dtype=INPUT_DTYPES[self.dtype], device=device)

    @classmethod
    def of(cls, tensor: torch.Tensor, *, low: int | None = None, high: int | None = None) -> TensorSpec:
        """The spec of a tensor (meta or real); integer tensors take the range given."""
        integer = not tensor.is_floating_point() and tensor.dtype != torch.bool
        return cls(tuple(tensor.shape), dtype_name(tensor.dtype), low if integer else None, high if integer else None)


def plain(value: Any) -> bool:
    """A value a workload can pass as it is: None, a bool, number or string, or a tuple of them (hashable data)."""
    if isinstance(value, tuple):
        return all(plain(v) for v in value)
    return value is None or isinstance(value, (bool, int, float, str))


def _item(value: Any) -> str:
    return value.text() if isinstance(value, TensorSpec) else repr(value)


def describe(inputs: Iterable[Any], kwargs: Iterable[tuple[str, Any]] = ()) -> str:
    """Every input on one line: "int64[2,128]; attention_mask=bool[2,128]"."""
    parts = [_item(v) for v in inputs] + [f"{k}={_item(v)}" for k, v in kwargs]
    return "; ".join(parts)
