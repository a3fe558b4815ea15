"""Rows measured in real worker processes: a layer that crashes, exits or hangs in native code takes only its row
down, the run is complete on disk, no worker outlives the run, and the CLI pools several processes per row."""
from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from torch import nn

import bench
from bench.api.running import run
from bench.measure.workers import process

ROOT = Path(__file__).resolve().parent.parent

BAD_CONFIG = """
import ctypes
import os
import sys

from torch import nn

import bench

SPIN = {spin!r}  # a shared library whose spin() loops forever in C


class Bad(nn.Module):
    \"\"\"A Linear whose forward misbehaves on a real tensor (the meta forward of planning stays healthy).\"\"\"

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 4)

    def forward(self, x):
        if not x.is_meta:
            self.misbehave()
        return self.lin(x)


class Segfault(Bad):
    def misbehave(self):
        ctypes.string_at(0)


class Exits(Bad):
    def misbehave(self):
        sys.exit(0)


class Quits(Bad):
    def misbehave(self):
        os._exit(3)


class Spins(Bad):
    def misbehave(self):
        ctypes.CDLL(SPIN).spin()


def healthy():
    return nn.Linear(8, 4)


WORKLOADS = [
    bench.Workload(name="segfault", module=Segfault, input_shape=(2, 8)),
    bench.Workload(name="exits", module=Exits, input_shape=(2, 8)),
    bench.Workload(name="quits", module=Quits, input_shape=(2, 8)),
    bench.Workload(name="spins", module=Spins, input_shape=(2, 8)),
    bench.Workload(name="healthy", module=healthy, input_shape=(2, 8)),
]
"""

GOOD_CONFIG = """
import functools

from torch import nn

import bench

WORKLOADS = [
    bench.Workload(name="lin", module=functools.partial(nn.Linear, 8, 4), input_shape=(2, 8)),
    bench.Workload(name="relu", module=nn.ReLU, input_shape=(4, 16)),
]
"""


def worker_children() -> dict[int, str]:
    """{pid: command line} of this process's live (not zombie) children that run bench.measure.workers.main."""
    me, found = os.getpid(), {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:  # gone meanwhile
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        if int(fields.get("PPid", "0")) == me and not fields.get("State", "").startswith("Z") \
                and "bench.measure.workers.main" in cmdline:
            found[int(entry.name)] = cmdline
    return found


def alive(pid: int) -> bool:
    try:
        state = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("State"))
    except (OSError, StopIteration):
        return False
    return "Z" not in state.split(":", 1)[1].split()[0]


@pytest.fixture
def spin_library(tmp_path) -> Path:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is needed to build a native busy loop")
    source = tmp_path / "spin.c"
    source.write_text("void spin(void) { for (;;) {} }\n")
    library = tmp_path / "libspin.so"
    subprocess.run([gcc, "-shared", "-fPIC", "-O0", "-o", str(library), str(source)], check=True, capture_output=True)
    return library


def test_crash_exit_and_native_hang_take_only_their_row(write_config, spin_library, tmp_path, monkeypatch):
    """A segfault, sys.exit, os._exit and a native C loop each fail their own row; the healthy row, the run folder
    and the cleanup are fine."""
    monkeypatch.setattr(process, "GRACE_S", 2.0)
    cfg = write_config(BAD_CONFIG.format(spin=str(spin_library)))
    seen: dict[int, str] = {}

    def progress(_):
        seen.update(worker_children())  # a worker is alive while rows are measured

    result = run(cfg, device="cpu", processes=1, budget_s=0.05, warmup_s=0.0, timeout_s=1.0, min_samples=3,
                 out=tmp_path / "out", on_progress=progress, seed=0)  # seed 0: the healthy row comes last

    rows = result.results.set_index("workload")
    assert rows.loc["segfault", "status"] == "crashed"
    # the config's frame, not ctypes'
    assert "SIGSEGV" in rows.loc["segfault", "reason"] and "cfg.py\", line" in rows.loc["segfault", "reason"]
    assert rows.loc["exits", "status"] == "error"
    assert "sys.exit" in rows.loc["exits", "reason"]
    assert rows.loc["quits", "status"] == "crashed"
    assert "exited with status 3" in rows.loc["quits", "reason"]
    assert rows.loc["spins", "status"] == "timeout"
    assert "killed" in rows.loc["spins", "reason"]
    assert rows.loc["healthy", "status"] == "ok"
    assert rows.loc["healthy", "n_samples"] >= 3 and rows.loc["healthy", "n_processes"] == 1

    # each failure got a fresh worker for what followed: 4 workers, 5 when the healthy row came last (it does with
    # seed 0: then the run ends on a live worker, which must be stopped too)
    order = result.results["workload"].tolist()  # rows in the order they were measured
    assert result.env["workers"]["started"] == 4 + (order[-1] == "healthy")

    loaded = bench.load(result.source)
    assert loaded.complete
    assert sorted(loaded.results["workload"]) == ["exits", "healthy", "quits", "segfault", "spins"]
    assert set(loaded.samples["workload"]) == {"healthy"}
    assert dict(zip(loaded.results["workload"], loaded.results["status"])) == dict(rows["status"])

    assert seen, "no worker process was seen while rows were measured"
    assert not [pid for pid in seen if alive(pid)], "a worker outlived the run"
    assert worker_children() == {}


