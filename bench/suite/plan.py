"""Check every workload on the meta device before anything is timed: shape, FLOPs, bytes, errors.

The layer rules (Linear's in_features, Conv's channels and kernel against the padded input, Flatten's
dims) are checked here by hand before the meta forward runs, because the meta device accepts some
invalid layers and words others poorly ("Invalid channel dimensions"). Shapes and FLOPs themselves
come from torch: a forward on the meta device and `torch.utils.flop_counter.FlopCounterMode`
(a multiply-add counts as 2 FLOPs; bias adds and elementwise ops are not counted).
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import FlopCounterMode

from bench.suite.config import Declared
from bench.errors import BenchError, Problem, one_line
from bench.suite.workload import Workload


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
    shape_notes: tuple[str, ...] = ()

    @property
    def bytes_moved(self) -> int:
        """Minimum bytes moved: input, weights and output once each. A workload whose output is a view of its
        input (Flatten alone) runs no kernel and moves nothing: 0."""
        return self.param_bytes if self.is_view else self.input_bytes + self.param_bytes + self.output_bytes

    @property
    def name(self) -> str:
        return self.workload.name


class _Violation(Exception):
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
            if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
                raise _Violation(f"{path}.{attr}", "a positive integer" if minimum else "an integer >= 0", repr(value))


def _check_linear(path: str, m: nn.Linear, x: torch.Tensor, notes: list[str]) -> None:
    _check_sizes(path, m, {"in_features": 1, "out_features": 1})
    if x.dim() == 0 or x.shape[-1] != m.in_features:
        last = x.shape[-1] if x.dim() else "none (a 0-d input)"
        raise _Violation(f"{path}.in_features", f"{last}, the last dimension of its input {_shape(x)}",
                         str(m.in_features))


def _check_flatten(path: str, m: nn.Flatten, x: torch.Tensor, notes: list[str]) -> None:
    ndim = max(x.dim(), 1)
    for attr in ("start_dim", "end_dim"):
        dim = getattr(m, attr)
        if not -ndim <= dim < ndim:
            raise _Violation(f"{path}.{attr}", f"a dim in [{-ndim}, {ndim - 1}] for its input {_shape(x)}", str(dim))
    if (m.start_dim % ndim) > (m.end_dim % ndim):
        raise _Violation(f"{path}.start_dim", f"start_dim <= end_dim ({m.end_dim})", str(m.start_dim))


def _check_conv(path: str, m: nn.modules.conv._ConvNd, x: torch.Tensor, notes: list[str]) -> None:
    n = len(m.kernel_size)
    kind = type(m).__name__
    if x.dim() not in (n + 1, n + 2):
        raise _Violation(f"{path} input", f"a {n + 2}-d [N, C, {({1: 'L', 2: 'H, W'}).get(n, 'D, H, W')}] input "
                         f"(or {n + 1}-d unbatched) for {kind}", f"{x.dim()}-d {_shape(x)}")
    cdim = x.dim() - n - 1
    _check_sizes(path, m, {"in_channels": 1, "out_channels": 1, "groups": 1, "kernel_size": 1, "stride": 1,
                           "dilation": 1, "padding": 0})
    if m.in_channels % m.groups or m.out_channels % m.groups:
        raise _Violation(f"{path}.groups", f"a divisor of in_channels {m.in_channels} and out_channels {m.out_channels}",
                         str(m.groups))
    if x.shape[cdim] != m.in_channels:
        raise _Violation(f"{path}.in_channels", f"{x.shape[cdim]}, the input's channels (dim {cdim} of {_shape(x)})",
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
            raise _Violation(f"{path}.kernel_size", f"a kernel that fits the padded input ({size} + 2*{p} = {size + 2 * p} "
                             f"along {names[i]} of {_shape(x)})", f"{k} (spanning {span} with dilation {d})")
        out = math.floor((size + 2 * p - d * (k - 1) - 1) / s) + 1
        notes.append(f"{path} {names[i]}: floor(({size} + 2*{p} - {d}*({k} - 1) - 1) / {s}) + 1 = {out}")


_RULES = ((nn.Linear, _check_linear), (nn.Flatten, _check_flatten), (nn.modules.conv._ConvNd, _check_conv))


def _aliases(out: torch.Tensor, x: torch.Tensor) -> bool:
    """A view of the input (Flatten, reshape): no kernel runs. An in-place layer returns the input itself
    (ReLU(inplace=True)): a kernel reads and writes it, so that is not a view."""
    return out is not x and (out._base is x or (x._base is not None and out._base is x._base))


def plan_one(workload: Workload, source: str) -> Plan:
    """Build the workload on the meta device, check its rules, run it there and measure its cost.

    Raises BenchError with one Problem naming the source, workload, field, expected and found.
    """
    def problem(field: str, expected: str = "", found: str = "") -> BenchError:
        return BenchError(Problem(where=source, workload=workload.name, field=field, expected=expected, found=found))

    try:
        with torch.device("meta"):
            module = workload.module()
    except Exception as exc:  # noqa: BLE001 - the user's builder failed; say how, in one line
        raise problem("module", "a callable that builds an nn.Module", f"calling it raised {one_line(exc)}") from None
    if not isinstance(module, nn.Module):
        raise problem("module", "a callable that returns an nn.Module", f"it returned {type(module).__name__}")
    module = module.to(device="meta", dtype=workload.torch_dtype).eval()

    notes: list[str] = []
    running: list[str] = []
    handles = []
    for path, sub in module.named_modules():
        label = f"module.{path}" if path else "module"

        def pre_hook(mod, args, label=label):
            running.append(f"{label} ({type(mod).__name__})")
            x = args[0] if args and isinstance(args[0], torch.Tensor) else None
            for kind, rule in _RULES:
                if x is not None and isinstance(mod, kind):
                    rule(label, mod, x, notes)

        handles.append(sub.register_forward_pre_hook(pre_hook))
        handles.append(sub.register_forward_hook(lambda *a: running.pop() and None))

    try:
        x = torch.empty(workload.input_shape, dtype=workload.torch_dtype, device="meta")
    except RuntimeError as exc:  # e.g. "Storage size calculation overflowed" for absurd shapes
        for h in handles:
            h.remove()
        raise problem("input_shape", "a tensor size torch can address", one_line(exc)) from None
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            out = module(x)
    except _Violation as v:
        raise problem(v.field, v.expected, v.found) from None
    except Exception as exc:  # noqa: BLE001 - an unsupported layer combination; name the layer that failed
        at = running[-1] if running else "module"
        raise problem(at.split(" ")[0], f"a forward that runs on input {list(workload.input_shape)}",
                      one_line(exc)) from None
    finally:
        for h in handles:
            h.remove()

    outs = [t for t in tree_leaves(out) if isinstance(t, torch.Tensor)]
    if not outs:
        raise problem("module", "a forward that returns a tensor", f"it returned {type(out).__name__}")
    first = outs[0]
    params = list(module.parameters()) + list(module.buffers())
    return Plan(
        workload=workload,
        source=source,
        output_shape=tuple(first.shape) if len(outs) == 1 else tuple(first.shape),
        params=sum(p.numel() for p in module.parameters()),
        flops=int(counter.get_total_flops()),
        input_bytes=x.numel() * x.element_size(),
        param_bytes=sum(p.numel() * p.element_size() for p in params),
        output_bytes=sum(t.numel() * t.element_size() for t in outs),
        is_view=len(outs) == 1 and _aliases(first, x),
        shape_notes=tuple(notes),
    )


def plan_suite(declared: list[Declared]) -> tuple[list[Plan], list[Problem]]:
    """Plan every workload; return the plans that passed and every problem found, all at once."""
    problems: list[Problem] = []

    def key(w: Workload) -> str:  # a name may be unhashable (a list): w.problems() reports it, never crash
        return w.name if isinstance(w.name, str) else repr(w.name)

    counts = Counter(key(d.workload) for d in declared)
    seen: set[str] = set()
    plans: list[Plan] = []
    for d in declared:
        w = d.workload
        field_problems = w.problems(d.source)
        if counts[key(w)] > 1 and key(w) not in seen:
            others = sorted({e.source for e in declared if key(e.workload) == key(w)})
            problems.append(Problem(where=d.source, workload=key(w), field="name", expected="a name unique in the suite",
                                    found=f"{counts[key(w)]} workloads named so (in {', '.join(others)})"))
        seen.add(key(w))
        if field_problems:
            problems.extend(field_problems)
            continue
        try:
            plans.append(plan_one(w, d.source))
        except BenchError as exc:
            problems.extend(p for p in exc.problems if isinstance(p, Problem))
    return plans, problems


def check(declared: list[Declared]) -> list[Plan]:
    """Plan the suite, or raise BenchError listing every problem."""
    plans, problems = plan_suite(declared)
    if problems:
        raise BenchError(*problems)
    return plans
