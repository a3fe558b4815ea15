"""A suite over a fleet (issue 22): `run --shards N --executor local|slurm` through submitit, merged into one run
and recorded in the store. The local executor runs the real path (one submitit job per shard, one after
another); SLURM itself is exercised by tests/perf/fleet_eval.py where a cluster can be started."""
from __future__ import annotations

import shutil

import pandas as pd
import pytest

import bench
from bench.api.fleet import ShardState, parse_slurm_args
from bench.cli.main import main
from bench.schema import KEY_COLUMNS
from bench.store.folder import run_dirs_in
from bench.store.history import open_store, resolve

pytest.importorskip("submitit", reason="no submitit (pip install -e '.[fleet]')")

FAST = ["--device", "cpu", "--budget-s", "0.05", "--warmup-s", "0", "--min-samples", "3"]
# Imported in each shard's process: the first shard to import it under submitit fails (the marker file says so).
FAILING_ONCE = """
import functools, os, pathlib
from torch import nn
from bench import Workload

marker = pathlib.Path(__file__).with_name("fail-once")
if os.environ.get("SUBMITIT_EXECUTOR") and marker.exists():
    marker.unlink()
    raise RuntimeError("this shard's node lost its disk")

WORKLOADS = [
    Workload(name="flat", module=nn.Flatten, input_shape=(4, 8)),
    Workload(name="lin", module=functools.partial(nn.Linear, 16, 16), input_shape=(8, 16)),
]
"""


def test_the_contract_smoke_in_two_local_shards_is_one_merged_run_that_report_reads(tmp_path, capsys):
    out, store = tmp_path / "out", tmp_path / "h.sqlite"
    status = main(["run", "smoke", *FAST, "--processes", "1", "--shards", "2", "--executor", "local",
                   "--out", str(out), "--store", str(store)])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    (merged,) = run_dirs_in(out)  # the job folder beside it is not a run folder
    results = pd.read_csv(merged / "results.csv")
    listed = bench.check("smoke")
    assert sorted(results["workload"]) == sorted(p.name for p in listed)
    assert not results.duplicated(list(KEY_COLUMNS)).any()
    run = bench.load(merged)
    assert run.complete and [m["shard"] for m in run.env["merged_from"]] == ["1/2", "2/2"]
    assert "shard 1/2 (job" in captured.out and ": FINISHED" in captured.out
    stored = open_store(resolve(store), create=False).read()
    assert stored["run_id"].nunique() == 1 and len(stored) == len(results)
    assert main(["report", str(out)]) == 0


def test_a_failed_shard_is_reported_with_its_state_and_the_merge_refuses_or_allows_missing(tmp_path, write_config,
                                                                                       capsys, one_line):
    cfg = write_config(FAILING_ONCE)
    (tmp_path / "fail-once").touch()
    args = ["run", str(cfg), *FAST, "--processes", "0", "--shards", "2", "--executor", "local", "--store", "none"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 2
    one_line(capsys.readouterr().err.strip().splitlines()[-1], "shard 1/2", "FAILED", "--allow-missing",
             "lost its disk")
    assert not any(p.is_dir() and p.name[0].isdigit() for p in (tmp_path / "a").iterdir())  # nothing merged
    (tmp_path / "fail-once").touch()
    assert main([*args, "--out", str(tmp_path / "b"), "--allow-missing"]) == 1
    captured = capsys.readouterr()
    assert "shards 1 missing: marked incomplete" in captured.out
    (merged,) = run_dirs_in(tmp_path / "b")
    run = bench.load(merged)
    assert not run.complete and "1/2" in run.env["incomplete_reason"] and len(run.results) == 1


def test_slurm_without_sbatch_and_bad_options_are_one_line(tmp_path, capsys, one_line, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert main(["run", "smoke", "--device", "cpu", "--shards", "2", "--executor", "slurm", "--out",
                 str(tmp_path)]) == 2
    one_line(capsys.readouterr().err, "--executor slurm", "sbatch", "--executor local")
    assert main(["run", "smoke", "--shards", "2", "--shard", "1/2", "--out", str(tmp_path)]) == 2
    one_line(capsys.readouterr().err, "--shards", "--shard K/N")
    assert main(["run", "smoke", "--shards", "2", "--no-wait", "--out", str(tmp_path)]) == 2
    one_line(capsys.readouterr().err, "--no-wait", "--executor slurm")
    assert main(["run", "smoke", "--shards", "2", "--executor", "slurm", "--slurm-arg", "gpu", "--out",
                 str(tmp_path)]) == 2
    one_line(capsys.readouterr().err, "--slurm-arg", "KEY=VALUE", "'gpu'")


def test_slurm_args_are_typed_for_submitit():
    assert parse_slurm_args(["partition=gpu", "gpus-per-node=2", "exclusive=true", "time=120", "qos=high"]) == dict(
        partition="gpu", gpus_per_node=2, exclusive=True, time=120, qos="high")


def test_a_shard_state_says_its_job_and_error():
    assert str(ShardState(2, 4, "77_1", "PREEMPTED", error="job was preempted")) == \
        "shard 2/4 (job 77_1): PREEMPTED: job was preempted"
    assert ShardState(1, 4, "77_0", "COMPLETED", run_dir="/r").done


class FakeJob:
    """A submitted job whose scheduler reports the given states, one per poll."""

    def __init__(self, job_id: str, states: list[str]):
        self.job_id, self.states = job_id, list(states)

    @property
    def state(self) -> str:
        return self.states[0]

    def done(self) -> bool:
        if len(self.states) > 1:
            self.states.pop(0)
            return False
        return True


def test_waiting_says_each_change_of_a_shards_state_once_and_sleeps_between_polls():
    from bench.api.fleet import ShardJob, _wait

    jobs = [(FakeJob("9_0", ["PENDING", "PENDING", "RUNNING", "COMPLETED"]), ShardJob(("s",), 1, 2, "f1")),
            (FakeJob("9_1", ["PENDING", "PREEMPTED"]), ShardJob(("s",), 2, 2, "f2"))]
    said, slept = [], []
    _wait(jobs, said.append, poll_s=5.0, sleep=slept.append)
    assert [t for t in said if "9_0" in t] == ["shard 1/2 (job 9_0): PENDING", "shard 1/2 (job 9_0): RUNNING",
                                              "shard 1/2 (job 9_0): COMPLETED"]
    assert [t for t in said if "9_1" in t] == ["shard 2/2 (job 9_1): PENDING", "shard 2/2 (job 9_1): PREEMPTED"]
    assert slept and set(slept) == {5.0}
