"""Issue 10, "memory refusal that misses": the planned peak, the refusal before allocating, the CPU's free
memory under cgroups and RLIMIT_AS, and CPU allocation failures classed "oom".

Nothing large is ever allocated: plans run on the meta device, `free_bytes` and `build` are monkeypatched, and
the fake /proc and /sys trees live under tmp_path.
"""
from __future__ import annotations

import resource
from pathlib import Path

import pytest
from test_faults import RaisesOnRealDevice
from torch import nn

from bench import Workload
from bench.measure import memory, runner
from bench.measure.apply import peak_memory
from bench.measure.clock import CpuTimer
from bench.measure.memory import free_bytes
from bench.measure.runner import run_one
from bench.measure.sampling import Policy
from bench.suite.plan import plan_one
from bench.suite.variants import DEFAULT, Variant

FAST = Policy(warmup_s=0.0, min_block_s=1e-4, min_samples=3, floor_samples=2, budget_s=0.005)
GiB = 1 << 30


def _plan(module, shape, dtype="float32"):
    return plan_one(Workload(name="w", module=module, input_shape=shape, dtype=dtype), "test")


def flatten_12gb():
    """Flatten on a [3, 1024, 1024, 1024] float32 input: 12 GiB in, a view out."""
    return _plan(lambda: nn.Flatten(), (3, 1024, 1024, 1024))


def wide_intermediate():
    """Sequential(Linear(4, 200000), Linear(200000, 1)) on 20000 rows: small in and out, a 16 GB intermediate."""
    return _plan(lambda: nn.Sequential(nn.Linear(4, 200_000), nn.Linear(200_000, 1)), (20_000, 4))


# ---------------------------------------------------------------- probe 1: Plan.peak_bytes
def test_a_view_moves_nothing_but_still_needs_its_input_at_peak():
    p = flatten_12gb()
    assert p.is_view and p.bytes_moved == 0  # traffic, unchanged
    assert p.input_bytes == 12 * GiB
    assert p.peak_bytes == p.input_bytes + p.param_bytes == 12 * GiB


def test_a_wide_intermediate_counts_in_the_peak_not_in_the_traffic():
    p = wide_intermediate()
    intermediate = 20_000 * 200_000 * 4
    assert p.bytes_moved < 10_000_000  # input, weights and output: about 5 MB
    assert p.peak_bytes == p.input_bytes + p.param_bytes + intermediate + p.output_bytes
    assert p.peak_bytes > 16e9


def test_peak_counts_each_memory_once():
    # Linear on a 3-d input returns a view of its 2-d product; ReLU(inplace=True) returns that same tensor;
    # Flatten returns a view of it; the Sequential returns the Flatten's output. One intermediate in all.
    p = _plan(lambda: nn.Sequential(nn.Linear(4, 6), nn.ReLU(inplace=True), nn.Flatten(0)), (2, 5, 4))
    assert p.intermediate_bytes == 2 * 5 * 6 * 4
    assert p.peak_bytes == 2 * 5 * 4 * 4 + (4 * 6 + 6) * 4 + 2 * 5 * 6 * 4
    inplace = _plan(lambda: nn.ReLU(inplace=True), (2, 4))
    assert inplace.intermediate_bytes == 0 and inplace.peak_bytes == inplace.input_bytes


def test_peak_of_a_variant_backward_doubles_and_dtype_takes_the_larger():
    p = wide_intermediate()
    assert peak_memory(p, DEFAULT) == p.peak_bytes
    assert peak_memory(p, Variant(backward=True)) == 2 * p.peak_bytes
    # A narrower variant dtype: the layer is built in float32 first, so the float32 peak still rules.
    assert peak_memory(p, Variant(dtype="bfloat16")) == p.peak_bytes
    # A wider one: the float32 replan rules.
    half = _plan(lambda: nn.Linear(8, 16), (4, 8), dtype="bfloat16")
    assert peak_memory(half, Variant(dtype="float32")) == 2 * half.peak_bytes


# ---------------------------------------------------------------- probe 2: refused before anything is allocated
@pytest.fixture
def never_built(monkeypatch):
    def build(plan, device):
        pytest.fail(f"{plan.name} was built on {device}: the refusal missed")

    monkeypatch.setattr(runner, "build_inputs", build)


