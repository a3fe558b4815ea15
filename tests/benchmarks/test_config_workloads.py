"""Config workloads as pytest-benchmark tests (see conftest.py for BENCH_CONFIG and BENCH_DEVICES).

    pytest tests/benchmarks --benchmark-autosave                  # time them, save numbered JSON
    pytest tests/benchmarks --benchmark-compare --benchmark-compare-fail=median:10%
    pytest tests/benchmarks --benchmark-disable                   # run each once: a correctness test

Each test also checks the output's shape against the plan and that it is finite.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from bench.measure.args import Args, first_tensor
from bench.measure.runner import build_inputs


def timed_step(module: Callable, x: torch.Tensor | Args, device: str, *,
               synchronize: Callable[[], None] | None = None) -> Callable[[], Any]:
    """The function pytest-benchmark times. On CUDA it waits for the GPU inside the timed function:
    pytest-benchmark reads the host clock, and without this it times only the kernel launch, far shorter
    than the kernel itself."""
    args, kwargs = (x.args, x.kwargs) if isinstance(x, Args) else ((x,), {})  # several inputs: a model's layers
    if device != "cuda":
        return lambda: module(*args, **kwargs)
    sync = synchronize or torch.cuda.synchronize

    def step():
        out = module(*args, **kwargs)
        sync()
        return out

    return step


def test_workload(benchmark, case):
    module, x = build_inputs(case.plan, case.device)  # as `bench run` builds them
    step = timed_step(module, x, case.device)
    benchmark.group = case.device
    benchmark.extra_info.update(dtype=case.plan.workload.dtype, flops=case.plan.flops, bytes=case.plan.bytes_moved,
                                input_shape=list(case.plan.workload.input_shape), inputs=case.plan.workload.inputs_text,
                                device_s="host clock, synchronized")
    with torch.inference_mode():
        if case.device == "cuda":
            step()  # untimed: CUDA context, cuDNN algorithm choice and caches before the first round
        out = first_tensor(benchmark(step))
    assert tuple(out.shape) == case.plan.output_shape
    assert torch.isfinite(out).all()


def test_cuda_step_synchronizes_inside_the_timed_function():
    events = []

    def layer(x):
        events.append("launch")
        return x

    step = timed_step(layer, torch.zeros(1), "cuda", synchronize=lambda: events.append("sync"))
    step()
    step()
    assert events == ["launch", "sync", "launch", "sync"]
    events.clear()
    timed_step(layer, torch.zeros(1), "cpu", synchronize=lambda: events.append("sync"))()
    assert events == ["launch"]
