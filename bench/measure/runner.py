"""Run checked plans on each device: build the layer and input there, measure, and return records.

A failure in one row (out of memory, an exception in forward, an unsupported dtype, a timeout)
becomes that row's status and reason; the rest of the suite goes on. Each row runs under one
`Variant` (bench.suite.variants): its settings are applied around the measurement and restored afterwards;
a variant that cannot run on a device gives a row with status "not-applicable" and the reason.
Ctrl-C is not swallowed: the records finished so far have already been handed to `on_record`.
"""
from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence

import torch

from bench.errors import BenchError, Problem, one_line
from bench.measure.apply import (
    applied,
    cold_inputs,
    convert,
    cost,
    last_level_cache_bytes,
    math_mode,
    math_that_ran,
    max_rel_diff,
    peak_memory,
    step,
)
from bench.measure.args import Args, first_tensor
from bench.measure.clock import Timer, default_timer, graph_replay
from bench.measure.clocks import Sampler
from bench.measure.deadline import DeadlineExceeded, deadline
from bench.measure.env import available_devices, device_name
from bench.measure.kernels import PROFILED_CALLS, profile_calls
from bench.measure.memory import PeakTracker, free_bytes
from bench.measure.record import Progress, Record
from bench.measure.sampling import Measurement, Policy, WorkloadTimeout, measure
from bench.measure.workers.cost import Estimate
from bench.schema import ERROR, NOT_APPLICABLE, OK, OOM, SKIPPED, TIMEOUT, UNSUPPORTED, RowKey
from bench.suite.plan import Plan
from bench.suite.variants import DEFAULT, Variant, skip_reason

CUDA_POLICY = Policy(warmup_s=0.5)  # long enough for GPU clocks to ramp and cuDNN to pick its algorithm
ACCURACY_ROWS = 8  # the float64 reference is computed on the first rows of the batch only (dim 0)


def devices_for(choice: str) -> list[str]:
    """"all" (the CPU and CUDA when present), "cpu" or "cuda" (BenchError without a GPU)."""
    have = available_devices()
    if choice == "all":
        return have
    if choice not in ("cpu", "cuda"):
        raise BenchError(Problem(where="run", field="device", expected="cpu, cuda or all", found=repr(choice)))
    if choice not in have:
        raise BenchError(Problem(where="run", field="--device cuda", expected="a CUDA device",
                                 found="none (torch.cuda.is_available() is False)"))
    return [choice]



def build_inputs(plan: Plan, device: str) -> tuple[torch.nn.Module, Args]:
    """The layer (eval mode) and seeded random inputs on `device` (floating ones in the workload's dtype, integer
    ones in their range); never timed."""
    w = plan.workload
    torch.manual_seed(0)  # seeded weights and input: same data in every run, never zeros
    with torch.device(device):
        module = w.module()
    module = module.to(device=device, dtype=w.torch_dtype).eval()
    return module, Args.build(w, device)


def build(plan: Plan, device: str) -> tuple[torch.nn.Module, torch.Tensor]:
    """The layer and its first input (the short form, one floating input): see build_inputs."""
    module, args = build_inputs(plan, device)
    return module, args.first


OOM_TEXTS = ("out of memory", "can't allocate memory", "cannot allocate memory")  # CUDA; the CPU allocator, ENOMEM


def _classify(exc: BaseException) -> str:
    """"oom" for CUDA's OutOfMemoryError, Python's MemoryError and the CPU allocator's RuntimeError
    ("DefaultCPUAllocator: can't allocate memory: ... Error code 12 (Cannot allocate memory)")."""
    text = str(exc)
    if isinstance(exc, (torch.cuda.OutOfMemoryError, MemoryError)) or any(t in text.lower() for t in OOM_TEXTS):
        return OOM
    if "not implemented for" in text or "not supported" in text.lower():
        return UNSUPPORTED
    return ERROR


def _reference(module: torch.nn.Module, x: Args) -> torch.Tensor:
    """The float64 CPU output of a copy of the module, as built, on the first ACCURACY_ROWS rows of the short
    form's input (several inputs: on all of them)."""
    ref_module = copy.deepcopy(module).to("cpu", torch.float64)
    with torch.inference_mode():
        return first_tensor(x.rows(ACCURACY_ROWS).reference().call(ref_module))


