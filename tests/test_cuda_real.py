"""On a real CUDA device (skipped elsewhere): the CUDA path end to end, with sanity bounds, not speed claims."""
from __future__ import annotations

import contextlib
import io

import pytest
import torch

from bench.measure.clock import CudaTimer
from bench.measure.runner import run_one
from bench.measure.sampling import Policy
from bench.store.frames import to_frame
from bench.suite.config import load_config
from bench.suite.plan import plan_one

pytestmark = pytest.mark.cuda

POLICY = Policy(warmup_s=0.3, min_block_s=0.01, min_samples=5, floor_samples=3, max_samples=50, budget_s=0.5)


def plan(config: str, name: str):
    [d] = [d for d in load_config(config) if d.workload.name == name]
    return plan_one(d.workload, d.source)


@pytest.mark.parametrize("name", [d.workload.name for d in load_config("smoke").declared])
def test_smoke_workload_runs_on_cuda(name):
    record = run_one(plan("smoke", name), "cuda", timer=CudaTimer(), policy=POLICY)
    assert record.status == "ok", record.reason
    m = record.measurement
    assert len(m.device_s) >= POLICY.floor_samples
    assert all(s > 0 for s in m.device_s) and all(s > 0 for s in m.host_s)
    assert record.device_name == torch.cuda.get_device_name(0)


def test_seed_conv_device_time_is_close_to_host_time():
    record = run_one(plan("seed", "seed-conv11"), "cuda", timer=CudaTimer(), policy=POLICY)
    assert record.status == "ok", record.reason
    [row] = to_frame([record]).to_dict("records")
    # 26 GFLOP per call keeps the GPU busy: the host waits about as long as the GPU works.
    ratio = row["median_s"] / row["host_median_s"]
    assert 0.7 < ratio <= 1.05, row
    assert row["launch_bound"] is False
    assert 1e-5 < row["median_s"] < 1.0  # between 26 PFLOP/s and 26 GFLOP/s: a sane range for any GPU


def test_tiny_linear_is_flagged_launch_bound():
    record = run_one(plan("smoke", "smoke-linear"), "cuda", timer=CudaTimer(), policy=POLICY)
    assert to_frame([record])["launch_bound"].tolist() == [True]


def test_cli_run_on_all_devices_draws_the_speedup(tmp_path, repo_root):
    from bench.cli.main import main

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
        status = main(["run", "smoke", "--device", "all", "--out", str(tmp_path), "--budget-s", "0.05",
                       "--warmup-s", "0.05", "--min-samples", "3"])
    assert status == 0, err.getvalue()
    [run_dir] = list(tmp_path.iterdir())
    assert (run_dir / "speedup.png").read_bytes().startswith(b"\x89PNG")


def test_a_cuda_row_records_clocks_when_nvml_is_there():
    pytest.importorskip("pynvml")
    record = run_one(plan("smoke", "smoke-conv"), "cuda", timer=CudaTimer(), policy=POLICY)
    state = record.hardware
    assert state is not None and state.samples >= 2
    assert 100 < state.sm_clock_mhz < 5000 and state.power_w > 0 and 0 < state.temperature_c < 120


@pytest.mark.parametrize("dtype, tf32, tensor_cores", [("bfloat16", False, True), ("float32", False, None),
                                                       ("float32", True, True)])
def test_the_kernels_of_a_cuda_matmul_say_what_ran(dtype, tf32, tensor_cores):
    from bench.measure.kernels import profile_calls

    a = torch.randn(2048, 2048, device="cuda", dtype=getattr(torch, dtype))
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    try:
        torch.mm(a, a)
        profile = profile_calls(lambda: torch.mm(a, a), "cuda")
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous
    assert profile.kernels and profile.kernels[0].share > 0.5 and "traceEvents" in profile.trace
    if tensor_cores is not None:
        assert profile.tensor_cores is tensor_cores, profile.top()
    if dtype == "float32":
        assert profile.tf32 is tf32, profile.top()
