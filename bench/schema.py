"""The run folder's schema: its files, their columns, the identity of a row, and what "launch-bound" means.

A shared leaf: measuring, storing, comparing, reporting and exporting all read these names from here, so
a column or the identity of a row is defined once. A run folder holds results.csv (RESULT_COLUMNS, one row
per workload x device x dtype x variant), samples.csv (SAMPLE_COLUMNS, one row per kept sample) and
env.json (the environment, SCHEMA_VERSION, whether the run completed).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Run folder format history (env.json "schema_version"; the env.json object itself has its own history, see
# bench.store.env_record.ENV_SCHEMA_VERSION):
# 1: results.csv, samples.csv and env.json. results.csv grew under this version from the timing columns to the
#    61 of RESULT_COLUMNS (variants, worker processes, instructions, compile, memory, cache, clocks, kernels) and
#    samples.csv gained `variant` and `process`; a reader fills what an older file lacks (REQUIRED_* below).
# 2: the columns of version 1's last files, unchanged; the version is bumped so that a file names the columns it
#    has, and env.json carries env_version. Readers accept every version in READABLE_SCHEMA_VERSIONS.
# 3: median_s (and host_median_s, enqueue_median_s, flops_per_s, bytes_per_s) is the median of the per-process
#    medians, no longer of all samples pooled; results.csv gains median_low_s, median_high_s and machine_decided
#    at its end. Files of versions 1 and 2 lack them (readers treat them as missing; their median_s is pooled).
SCHEMA_VERSION = 3
READABLE_SCHEMA_VERSIONS = (1, 2, 3)
RESULTS_DIR = Path("results")  # the default results root (--root): runs, baselines/ and peaks/
RUN_FILES = ("results.csv", "samples.csv", "env.json")

# A row's identity. Every key column is a string end to end (a workload named "1.0" or "NA" stays that).
KEY_COLUMNS = ("workload", "device", "dtype", "variant")
DEFAULT_VARIANT = "default"

# The headline figures median_s, host_median_s and enqueue_median_s (and flops_per_s, bytes_per_s from median_s)
# are the median over the row's worker processes of each process's median (a row of one process: its samples'
# median); iqr_s, rel_iqr, mean_s, std_s, min_s, max_s and host_iqr_s are over all samples pooled
# (bench.store.summary).
RESULT_COLUMNS = [
    "workload", "device", "dtype", "status", "reason", "input_shape", "output_shape", "params", "flops", "bytes",
    "median_s", "iqr_s", "mean_s", "std_s", "min_s", "max_s", "n_samples", "calls_per_sample", "rel_iqr", "noisy",
    "host_median_s", "host_iqr_s", "enqueue_median_s", "launch_bound", "flops_per_s", "bytes_per_s",
    "threads", "device_name", "warmup_calls", "first_call_s", "stop_reason", "tags", "source", "note", "threshold",
    # the variant the row ran under (bench.suite.variants), its pass, its accuracy and the compute roof that applies
    "variant", "pass", "max_rel_diff", "math", "arithmetic_intensity",
    # the worker processes that measured the row (bench.measure.workers): how many, the spread within them (median of
    # each process's relative IQR) and between them (relative IQR of the per-process medians)
    "n_processes", "rel_iqr_within", "rel_iqr_between",
    # --metric instructions: CPU instructions per call counted by callgrind, the lowest over the memory layouts it
    # was counted in, and how far the highest was above it (bench.measure.instructions)
    "instructions", "instructions_spread",
    # compile rows: seconds of the first call (compiling, not timed; median over processes), graphs compiled
    "compile_s", "graphs",
    # the memory the row held at its peak, measured (the largest over its processes), and the planned estimate
    "peak_memory_bytes", "planned_peak_bytes",
    # the cache state the row was timed in: warm (back-to-back calls on one input) or cold (--cache cold)
    "cache",
    # where `math` (the compute roof) was decided: "dtype", or for float32 on CUDA "kernels" (--profile), "accuracy"
    # (the error against float64 rules TF32 out) or "flags" (torch's TF32 settings allow it)
    "math_from",
    # the hardware while the row was measured (bench.measure.clocks): the CPU's frequency; the GPU's SM and memory
    # clocks, power and temperature (NVML), the throttle reasons seen and the share of samples taken throttled
    "cpu_mhz", "sm_clock_mhz", "mem_clock_mhz", "power_w", "temperature_c", "throttle", "throttled_share",
    # --profile (bench.measure.kernels): the kernels of one call with their share of device time, and what their
    # names say: matrix (tensor-core) kernels ran, TF32 ran; kernels.csv and profiles/ hold the rest
    "top_kernels", "tensor_cores", "tf32",
    # every input of the row on one line ("int64[2,128]; attention_mask=bool[2,128]"; input_shape is the first's), and
    # for rows made by bench.layers: kind ("layer" or "model"; "" for a workload written by hand), the model's name,
    # the calls of the model's forward the row stands for (count; 1 for the model and hand-written rows), their
    # module paths (";"-joined) and the module's class name
    "inputs", "kind", "model", "count", "paths", "module_type",
    # the interval of median_s at 95% (bench.stats.headline_interval: order statistics of the process medians from
    # 6 processes on, Student's t on their logs with 2 to 5; empty with one process), and whether the processes
    # disagree beyond what the layer explains (bench.stats.machine_decided; the reason in note): the machine decided
    # the row, the gate does not judge it
    "median_low_s", "median_high_s", "machine_decided",
    # what defines the row, as a short digest (bench.suite.plan.Plan.fingerprint): the module's structure, its
    # parameters' and buffers' shapes and dtypes, every input's dtype and shape, the variant; the gate reports a row
    # whose definition changed under the same name as `changed`, never judged
    "definition",
]
# process: the worker process that took the sample, unique within a run (rounds pooled are renumbered), the unit
# of the gate's statistics
SAMPLE_COLUMNS = ["workload", "device", "dtype", "sample", "device_s", "host_s", "enqueue_s", "calls", "variant",
                  "process"]
# Columns read back as numbers: a value that is not one is a corrupt file, named with its row.
NUMERIC_COLUMNS = frozenset({
    "params", "flops", "bytes", "median_s", "iqr_s", "mean_s", "std_s", "min_s", "max_s", "n_samples",
    "calls_per_sample", "rel_iqr", "host_median_s", "host_iqr_s", "enqueue_median_s", "flops_per_s", "bytes_per_s",
    "threads", "warmup_calls", "first_call_s", "threshold", "max_rel_diff", "arithmetic_intensity",
    "sample", "device_s", "host_s", "enqueue_s", "calls",
    "n_processes", "rel_iqr_within", "rel_iqr_between", "instructions", "instructions_spread", "process",
    "compile_s", "graphs",
    "peak_memory_bytes", "planned_peak_bytes",
    "cpu_mhz", "sm_clock_mhz", "mem_clock_mhz", "power_w", "temperature_c", "throttled_share",
    "time_s", "share", "count", "median_low_s", "median_high_s",
})
BOOL_COLUMNS = frozenset({"noisy", "launch_bound", "tensor_cores", "tf32", "machine_decided"})
# kernels.csv (--profile): one row per kernel (CUDA) or operator (CPU) of one call of a row
KERNEL_COLUMNS = ["workload", "device", "dtype", "variant", "kernel", "calls", "time_s", "share"]
# What a reader needs at least (files of older versions lack the later columns; variant defaults to "default").
REQUIRED_RESULT_COLUMNS = ("workload", "device", "dtype", "status", "median_s")
REQUIRED_SAMPLE_COLUMNS = ("workload", "device", "dtype", "sample", "device_s")

# A row's status, one of STATUSES (results.csv "status"; a row that is not "ok" says why in "reason"):
OK = "ok"  # measured
ERROR = "error"  # the layer raised (a wrong shape, a failed check, a compile that made no graph)
OOM = "oom"  # out of memory while building or running the row (CUDA, CPU allocator, MemoryError)
TIMEOUT = "timeout"  # the row ran past its limit (Policy.row_limit_s): stopped in process, or its worker killed
UNSUPPORTED = "unsupported"  # the device has no kernel for the row's dtype (e.g. Half on some CPU operators)
SKIPPED = "skipped"  # not started: its planned memory does not fit the device's free memory
NOT_APPLICABLE = "not-applicable"  # a variant that cannot run on a device (TF32 on a CPU): a reason, not a failure
CRASHED = "crashed"  # the worker process measuring the row died (a signal, an exit) and took only that row down
STATUSES = (OK, ERROR, OOM, TIMEOUT, UNSUPPORTED, SKIPPED, NOT_APPLICABLE, CRASHED)
# Failed: a row asked for that has no measurement (skipped included: the run did not measure what it was asked
# to). The gate refuses a row failed in the candidate, a baseline has none, `run` exits 1 on one.
FAILED = frozenset(STATUSES) - {OK, NOT_APPLICABLE}
# The failures that happened while the row ran in a worker, so that the worker may be left in a bad state (a failed
# CUDA call can poison its context) and is replaced: all but skipped, which is decided before anything runs.
FAILED_RUNNING = FAILED - {SKIPPED}
# The failures that end the worker process itself: it is killed, never asked to close.
WORKER_LOST = frozenset({CRASHED, TIMEOUT})

# Launch-bound, one definition for results.csv, the roofline verdict and the gate: a CUDA row whose device
# time per call is under LAUNCH_BOUND_S, or whose host needed LAUNCH_BOUND_ENQUEUE of the device time just to
# issue the calls (the GPU waited on the host). Such a row times the launch path, not the kernel.
LAUNCH_BOUND_S = 10e-6
LAUNCH_BOUND_ENQUEUE = 0.8


def is_launch_bound(*, device: str, median_s: float, enqueue_median_s: float) -> bool:
    """The launch-bound rule above; only CUDA rows can be launch-bound."""
    return device == "cuda" and (median_s < LAUNCH_BOUND_S or enqueue_median_s >= LAUNCH_BOUND_ENQUEUE * median_s)


@dataclass(frozen=True, order=True)
class RowKey:
    """The identity of a row: the same workload, device, dtype and variant in two runs is the same row."""

    workload: str
    device: str
    dtype: str
    variant: str = DEFAULT_VARIANT

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> RowKey:
        """The key of a results or samples row (a dict or a pandas Series); a missing variant is the default."""
        variant = row.get("variant")
        return cls(str(row["workload"]), str(row["device"]), str(row["dtype"]),
                   DEFAULT_VARIANT if variant is None or variant != variant or variant == "" else str(variant))

    @classmethod
    def of_group(cls, values: tuple) -> RowKey:
        """The key of a pandas groupby over KEY_COLUMNS (its group's values in that order, made strings)."""
        return cls(*(str(v) for v in values))

    def names(self, scheduled: Any) -> bool:
        """Whether a row as the workers schedule it (bench.measure.pool.Row: workload, device, and a Variant
        object, its dtype left to the variant or the workload) is this row. Within one suite the workload and
        the variant decide the dtype, so the three names suffice."""
        return (scheduled.workload, scheduled.device, scheduled.variant.name) == (self.workload, self.device,
                                                                                 self.variant)

    @property
    def label(self) -> str:
        """"seed-conv11 / bfloat16 / cuda / bfloat16" (the default variant is left out)."""
        parts = (self.workload, "" if self.variant == DEFAULT_VARIANT else self.variant, self.device, self.dtype)
        return " / ".join(p for p in parts if p)

    @property
    def stem(self) -> str:
        """A file name for the row: "seed-conv11__cuda__float32__default" (other characters become _)."""
        return re.sub(r"[^A-Za-z0-9._+-]", "_", "__".join(self.astuple()))

    def astuple(self) -> tuple[str, str, str, str]:
        """The key's values in the order of KEY_COLUMNS."""
        return (self.workload, self.device, self.dtype, self.variant)

    def as_dict(self) -> dict[str, str]:
        """{column of KEY_COLUMNS: value}: the key as the columns of a results or samples row."""
        return dict(zip(KEY_COLUMNS, self.astuple()))
