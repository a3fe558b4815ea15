"""Which rows a side has, which of them apply, which need a worker of their own, and which statuses failed."""
from __future__ import annotations

from bench.measure.workers.protocol import Job, Ready, Row
from bench.schema import FAILED_RUNNING
from bench.suite.variants import Variant, skip_reason
from bench.suite.workload import Plan

FAILED = FAILED_RUNNING  # a record with one of these: its worker is replaced (bench.schema says what each means)


def rows_for(ready: Ready, job: Job) -> list[Row]:
    """Every plan x device x variant (asked for first, then the suite's VARIANTS), as a run lists them."""
    variants = tuple(dict.fromkeys(job.variants + ready.variants)) or (Variant(),)
    return [Row(p.workload.name, d, v) for p in ready.plans for d in job.devices for v in variants]


def applies(plan: Plan, row: Row) -> bool:
    """Whether the row's variant can run its plan's workload on its device (else it is not-applicable at once)."""
    w = plan.workload
    return not skip_reason(row.variant, device=row.device, input_ndim=w.floating_ndim, workload_dtype=w.dtype)


def isolated(row: Row) -> bool:
    """Rows measured in a worker of their own: compile (dynamo's caches) and cudnn_benchmark (cuDNN's plan cache)."""
    return row.variant.compile or row.variant.cudnn_benchmark
