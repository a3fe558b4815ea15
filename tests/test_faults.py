"""Issue 5: faults and bad input. A failing row never costs the rest, and nothing measured is lost."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

from bench import Workload
from bench.cli.main import main
from bench.measure.runner import run_one, run_suite
from bench.measure.sampling import Policy
from bench.store.writer import new_run_dir
from bench.suite.plan import plan_one

REPO = Path(__file__).resolve().parents[1]
FAST = Policy(warmup_s=0.0, min_block_s=1e-4, min_samples=3, floor_samples=2, budget_s=0.005)


class RaisesOnRealDevice(nn.Module):
    """Plans fine on the meta device, fails when it really runs (as a bad kernel or a driver error would)."""

    def __init__(self, exc: Exception) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 4)
        self.exc = exc

    def forward(self, x):
        if x.device.type != "meta":
            raise self.exc
        return self.linear(x)


def _plan(name, module, shape=(2, 4)):
    return plan_one(Workload(name=name, module=module, input_shape=shape), "test")


@pytest.mark.parametrize("exc, status", [
    (RuntimeError("boom in forward"), "error"),
    (torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"), "oom"),
    (RuntimeError('"addmm_impl_cpu_" not implemented for \'Half\''), "unsupported"),
])
def test_a_failing_forward_becomes_a_row_with_status_and_one_line_reason(exc, status):
    record = run_one(_plan("bad", lambda: RaisesOnRealDevice(exc)), "cpu",
                     timer=__import__("bench.measure.clock", fromlist=["CpuTimer"]).CpuTimer(), policy=FAST)
    assert record.status == status
    assert "\n" not in record.reason and str(exc).splitlines()[0][:40] in record.reason
    assert record.measurement is None


def test_timeout_from_the_first_call_estimate():
    from bench.measure.clock import Block

    class SlowTimer:
        device = "cpu"

        def __init__(self):
            self.calls = 0

        def now(self):
            return 0.0

        def time_block(self, fn, calls):
            self.calls += calls
            return Block(calls=calls, device_s=50.0 * calls, host_s=50.0 * calls, enqueue_s=50.0 * calls)

    timer = SlowTimer()
    record = run_one(_plan("slow", lambda: nn.Linear(4, 4)), "cpu", timer=timer,
                     policy=Policy(timeout_s=60.0))
    assert record.status == "timeout"
    assert "first call took 50 s" in record.reason and "timeout 60 s" in record.reason
    assert timer.calls == 1  # nothing committed beyond the first call


def test_a_workload_that_cannot_fit_in_memory_is_refused_with_the_estimate():
    huge = Workload(name="huge", module=lambda: nn.Linear(65536, 65536), input_shape=(1 << 20, 65536))
    record = run_one(plan_one(huge, "test"), "cpu", timer=None, policy=FAST)  # timer never used
    assert record.status == "skipped"
    assert "GiB" in record.reason and "free" in record.reason


def test_200_workload_suite_with_failures_in_the_middle_measures_all_others():
    failing = {57, 58, 120, 199}
    plans = [
        _plan(f"w{i:03d}", (lambda: RaisesOnRealDevice(RuntimeError("injected"))) if i in failing
              else (lambda: nn.Linear(4, 4)))
        for i in range(200)
    ]
    seen = []
    records = run_suite(plans, ["cpu"], policy=FAST, on_record=seen.append)
    assert len(records) == len(seen) == 200
    statuses = {r.plan.name: r.status for r in records}
    assert {n for n, s in statuses.items() if s != "ok"} == {f"w{i:03d}" for i in failing}
    assert all(r.measurement.device_s for r in records if r.status == "ok")


def test_two_concurrent_runs_never_share_a_folder(tmp_path):
    made, barrier = [], threading.Barrier(8)

    def make():
        barrier.wait()
        made.append(new_run_dir(tmp_path, label="same"))

    threads = [threading.Thread(target=make) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(made)) == 8 and all(p.is_dir() for p in made)


def test_run_exit_status_1_when_some_rows_failed(tmp_path, capsys):
    cfg = tmp_path / "mixed.py"
    cfg.write_text(textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})
        from torch import nn
        from bench import Workload
        from test_faults import RaisesOnRealDevice
        WORKLOADS = [
            Workload(name="good", module=lambda: nn.Linear(4, 4), input_shape=(2, 4)),
            Workload(name="bad", module=lambda: RaisesOnRealDevice(RuntimeError("kaput")), input_shape=(2, 4)),
            Workload(name="good2", module=lambda: nn.Linear(4, 2), input_shape=(2, 4)),
        ]
    """))
    code = main(["run", str(cfg), "--device", "cpu", "--out", str(tmp_path / "runs"), "--budget-s", "0.01",
                 "--warmup-s", "0", "--min-samples", "3"])
    assert code == 1
    (run_dir,) = (tmp_path / "runs").iterdir()
    frame = pd.read_csv(run_dir / "results.csv")
    assert dict(zip(frame["workload"], frame["status"])) == {"good": "ok", "bad": "error", "good2": "ok"}
    assert "kaput" in frame.set_index("workload").loc["bad", "reason"]
    assert json.loads((run_dir / "env.json").read_text())["complete"] is True
    assert "Traceback" not in capsys.readouterr().err


