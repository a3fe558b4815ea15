"""Applying a bench.suite.variants.Variant: its torch settings, the module and input it times, the cost and accuracy.

`applied` sets the TF32 / cudnn.benchmark flags and the thread count and restores them; `convert` puts the
module and input in the variant's dtype and memory format; `step` is the function to time (forward, or
forward plus backward); `cost` gives the FLOPs and bytes of that step, `peak_memory` the memory it needs at
its peak; `max_rel_diff` measures accuracy.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.measure.args import Args, as_args, first_tensor
from bench.measure.env import matmul_precision
from bench.suite.plan import Plan, flop_counter, meta_inputs, plan_one
from bench.suite.variants import Variant
from bench.suite.workload import DTYPES


@contextmanager
def applied(variant: Variant) -> Iterator[None]:
    """Set the TF32, cudnn.benchmark and thread settings the variant asks for; restore them on exit."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
             torch.backends.cudnn.benchmark, torch.get_num_threads())
    precision = matmul_precision()
    try:
        if variant.tf32 is not None:
            torch.backends.cuda.matmul.allow_tf32 = variant.tf32
            torch.backends.cudnn.allow_tf32 = variant.tf32
        if variant.cudnn_benchmark:
            torch.backends.cudnn.benchmark = True
        if variant.threads:
            torch.set_num_threads(variant.threads)
        yield
    finally:
        (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
         torch.backends.cudnn.benchmark) = saved[:3]
        if precision is not None and matmul_precision() != precision:  # "medium" is no allow_tf32 value
            torch.set_float32_matmul_precision(precision)
        if torch.get_num_threads() != saved[3]:
            torch.set_num_threads(saved[3])


def math_mode(module: nn.Module, *, dtype: str, device: str) -> str:
    """Which compute roof applies under the current flags: "tf32" for float32 on CUDA that may use TF32, else dtype."""
    if device != "cuda" or dtype != "float32":
        return dtype
    has_conv = any(isinstance(m, nn.modules.conv._ConvNd) for m in module.modules())
    matmul_tf32 = torch.backends.cuda.matmul.allow_tf32  # True for precision "high" and "medium" too
    return "tf32" if matmul_tf32 or (has_conv and torch.backends.cudnn.allow_tf32) else "float32"


# TF32 keeps 10 mantissa bits (unit roundoff 2^-11): its outputs are about 1e-4 to 1e-3 (of the largest value) off a
# float64 reference; float32's are 1e-7 to 1e-5. An error below this cannot have come from TF32.
TF32_MIN_ERROR = 2.0 ** -14


def math_that_ran(math: str, *, max_rel_diff: float | None, tf32_kernels: bool | None) -> tuple[str, str]:
    """The compute roof that applies and where that was decided: the row's dtype ("dtype") unless the flags allow
    TF32 ("tf32" from math_mode); then the kernel names when profiled ("kernels"), else its error against float64
    ("accuracy": below TF32_MIN_ERROR, TF32 did not run), else the flags' answer ("flags")."""
    if math != "tf32":
        return math, "dtype"
    if tf32_kernels is not None:
        return ("tf32" if tf32_kernels else "float32"), "kernels"
    if max_rel_diff is not None and max_rel_diff < TF32_MIN_ERROR:
        return "float32", "accuracy"
    return math, "flags"


def convert(module: nn.Module, x: torch.Tensor | Args, variant: Variant) -> tuple[nn.Module, torch.Tensor | Args]:
    """The module and inputs in the variant's dtype and memory format (inputs keep requires_grad off). Casts apply
    to floating inputs only; channels_last to 4-d floating ones. x: a tensor or Args, returned as given."""
    a = as_args(x)
    if variant.dtype:
        dtype = DTYPES[variant.dtype]
        module, a = module.to(dtype=dtype), a.map(lambda t: t.to(dtype))
    if variant.channels_last:
        module = module.to(memory_format=torch.channels_last)
        a = a.map(lambda t: t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t)
    return module, (a if isinstance(x, Args) else a.first)


def _caller(module: Callable[..., Any], a: Args) -> Callable[[], Any]:
    """module on the inputs, with no more Python around the call than the short form needs."""
    if a.single:
        x = a.args[0]
        return lambda: module(x)
    args, kwargs = a.args, a.kwargs
    return lambda: module(*args, **kwargs)


def step(module: Callable[..., Any], x: torch.Tensor | Args, variant: Variant,
         inputs: list | None = None) -> Callable[[], Any]:
    """The function to time: module(x), or for `backward` module(x) then the gradients of the floating inputs and
    the parameters. inputs: copies of x to take in turn, one per call (a cold cache, `cold_inputs`); None: x
    every call.

    The backward step uses torch.autograd.grad with a fixed random output gradient, so gradients do not
    accumulate between calls. Call it under torch.enable_grad() for backward, inference_mode otherwise.
    """
    xs = [as_args(i) for i in inputs] if inputs else [as_args(x)]
    if not variant.backward:
        return _caller(module, xs[0]) if len(xs) == 1 else rotating(lambda a: a.call(module), xs)
    xs = [a.map(lambda t: t.detach().requires_grad_(True)) for a in xs]
    params = [p for p in getattr(module, "parameters", lambda: [])() if p.requires_grad]
    with torch.no_grad():
        grad_out = torch.randn_like(first_tensor(xs[0].call(module)))

    def grad(a: Args) -> Any:
        wrt = [t for t in a.tensors if t.requires_grad] + params
        return torch.autograd.grad(first_tensor(a.call(module)), wrt, grad_out)

    if len(xs) == 1 and xs[0].single and xs[0].args[0].requires_grad:
        x, wrt = xs[0].args[0], [xs[0].args[0], *params]
        return lambda: torch.autograd.grad(module(x), wrt, grad_out)
    if len(xs) == 1:
        return lambda: grad(xs[0])
    return rotating(grad, xs)


