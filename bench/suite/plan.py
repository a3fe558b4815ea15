"""Check every workload on the meta device before anything is timed: shape, FLOPs, bytes, memory, errors.

The layer rules (bench.suite.rules) run in forward pre-hooks during the meta forward. Shapes and FLOPs themselves
come from torch: a forward on the meta device and `torch.utils.flop_counter.FlopCounterMode`
(a multiply-add counts as 2 FLOPs; bias adds and elementwise ops are not counted). Forward hooks on every
submodule record the tensors each one returns, for the memory a forward needs at its peak (`Plan.peak_bytes`).
The `Plan` record itself is in bench.suite.workload, so that what carries one (a record, a worker's job) does
not import the planner.
"""
from __future__ import annotations

import contextlib
import re
import sys
import warnings
from collections import Counter

import torch
from torch import nn
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count

from bench.errors import BenchError, Problem, one_line
from bench.suite.inputs import TensorSpec
from bench.suite.rules import RULES, Violation
from bench.suite.workload import Declared, Plan, Workload


def meta_inputs(workload: Workload) -> tuple[list, dict]:
    """The workload's positional and keyword inputs on the meta device (plain values as they are)."""
    def one(spec):
        return spec.meta() if isinstance(spec, TensorSpec) else spec

    return [one(s) for s in workload.input_specs], {k: one(v) for k, v in workload.kwarg_specs}


def _conv_backward_flop(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation, transposed,
                        _output_padding, _groups, output_mask, out_shape=None, **_) -> int:
    """FLOPs of aten.convolution_backward: grad_input and grad_weight each cost what the forward costs (every
    multiply-add of the forward has one partner in each). Hand-written because torch's formula (2.13) counts
    grad_weight as a convolution over all input channels, ignoring groups: Conv2d(144, 144, 3, groups=144) came
    out at 146x its forward FLOPs instead of 3x, and a depthwise backward looked compute-bound on the roofline."""
    forward = conv_flop_count(list(x_shape), list(w_shape), list(grad_out_shape), transposed=transposed)
    return forward * (int(bool(output_mask[0])) + int(bool(output_mask[1])))


def flop_counter() -> FlopCounterMode:
    """torch's FlopCounterMode (a multiply-add counts 2), with the grouped-convolution backward corrected."""
    return FlopCounterMode(display=False, custom_mapping={torch.ops.aten.convolution_backward: _conv_backward_flop})


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

    module = _build_on_meta(workload, problem)

    notes: list[str] = []
    running: list[str] = []
    produced: dict[int, torch.Tensor] = {}  # every tensor a module returned, by the id of its memory's owner
    handles = []
    for path, sub in module.named_modules():
        label = f"module.{path}" if path else "module"

        def pre_hook(mod, args, label=label):
            running.append(f"{label} ({type(mod).__name__})")
            x = args[0] if args and isinstance(args[0], torch.Tensor) else None
            for kind, rule in RULES:
                if x is not None and isinstance(mod, kind):
                    rule(label, mod, x, notes)

        def post_hook(mod, args, out):
            running.pop()
            for t in tree_leaves(out):
                if isinstance(t, torch.Tensor):
                    owner = t._base if t._base is not None else t  # a view's memory is its base's
                    if id(owner) not in given and id(owner) not in produced:
                        produced[id(owner)] = owner  # kept alive (meta: no memory) so no id is reused

        handles.append(sub.register_forward_pre_hook(pre_hook))
        handles.append(sub.register_forward_hook(post_hook))

    try:
        args, kwargs = meta_inputs(workload)
    except RuntimeError as exc:  # e.g. "Storage size calculation overflowed" for absurd shapes
        for h in handles:
            h.remove()
        raise problem("input_shape" if not workload.inputs else "inputs", "a tensor size torch can address",
                      one_line(exc)) from None
    tensors = [t for t in (*args, *kwargs.values()) if isinstance(t, torch.Tensor)]
    given = {id(t) for t in tensors}
    counter = flop_counter()
    try:
        with torch.no_grad(), counter:
            out = module(*args, **kwargs)
    except Violation as v:
        raise problem(v.field, v.expected, v.found) from None
    except Exception as exc:  # noqa: BLE001 - an unsupported layer combination; name the layer that failed
        at = running[-1] if running else "module"
        shown = list(workload.input_shape) if not (workload.inputs or workload.kwargs) else workload.inputs_text
        raise problem(at.split(" ")[0], f"a forward that runs on input {shown}",
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
        output_shape=tuple(first.shape),  # the first tensor's, when the forward returns several
        params=sum(p.numel() for p in module.parameters()),
        flops=int(counter.get_total_flops()),
        input_bytes=sum(t.numel() * t.element_size() for t in tensors),
        param_bytes=sum(p.numel() * p.element_size() for p in params),
        output_bytes=sum(t.numel() * t.element_size() for t in outs),
        is_view=len(outs) == 1 and any(_aliases(first, t) for t in tensors),
        intermediate_bytes=sum(t.numel() * t.element_size() for t in produced.values()),
        shape_notes=tuple(notes),
        definition=_definition(module, workload),
    )


def _definition(module: nn.Module, workload: Workload) -> str:
    """The workload's definition as text: the module as torch prints it (layer types and settings, memory addresses
    a custom repr may show left out), every parameter's and buffer's name, shape and dtype, and every input's."""
    tensors = [f"{name}:{t.dtype}{list(t.shape)}" for name, t in (*module.named_parameters(),
                                                                  *module.named_buffers())]
    return "\n".join([re.sub(r"0x[0-9a-fA-F]+", "0x", repr(module)), *tensors, workload.inputs_text])


def _build_on_meta(workload: Workload, problem) -> nn.Module:
    """The workload's module built on the meta device in its dtype, in eval mode; problem(...) for a builder that
    fails or returns something else."""
    try:
        # torch warns while building some invalid layers ("Initializing zero-element tensors is a no-op" for
        # Conv2d(3, 0, 3)); the rules below turn those layers into one-line problems, so the warning is noise.
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = workload.module()
    except Exception as exc:  # noqa: BLE001 - the user's builder failed; say how, in one line
        raise problem("module", "a callable that builds an nn.Module", f"calling it raised {one_line(exc)}") from None
    if not isinstance(module, nn.Module):
        raise problem("module", "a callable that returns an nn.Module", f"it returned {type(module).__name__}")
    module = module.to(device="meta", dtype=workload.torch_dtype).eval()
    return module


def plan_suite(declared: list[Declared]) -> tuple[list[Plan], list[Problem]]:
    """Plan every workload; return the plans that passed and every problem found, all at once.

    What a module prints while it is built or called on the meta device goes to stderr, as a config's prints at
    import do: stdout carries a command's output (`list --json`)."""
    with contextlib.redirect_stdout(sys.stderr):
        return _plan_all(declared)


def _plan_all(declared: list[Declared]) -> tuple[list[Plan], list[Problem]]:
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
            problems.append(Problem(where=d.source, workload=key(w), field="name",
                                    expected="a name unique in the suite",
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