SLOW_CONFIG = """
from torch import nn
from bench import Workload
WORKLOADS = [Workload(name=f"row{i}", module=lambda: nn.Linear(64, 64), input_shape=(8, 64)) for i in range(40)]
"""


def _start_run(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    cfg = tmp_path / "slow.py"
    cfg.write_text(SLOW_CONFIG)
    out = tmp_path / "runs"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", "run", str(cfg), "--device", "cpu", "--out", str(out), "--budget-s", "0.3",
         "--warmup-s", "0", "--min-samples", "200", "--threads", "1"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until at least two rows are on disk
        runs = list(out.glob("*/results.csv")) if out.exists() else []
        if runs and len(pd.read_csv(runs[0])) >= 2:
            return proc, runs[0].parent
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("the run never saved a row")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_keeps_every_finished_row_in_valid_files(tmp_path, sig):
    proc, run_dir = _start_run(tmp_path)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    env = json.loads((run_dir / "env.json").read_text())
    assert env["complete"] is False and env["incomplete_reason"] == "interrupted"
    frame = pd.read_csv(run_dir / "results.csv")
    samples = pd.read_csv(run_dir / "samples.csv")
    assert 2 <= len(frame) < 40 and (frame["status"] == "ok").all()
    assert set(samples["workload"]) == set(frame["workload"])
    assert not list(run_dir.glob(".*.tmp"))  # no half-written temporary files left behind


def test_second_ctrl_c_exits_at_once(tmp_path):
    proc, run_dir = _start_run(tmp_path)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode in (130, -signal.SIGINT)
    pd.read_csv(run_dir / "results.csv")  # whatever was written is a whole file


class HangsAfterTwoCalls(nn.Module):
    """Fast at first (so the first-call estimate passes), then stuck, as a deadlocked layer would be."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 4)
        self.calls = 0

    def forward(self, x):
        if x.device.type != "meta":
            self.calls += 1
            if self.calls > 2:
                time.sleep(60)
        return self.linear(x)


def test_a_row_that_hangs_is_stopped_at_its_deadline_and_the_suite_goes_on():
    from bench.measure.clock import CpuTimer

    policy = Policy(warmup_s=0.0, min_block_s=1e-4, min_samples=3, floor_samples=2, budget_s=0.05, timeout_s=0.5)
    plans = [_plan("hangs", HangsAfterTwoCalls), _plan("fine", lambda: nn.Linear(4, 4))]
    records = run_suite(plans, ["cpu"], policy=policy, timer_for=lambda d: CpuTimer())
    assert [r.status for r in records] == ["timeout", "ok"]  # the deadline's message below, not a finished sleep
    assert "still running after 0.6 s" in records[0].reason


def test_deadline_is_restored_after_the_block():
    from bench.measure.deadline import deadline

    before = signal.getsignal(signal.SIGALRM)
    with deadline(5.0):
        pass
    assert signal.getsignal(signal.SIGALRM) is before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