@pytest.mark.parametrize("make", [flatten_12gb, wide_intermediate], ids=["flatten-12GiB", "linear-16GB-intermediate"])
def test_a_row_whose_peak_does_not_fit_is_skipped_before_allocating(make, monkeypatch, never_built):
    monkeypatch.setattr(runner, "free_bytes", lambda device: 20 * GiB)
    plan = make()
    record = run_one(plan, "cpu", timer=CpuTimer(), policy=FAST)
    assert record.status == "skipped"
    needed = 3 * plan.peak_bytes / GiB
    assert f"needs about {needed:.2f} GiB" in record.reason
    assert "cpu has 20.00 GiB free" in record.reason
    assert "\n" not in record.reason and record.measurement is None


def test_the_refusal_compares_memory_factor_times_peak_with_free(monkeypatch):
    built = []

    def build(plan, device):
        built.append(device)
        raise RuntimeError("stop here: built")

    monkeypatch.setattr(runner, "build_inputs", build)
    plan = wide_intermediate()
    needed = int(plan.peak_bytes * 2.0)
    monkeypatch.setattr(runner, "free_bytes", lambda device: needed - 1)
    assert run_one(plan, "cpu", timer=CpuTimer(), policy=FAST, memory_factor=2.0).status == "skipped"
    assert built == []
    monkeypatch.setattr(runner, "free_bytes", lambda device: needed)
    record = run_one(plan, "cpu", timer=CpuTimer(), policy=FAST, memory_factor=2.0)
    assert built == ["cpu"] and record.status == "error" and "stop here" in record.reason


def test_a_backward_variant_is_refused_at_twice_the_forward_peak(monkeypatch, never_built):
    plan = wide_intermediate()
    monkeypatch.setattr(runner, "free_bytes", lambda device: 3 * plan.peak_bytes + 1)  # the forward alone fits
    record = run_one(plan, "cpu", timer=CpuTimer(), policy=FAST, variant=Variant(backward=True))
    assert record.status == "skipped"
    assert f"{2 * plan.peak_bytes / GiB:.2f} GiB with backward" in record.reason