class NotCompiled(RuntimeError):
    """torch.compile produced no graph for a compile row: timing it would time eager code under its label."""


def _graphs() -> int:
    """Graphs dynamo has compiled in this process so far."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


COMPILE_BACKEND = "inductor"  # torch.compile's default; the tests use "eager" (dynamo's tracing, no C++ compiler)


def _compiled(module):
    """torch.compile from a clean dynamo state: no recompile limit reached and no shapes made dynamic by earlier
    rows (worker processes also give compile rows a process of their own), static shapes."""
    torch._dynamo.reset()
    return torch.compile(module, dynamic=False, backend=COMPILE_BACKEND)


def _measure_variant(module, x, variant: Variant, *, timer: Timer, policy: Policy,
                     counter=None) -> tuple[Measurement, torch.Tensor, dict]:
    """Time the variant's step; return the measurement, one forward output (for the accuracy check) and the
    Record fields it measured besides: the hardware's state while timed (bench.measure.clocks); with a `counter`
    (bench.measure.instructions, in a worker under callgrind) the instructions per call; for `compile`, the seconds
    of the first call (compiling) and the graphs made; with policy.profile, the kernels of one call after the
    timing (bench.measure.kernels)."""
    extra: dict = {}
    inputs = None
    if policy.cache == "cold":
        if variant.cuda_graph:
            raise NotImplementedError("--cache cold is not supported with cuda_graph: a graph replays one input")
        inputs = cold_inputs(x, last_level_cache_bytes(x.device.type))
    if variant.compile:
        module = _compiled(module)
    with torch.enable_grad() if variant.backward else torch.inference_mode():
        fn = step(module, x, variant, inputs)
        if variant.compile:  # compiling (and a recompile on the second call, if any) happens outside the timing
            before, started = _graphs(), time.perf_counter()
            fn()
            extra["compile_s"] = time.perf_counter() - started
            fn()
            extra["graphs"] = _graphs() - before
            if not extra["graphs"]:
                raise NotCompiled("torch.compile made no graph (dynamo fell back to eager): the row would time "
                                  "eager code; see TORCH_LOGS=graph_breaks")
        if variant.cuda_graph:
            fn = graph_replay(fn)
        with Sampler(x.device.type) as hardware:
            m = measure(fn, timer=timer, policy=policy)
        extra["hardware"] = hardware.state
        if counter is not None and x.device.type == "cpu":
            extra["instructions"] = counter.per_call(fn)
        if policy.profile:  # after the timing: the profiler slows what it watches
            extra["profile"] = profile_calls(fn, x.device.type, calls=PROFILED_CALLS if min(m.device_s) < 0.01 else 1)
        out = first_tensor(x.call(module) if variant.backward else fn()).detach()
    return m, out, extra


def run_one(plan: Plan, device: str, *, timer: Timer, policy: Policy, memory_factor: float = 3.0,
            variant: Variant = DEFAULT, counter=None, keep: dict | None = None) -> Record:
    """Measure one plan on one device under one variant (default: the workload as declared, torch's settings).

    Never raises for a failing workload: the record says what happened. The variant's flags and threads
    are set only around this row and restored afterwards, also when the row fails.
    keep: a dict the caller holds between calls; the row's built module, input, float64 reference and math mode
    are kept there and reused while the next calls measure the same row (a worker measuring one row in several
    short blocks, alternated with another process's blocks: bench ab); it holds one row at a time.
    """
    w = plan.workload
    name = device_name(device)
    reason = skip_reason(variant, device=device, input_ndim=w.floating_ndim, workload_dtype=w.dtype)
    if reason:
        return Record(plan=plan, device=device, device_name=name, threads=torch.get_num_threads(),
                      status=NOT_APPLICABLE, reason=reason, variant=variant, cache=policy.cache)
    with applied(variant):
        base = dict(plan=plan, device=device, device_name=name, threads=torch.get_num_threads(), variant=variant,
                    cache=policy.cache)
        module = x = reference = out = None
        try:
            flops, bytes_moved = cost(plan, variant)
            base.update(flops=flops, bytes_moved=bytes_moved)
            # Refused before anything is allocated: the planned peak (input, weights and every intermediate;
            # doubled for backward, see apply.peak_memory), with memory_factor of headroom for the layer's
            # float64 reference copy, the variant's conversions and the allocator.
            peak = peak_memory(plan, variant)
            needed = int(peak * memory_factor)
            free = free_bytes(device)
            if needed > free:
                return Record(**base, status=SKIPPED,
                              reason=f"needs about {needed / 2**30:.2f} GiB ({memory_factor:g}x the planned peak "
                                     f"of {peak / 2**30:.2f} GiB{' with backward' if variant.backward else ''}), "
                                     f"{device} has {free / 2**30:.2f} GiB free")
            with deadline(policy.row_limit_s):  # in a worker, the parent also kills it past this (measure.workers)
                row = RowKey(plan.name, device, variant.dtype or plan.workload.dtype, variant.name)
                if keep is not None and row in keep:
                    module, x, reference, math, tracker = keep[row]
                else:
                    if keep is not None:
                        keep.clear()  # the previous row's tensors go before this row's are built
                    tracker = PeakTracker(device)  # before anything of the row exists
                    module, x = build_inputs(plan, device)
                    reference = _reference(module, x)
                    module, x = convert(module, x, variant)
                    math = math_mode(module, dtype=variant.dtype or w.dtype, device=device)
                    if keep is not None:
                        keep[row] = (module, x, reference, math, tracker)
                tracker.restart()
                m, out, extra = _measure_variant(module, x, variant, timer=timer, policy=policy, counter=counter)
                extra.update(peak_memory_bytes=tracker.peak_bytes(), planned_peak_bytes=peak)
            head = out[:ACCURACY_ROWS] if out.dim() and x.single else out
            diff = max_rel_diff(head, reference) if head.shape == reference.shape else None
            profile = extra.get("profile")
            math, math_from = math_that_ran(math, max_rel_diff=diff, tf32_kernels=profile.tf32 if profile else None)
            return Record(**base, status=OK, measurement=m,
                          max_rel_diff=diff, math=math, math_from=math_from, **extra)
        except (WorkloadTimeout, DeadlineExceeded) as exc:
            return Record(**base, status=TIMEOUT, reason=str(exc))
        except Exception as exc:  # noqa: BLE001 - one row's failure must not cost the suite; it is recorded
            return Record(**base, status=_classify(exc), reason=one_line(exc))
        finally:
            del module, x, reference, out
            if device == "cuda":
                torch.cuda.empty_cache()


def run_suite(
    plans: list[Plan],
    devices: list[str],
    *,
    policy: Policy = Policy(),
    cuda_policy: Policy = CUDA_POLICY,
    timer_for: Callable[[str], Timer] = default_timer,
    on_progress: Callable[[Progress], None] | None = None,
    on_record: Callable[[Record], None] | None = None,
    variants: Sequence[Variant] = (DEFAULT,),
) -> list[Record]:
    """Measure every plan on every device under every variant, in that order (variants innermost).

    `on_record` sees each record as soon as it exists. Variants that cannot run on a device give
    "not-applicable" records at once, and do not count in the time-left estimate.
    """
    rows = [(p, d, v) for p in plans for d in devices for v in variants]
    records: list[Record] = []
    estimate = Estimate(total=len(rows))
    for i, (plan, device, variant) in enumerate(rows):
        pol = cuda_policy if device == "cuda" else policy
        if on_progress:
            on_progress(Progress(index=i + 1, total=len(rows), workload=plan.name, device=device,
                                 left_s=estimate.left_s(pol.warmup_s + pol.budget_s), variant=variant.name))
        start = time.perf_counter()
        record = run_one(plan, device, timer=timer_for(device), policy=pol, variant=variant)
        estimate.finished(time.perf_counter() - start, timed=record.status != NOT_APPLICABLE)
        records.append(record)
        if on_record:
            on_record(record)
    return records
