"""The layer rules the seed teaches, checked by hand on the meta device before the forward runs.

The meta device accepts some invalid layers (Linear(4, 0), kernel 0, padding -1, stride 0) and words others
poorly ("Invalid channel dimensions"), so Linear's in_features, Conv's channels, groups and kernel against the
padded input, and Flatten's dims are checked here, each with the field, what was expected and what was found.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from bench.errors import is_int


class Violation(Exception):
    def __init__(self, field: str, expected: str, found: str) -> None:
        super().__init__(field)
        self.field, self.expected, self.found = field, expected, found


def _shape(t: torch.Tensor) -> list[int]:
    return list(t.shape)


def _check_sizes(path: str, m: nn.Module, least: dict[str, int]) -> None:
    """Layer sizes must be integers >= least[attr]: torch builds Linear(4, 0), Conv2d(3, 0, 3), kernel 0,
    padding -1 and dilation 0 without a word, and the meta device even runs them (stride 0 divides by zero)."""
    for attr, minimum in least.items():
        value = getattr(m, attr)
        if isinstance(value, str):  # padding="same" or "valid"
            continue
        for v in value if isinstance(value, tuple) else (value,):
            if not is_int(v, minimum=minimum):
                raise Violation(f"{path}.{attr}", "a positive integer" if minimum else "an integer >= 0", repr(value))


def _check_linear(path: str, m: nn.Linear, x: torch.Tensor, notes: list[str]) -> None:
    _check_sizes(path, m, {"in_features": 1, "out_features": 1})
    if x.dim() == 0 or x.shape[-1] != m.in_features:
        last = x.shape[-1] if x.dim() else "none (a 0-d input)"
        raise Violation(f"{path}.in_features", f"{last}, the last dimension of its input {_shape(x)}",
                         str(m.in_features))


def _check_flatten(path: str, m: nn.Flatten, x: torch.Tensor, notes: list[str]) -> None:
    ndim = max(x.dim(), 1)
    for attr in ("start_dim", "end_dim"):
        dim = getattr(m, attr)
        if not -ndim <= dim < ndim:
            raise Violation(f"{path}.{attr}", f"a dim in [{-ndim}, {ndim - 1}] for its input {_shape(x)}", str(dim))
    if (m.start_dim % ndim) > (m.end_dim % ndim):
        raise Violation(f"{path}.start_dim", f"start_dim <= end_dim ({m.end_dim})", str(m.start_dim))


def _check_conv(path: str, m: nn.modules.conv._ConvNd, x: torch.Tensor, notes: list[str]) -> None:
    n = len(m.kernel_size)
    kind = type(m).__name__
    if x.dim() not in (n + 1, n + 2):
        raise Violation(f"{path} input", f"a {n + 2}-d [N, C, {({1: 'L', 2: 'H, W'}).get(n, 'D, H, W')}] input "
                         f"(or {n + 1}-d unbatched) for {kind}", f"{x.dim()}-d {_shape(x)}")
    cdim = x.dim() - n - 1
    _check_sizes(path, m, {"in_channels": 1, "out_channels": 1, "groups": 1, "kernel_size": 1, "stride": 1,
                           "dilation": 1, "padding": 0})
    if m.in_channels % m.groups or m.out_channels % m.groups:
        raise Violation(f"{path}.groups", f"a divisor of in_channels {m.in_channels} and out_channels {m.out_channels}",
                         str(m.groups))
    if x.shape[cdim] != m.in_channels:
        raise Violation(f"{path}.in_channels", f"{x.shape[cdim]}, the input's channels (dim {cdim} of {_shape(x)})",
                         str(m.in_channels))
    if m.transposed:
        return
    spatial = x.shape[cdim + 1:]
    names = ("H", "W") if n == 2 else tuple(f"dim{cdim + 1 + i}" for i in range(n)) if n != 1 else ("L",)
    for i, size in enumerate(spatial):
        k, s, d = m.kernel_size[i], m.stride[i], m.dilation[i]
        if isinstance(m.padding, str):
            if m.padding == "same":
                notes.append(f"{path} {names[i]}: padding='same' keeps {size}")
                continue
            p = 0
        else:
            p = m.padding[i]
        span = d * (k - 1) + 1
        if size + 2 * p < span:
            raise Violation(f"{path}.kernel_size",
                            f"a kernel that fits the padded input ({size} + 2*{p} = {size + 2 * p} "
                            f"along {names[i]} of {_shape(x)})", f"{k} (spanning {span} with dilation {d})")
        out = math.floor((size + 2 * p - d * (k - 1) - 1) / s) + 1
        notes.append(f"{path} {names[i]}: floor(({size} + 2*{p} - {d}*({k} - 1) - 1) / {s}) + 1 = {out}")


RULES = ((nn.Linear, _check_linear), (nn.Flatten, _check_flatten), (nn.modules.conv._ConvNd, _check_conv))