def test_cli_run_pools_two_processes_per_row(write_config, tmp_path):
    """`bench run --processes 2` measures each row in two worker processes and records them in its files."""
    cfg = write_config(GOOD_CONFIG)
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "BENCH_PROCESSES"}
    proc = subprocess.run([sys.executable, "-m", "bench", "run", str(cfg), "--device", "cpu", "--processes", "2",
                           "--out", str(out), "--budget-s", "0.05", "--warmup-s", "0", "--min-samples", "3"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    results = pd.read_csv(run_dir / "results.csv")
    assert sorted(results["workload"]) == ["lin", "relu"]
    assert (results["status"] == "ok").all()
    assert results["n_processes"].tolist() == [2, 2]
    samples = pd.read_csv(run_dir / "samples.csv")
    assert "process" in samples.columns
    assert set(samples["process"]) == {0, 1}
    for _, g in samples.groupby("workload"):
        assert set(g["process"]) == {0, 1}
    env_json = json.loads((run_dir / "env.json").read_text())
    assert "workers" in env_json and env_json["workers"]["started"] == 2
    assert isinstance(env_json["seed"], int)


def _holding(lock, n):
    return nn.Linear(n, n)


def test_workloads_in_code_that_do_not_pickle_need_processes_0(tmp_path):
    """Factories pickle by value (cloudpickle: lambdas too); one that cannot (it holds a lock) is refused before
    anything is written: BenchError naming the workload and processes=0."""
    import threading

    workloads = [bench.Workload(name="lambda-lin", module=lambda: nn.Linear(8, 4), input_shape=(2, 8)),
                 bench.Workload(name="locked", module=functools.partial(_holding, threading.Lock(), 8),
                                input_shape=(2, 8))]
    with pytest.raises(bench.BenchError) as err:
        run(workloads, device="cpu", processes=1, budget_s=0.05, warmup_s=0.0, min_samples=3, out=tmp_path / "out")
    message = str(err.value)
    assert "locked" in message and "processes=0" in message and "lambda-lin" not in message
    assert "\n" not in message.strip()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())  # refused before writing


@pytest.mark.parametrize("gone_before_init", [False, True])
def test_a_worker_that_fails_to_start_says_why(tmp_path, monkeypatch, gone_before_init):
    """An interpreter that exits 1 with a traceback while starting (a library that will not load under valgrind, a
    broken environment): one-line BenchError with the exit status and the traceback's last line, also when it
    is gone before the init message could be sent (a broken pipe: CI's slower machine saw that one)."""
    from multiprocessing.connection import Connection

    from bench.measure.sampling import Policy
    from bench.measure.workers.process import Worker
    from bench.measure.workers.protocol import Job, Side

    if gone_before_init:
        def send(self, obj):
            raise BrokenPipeError(32, "Broken pipe")

        monkeypatch.setattr(Connection, "send", send)

    python = tmp_path / "python"
    python.write_text("#!/bin/sh\necho 'Traceback (most recent call last):' >&2\n"
                      "echo '  File \"<string>\", line 1, in <module>' >&2\n"
                      "echo 'OSError: libbenchcg.so: cannot open shared object file' >&2\nexit 1\n")
    python.chmod(0o755)
    job = Job(policy=Policy(), cuda_policy=Policy(), threads=1, devices=("cpu",))
    with pytest.raises(bench.BenchError) as err:
        Worker(Side(python=str(python)), job, 0)
    assert not isinstance(err.value, bench.errors.WorkerLost)  # an interpreter that exits: a user error (exit 2)
    message = str(err.value)
    assert "\n" not in message and "exited with status 1 while starting" in message
    assert "(OSError: libbenchcg.so: cannot open shared object file)" in message


KILLED_CONFIG = """
import os
import signal
import sys

from torch import nn

import bench

if "bench.measure.workers.main" in sys.modules:  # in a worker only: the parent imports this config too
    os.kill(os.getpid(), signal.SIGKILL)

WORKLOADS = [bench.Workload(name="relu", module=nn.ReLU, input_shape=(2, 8))]
"""


def test_a_worker_killed_while_starting_is_not_a_user_error(write_config, tmp_path):
    """A worker killed by a signal while starting (here its config kills it, as the OOM killer would): exit 3 with
    one line saying so, not 2 (a user error), and the run folder is kept, marked incomplete with the reason."""
    cfg = write_config(KILLED_CONFIG)
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "BENCH_PROCESSES"}
    proc = subprocess.run([sys.executable, "-m", "bench", "run", str(cfg), "--device", "cpu", "--processes", "1",
                           "--out", str(out), "--budget-s", "0.05", "--warmup-s", "0", "--store", "none"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 3, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("worker process lost:") and "SIGKILL" in last and "while starting" in last
    assert "Traceback" not in proc.stderr
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    env_json = json.loads((run_dir / "env.json").read_text())
    assert env_json["complete"] is False and "SIGKILL" in env_json["incomplete_reason"]
