"""What measuring one row produces: a frozen `Record` (its plan, device, variant, status and measurement), and
the `Progress` reported before each row."""
from __future__ import annotations

from dataclasses import dataclass

from bench.measure.clocks import HardwareState
from bench.measure.kernels import KernelProfile
from bench.measure.sampling import Measurement
from bench.schema import RowKey
from bench.suite.variants import DEFAULT, Variant
from bench.suite.workload import Plan


@dataclass(frozen=True, kw_only=True)
class Record:
    """The outcome of one workload on one device: a measurement when status is 'ok', a reason otherwise."""

    plan: Plan
    device: str
    device_name: str
    threads: int
    status: str
    reason: str = ""
    measurement: Measurement | None = None
    variant: Variant = DEFAULT
    flops: int | None = None  # of one timed call under the variant; None: the plan's forward FLOPs
    bytes_moved: int | None = None  # likewise; None: the plan's bytes_moved
    max_rel_diff: float | None = None  # output vs a float64 CPU reference (see variants.max_rel_diff)
    math: str = ""  # the compute roof that applies: the dtype, or "tf32" for float32 that may use TF32
    process: int = 0  # the worker process that measured it (bench.measure.workers), numbered from 0 within a run
    instructions: float | None = None  # CPU instructions per call (callgrind), with --metric instructions
    compile_s: float | None = None  # compile rows: seconds of the first call, compiling included
    graphs: int | None = None  # compile rows: graphs torch.compile made for the row (0 fails the row)
    cache: str = "warm"  # the cache state it was timed in (bench.measure.sampling.Policy.cache)
    peak_memory_bytes: int | None = None  # the memory the row held at its peak (bench.measure.memory.PeakTracker)
    planned_peak_bytes: int | None = None  # the planned estimate beside it (bench.measure.apply.peak_memory)
    math_from: str = ""  # where `math` was decided: kernels, accuracy or flags (bench.measure.apply.math_that_ran)
    hardware: HardwareState | None = None  # clocks, power, throttling while measured (bench.measure.clocks)
    profile: KernelProfile | None = None  # --profile: the kernels of one call and a trace (bench.measure.kernels)

    @property
    def key(self) -> RowKey:
        """The row's identity: workload, device, the dtype it ran in, variant."""
        return RowKey(self.plan.name, self.device, self.variant.dtype or self.plan.workload.dtype, self.variant.name)


@dataclass(frozen=True, kw_only=True)
class Progress:
    """Reported before each row: row `index` (1-based) of `total`, and the estimated seconds left."""

    index: int
    total: int
    workload: str
    device: str
    left_s: float
    variant: str = "default"