# ---------------------------------------------------------------- probe 3: free_bytes on the CPU
@pytest.fixture
def no_rlimit(monkeypatch):
    monkeypatch.setattr(resource, "getrlimit", lambda which: (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def fake_tree(root: Path, *, available_kb: int | None = 8 * 1024 * 1024, cgroup: str = "0::/\n",
              files: dict[str, str] | None = None) -> Path:
    """A fake / with /proc/meminfo, /proc/self/cgroup and the given files (paths relative to root)."""
    (root / "proc/self").mkdir(parents=True)
    (root / "sys/fs/cgroup").mkdir(parents=True)
    if available_kb is not None:
        (root / "proc/meminfo").write_text(f"MemTotal:       {4 * available_kb} kB\n"
                                           f"MemFree:        {available_kb // 2} kB\n"
                                           f"MemAvailable:   {available_kb} kB\n")
    (root / "proc/self/cgroup").write_text(cgroup)
    for rel, text in (files or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_free_bytes_mem_available_alone(tmp_path, no_rlimit):
    assert free_bytes("cpu", root=fake_tree(tmp_path)) == 8 * GiB


def test_free_bytes_cgroup_v2_limit_minus_current(tmp_path, no_rlimit):
    root = fake_tree(tmp_path, files={"sys/fs/cgroup/memory.max": f"{3 * GiB}\n",
                                      "sys/fs/cgroup/memory.current": f"{1 * GiB}\n"})
    assert free_bytes("cpu", root=root) == 2 * GiB


def test_free_bytes_cgroup_v2_max_means_no_limit(tmp_path, no_rlimit):
    root = fake_tree(tmp_path, files={"sys/fs/cgroup/memory.max": "max\n",
                                      "sys/fs/cgroup/memory.current": f"{1 * GiB}\n"})
    assert free_bytes("cpu", root=root) == 8 * GiB


def test_free_bytes_cgroup_v2_limit_of_the_process_cgroup_and_its_ancestors(tmp_path, no_rlimit):
    root = fake_tree(tmp_path, cgroup="0::/user.slice/job.scope\n", files={
        "sys/fs/cgroup/user.slice/memory.max": f"{6 * GiB}\n",
        "sys/fs/cgroup/user.slice/memory.current": f"{1 * GiB}\n",
        "sys/fs/cgroup/user.slice/job.scope/memory.max": f"{7 * GiB}\n",
        "sys/fs/cgroup/user.slice/job.scope/memory.current": f"{4 * GiB}\n",
    })
    assert free_bytes("cpu", root=root) == 3 * GiB


def test_free_bytes_cgroup_v1_limit_minus_usage(tmp_path, no_rlimit):
    root = fake_tree(tmp_path, cgroup="4:memory:/process_api/abc\n0::/\n", files={
        "sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",  # the root: no limit
        "sys/fs/cgroup/memory/memory.usage_in_bytes": f"{5 * GiB}\n",
        "sys/fs/cgroup/memory/process_api/abc/memory.limit_in_bytes": f"{4 * GiB}\n",
        "sys/fs/cgroup/memory/process_api/abc/memory.usage_in_bytes": f"{3 * GiB // 2}\n",
    })
    assert free_bytes("cpu", root=root) == 5 * GiB // 2


def test_free_bytes_cgroup_v1_huge_limit_means_no_limit(tmp_path, no_rlimit):
    root = fake_tree(tmp_path, files={"sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
                                      "sys/fs/cgroup/memory/memory.usage_in_bytes": f"{1 * GiB}\n"})
    assert free_bytes("cpu", root=root) == 8 * GiB


def test_free_bytes_address_space_limit_minus_virtual_size(tmp_path, monkeypatch):
    monkeypatch.setattr(resource, "getrlimit", lambda which: (5 * GiB, resource.RLIM_INFINITY)
                        if which == resource.RLIMIT_AS else (resource.RLIM_INFINITY,) * 2)
    page = resource.getpagesize()
    root = fake_tree(tmp_path, files={"proc/self/statm": f"{GiB // page} 1000 500 10 0 2000 0\n"})
    assert free_bytes("cpu", root=root) == 4 * GiB
    monkeypatch.setattr(resource, "getrlimit", lambda which: (resource.RLIM_INFINITY,) * 2)
    assert free_bytes("cpu", root=root) == 8 * GiB


def test_free_bytes_is_the_minimum_of_every_bound(tmp_path, monkeypatch):
    page = resource.getpagesize()
    files = {"sys/fs/cgroup/memory.max": f"{10 * GiB}\n", "sys/fs/cgroup/memory.current": f"{4 * GiB}\n",  # 6
             "sys/fs/cgroup/memory/memory.limit_in_bytes": f"{7 * GiB}\n",
             "sys/fs/cgroup/memory/memory.usage_in_bytes": f"{2 * GiB}\n",  # 5
             "proc/self/statm": f"{2 * GiB // page} 1 1 1 0 1 0\n"}  # RLIMIT_AS 6 GiB - 2 GiB = 4
    root = fake_tree(tmp_path, available_kb=9 * 1024 * 1024, cgroup="4:memory:/\n0::/\n", files=files)
    limit = {"as": 6 * GiB}
    monkeypatch.setattr(resource, "getrlimit", lambda which: (limit["as"], resource.RLIM_INFINITY)
                        if which == resource.RLIMIT_AS else (resource.RLIM_INFINITY,) * 2)
    assert free_bytes("cpu", root=root) == 4 * GiB  # the address space
    limit["as"] = resource.RLIM_INFINITY
    assert free_bytes("cpu", root=root) == 5 * GiB  # cgroup v1
    (root / "sys/fs/cgroup/memory/memory.usage_in_bytes").write_text(f"{1 * GiB}\n")
    assert free_bytes("cpu", root=root) == 6 * GiB  # cgroup v2
    (root / "sys/fs/cgroup/memory.max").write_text("max\n")
    assert free_bytes("cpu", root=root) == 6 * GiB  # cgroup v1 again: 7 - 1
    (root / "sys/fs/cgroup/memory/memory.limit_in_bytes").write_text("9223372036854771712\n")
    assert free_bytes("cpu", root=root) == 9 * GiB  # MemAvailable


def test_free_bytes_never_below_zero_and_falls_back_without_meminfo(tmp_path, no_rlimit, monkeypatch):
    over = fake_tree(tmp_path / "over", files={"sys/fs/cgroup/memory.max": f"{1 * GiB}\n",
                                               "sys/fs/cgroup/memory.current": f"{2 * GiB}\n"})
    assert free_bytes("cpu", root=over) == 0
    sysconf = {"SC_AVPHYS_PAGES": 1000, "SC_PAGE_SIZE": 4096}
    monkeypatch.setattr(memory.os, "sysconf", lambda name: sysconf[name])
    assert free_bytes("cpu", root=fake_tree(tmp_path / "bare", available_kb=None)) == 1000 * 4096


# ---------------------------------------------------------------- probe 4: CPU allocation failures are "oom"
@pytest.mark.parametrize("exc", [
    RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 17179869184 bytes. "
                 "Error code 12 (Cannot allocate memory)"),
    MemoryError(),
    MemoryError("Unable to allocate 16.0 GiB for an array"),
], ids=["cpu-allocator", "memoryerror-bare", "memoryerror-message"])
def test_a_cpu_allocation_failure_is_oom(exc):
    record = run_one(_plan(lambda: RaisesOnRealDevice(exc), (2, 4)), "cpu", timer=CpuTimer(), policy=FAST)
    assert record.status == "oom"
    assert "\n" not in record.reason and type(exc).__name__ in record.reason
    assert record.measurement is None


def test_other_runtime_errors_stay_errors():
    record = run_one(_plan(lambda: RaisesOnRealDevice(RuntimeError("shape mismatch in allocate_buffers")), (2, 4)),
                     "cpu", timer=CpuTimer(), policy=FAST)
    assert record.status == "error"


# ---------------------------------------------------------------- the memory a row really held
def _status(root: Path, rss_kib: int, hwm_kib: int) -> None:
    (root / "proc/self").mkdir(parents=True, exist_ok=True)
    (root / "proc/self/status").write_text(f"Name:\tpython\nVmHWM:\t{hwm_kib} kB\nVmRSS:\t{rss_kib} kB\n")


def test_cpu_peak_is_the_high_water_mark_after_the_reset_less_the_resident_size_before(tmp_path):
    _status(tmp_path, rss_kib=1000, hwm_kib=5000)
    tracker = memory.PeakTracker("cpu", root=tmp_path)
    tracker.restart()
    assert (tmp_path / "proc/self/clear_refs").read_text() == "5"  # the kernel resets VmHWM to VmRSS on "5"
    _status(tmp_path, rss_kib=1200, hwm_kib=3000)
    assert tracker.peak_bytes() == (3000 - 1000) * 1024


def test_cpu_peak_is_none_where_proc_cannot_be_read_or_the_mark_reset(tmp_path):
    assert memory.PeakTracker("cpu", root=tmp_path / "none").peak_bytes() is None
    _status(tmp_path, rss_kib=1000, hwm_kib=5000)
    (tmp_path / "proc/self/clear_refs").mkdir()  # cannot be written
    tracker = memory.PeakTracker("cpu", root=tmp_path)
    tracker.restart()
    assert tracker.peak_bytes() is None  # the old mark (5000 kB) would be a wrong figure


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's /proc/self/clear_refs")
def test_a_real_row_reports_its_peak_beside_the_planned_one():
    """Linear(2048, 2048) on [2048, 2048]: input, weights and output 16 MiB each. The measured growth holds at
    least the input and output (the weights too, once written), and stays within a few times the plan."""
    plan = plan_one(Workload(name="big", module=lambda: nn.Linear(2048, 2048), input_shape=(2048, 2048)), "t")
    record = run_one(plan, "cpu", timer=CpuTimer(), policy=Policy(warmup_s=0.0, min_samples=3, floor_samples=3,
                                                                  max_samples=3, budget_s=0.05))
    assert record.status == "ok"
    assert record.planned_peak_bytes == peak_memory(plan, DEFAULT)
    assert plan.input_bytes + plan.output_bytes <= record.peak_memory_bytes < 4 * record.planned_peak_bytes