def max_rel_diff(output: torch.Tensor, reference: torch.Tensor) -> float:
    """max |output - reference| / max |reference|, in float64 on the CPU (0 when both are all zeros)."""
    out, ref = output.detach().to("cpu", torch.float64), reference.detach().to("cpu", torch.float64)
    scale = ref.abs().max().item() if ref.numel() else 0.0
    diff = (out - ref).abs().max().item() if ref.numel() else 0.0
    return diff / scale if scale > 0 else diff


def _in_variant_dtype(plan: Plan, variant: Variant) -> Plan:
    """The plan again in the variant's dtype (a meta-device pass), or the plan itself when the dtype is the same."""
    if variant.dtype and variant.dtype != plan.workload.dtype:
        return plan_one(replace(plan.workload, dtype=variant.dtype), plan.source)
    return plan


def peak_memory(plan: Plan, variant: Variant) -> int:
    """Bytes one row needs at its peak under the variant, an upper estimate built on `Plan.peak_bytes`.

    The rule: the larger of the forward's peak in the workload's dtype (the layer and input are built in it
    before a dtype variant converts them) and in the variant's dtype; doubled for `backward`, since under
    autograd every intermediate is kept for the backward pass and each gets a gradient of its own size
    (grad_out, the intermediates' gradients, grad_x and the weights' gradients).
    """
    peak = max(plan.peak_bytes, _in_variant_dtype(plan, variant).peak_bytes)
    return 2 * peak if variant.backward else peak


def cost(plan: Plan, variant: Variant) -> tuple[int, int]:
    """(FLOPs, bytes) of one timed call under the variant: the plan's forward, in the variant's dtype, and for
    `backward` the meta-device FLOPs of forward plus backward and bytes of forward plus grad_out, x and
    the weights read again and grad_x and grad_weights written (each once)."""
    plan = _in_variant_dtype(plan, variant)
    if not variant.backward:
        return plan.flops, plan.bytes_moved
    w = plan.workload
    with torch.device("meta"):
        module = w.module().to(dtype=w.torch_dtype)
    args, kwargs = meta_inputs(w)
    for t in (*args, *kwargs.values()):
        if isinstance(t, torch.Tensor) and t.is_floating_point():
            t.requires_grad_(True)
    counter = flop_counter()
    with counter:  # .backward, not autograd.grad: FlopCounterMode's module tracker refuses grad() on leaves
        out = module(*args, **kwargs)
        out = first_tensor(out)
        out.backward(torch.ones_like(out))
    if plan.is_view:  # the gradient of a view is a view of grad_out: nothing more moves
        return int(counter.get_total_flops()), plan.bytes_moved
    return (int(counter.get_total_flops()),
            plan.bytes_moved + plan.output_bytes + 2 * plan.input_bytes + 2 * plan.param_bytes)


# ---------------------------------------------------------------- cache state
COLD_FACTOR = 2  # cold inputs span twice the last-level cache: each call finds its input evicted


def last_level_cache_bytes(device: str, *, root: Path = Path("/")) -> int:
    """The largest cache of the device: CUDA's L2 (device properties), else the highest-level CPU cache Linux
    lists under /sys/devices/system/cpu/cpu0/cache (32 MiB when it cannot be read)."""
    if device == "cuda":
        return int(torch.cuda.get_device_properties(torch.cuda.current_device()).L2_cache_size)
    best = (0, 0)
    for index in (root / "sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            level = int((index / "level").read_text().strip())
            text = (index / "size").read_text().strip().upper()
        except (OSError, ValueError):
            continue
        scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        digits = text.rstrip("KMG")
        if digits.isdigit():
            best = max(best, (level, int(digits) * scale))
    return best[1] or 32 << 20


def cold_inputs(x: torch.Tensor | Args, cache_bytes: int) -> list:
    """Copies of x (x itself first; a tensor or Args) that together hold at least COLD_FACTOR x cache_bytes: taking
    the next one for each call, a call never finds its input in the cache (the weights, read by every call, may
    stay)."""
    size = max(1, x.nbytes if isinstance(x, Args) else x.numel() * x.element_size())
    count = max(1, -(-COLD_FACTOR * cache_bytes // size))
    return [x] + [x.clone() for _ in range(count - 1)]


def rotating(module: Callable[..., Any], inputs: list) -> Callable[[], Any]:
    """module on the next input of `inputs` at each call (one integer step of Python beside the call)."""
    state = [0]
    n = len(inputs)

    def call():
        state[0] = i = (state[0] + 1) % n
        return module(inputs[i])

    return call
