"""The run recorder: frames built record by record equal the frames of all records at once, throttled writes, the
run's metadata through its methods, env.json as a record, and run folders of the older formats still loading."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import bench
from bench import BenchError
from bench.measure.record import Record
from bench.measure.sampling import Measurement
from bench.schema import READABLE_SCHEMA_VERSIONS, SCHEMA_VERSION
from bench.store.env_record import ENV_SCHEMA_VERSION, RunEnv
from bench.store.frames import to_frame, to_samples
from bench.store.recorder import RowOrder, RunRecorder
from bench.store.runs import load as read_run
from bench.store.writer import new_run_dir
from bench.suite.config import load_config
from bench.suite.plan import plan_one

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def plans():
    return [plan_one(d.workload, d.source) for d in load_config("smoke").declared]


def record(plan, *, process=0, scale=1.0, status="ok", instructions=None, device="cpu") -> Record:
    times = tuple(scale * t for t in (1e-3, 2e-3, 3e-3, 5e-3))
    m = Measurement(device_s=times, host_s=times, enqueue_s=(1e-4,) * 4, calls_per_sample=3, warmup_calls=2,
                    first_call_s=4e-3, stop_reason="budget") if status == "ok" else None
    return Record(plan=plan, device=device, device_name=f"fake {device}", threads=2, status=status, measurement=m,
                  reason="" if status == "ok" else "RuntimeError: boom", process=process, instructions=instructions)


def records_of(plans) -> list[Record]:
    """Rows measured by three processes in turn: one row failing in one process, one failing everywhere, one
    counted (instructions), one seen once."""
    out = []
    for process in range(3):
        out.append(record(plans[0], process=process, scale=1 + process / 10))
        out.append(record(plans[1], process=process, status="error" if process == 1 else "ok"))
        out.append(record(plans[2], process=process, status="error"))
        out.append(record(plans[3], process=process, instructions=1000.0 + process))
    out.append(record(plans[0], device="cuda"))
    return out


def test_frames_after_each_add_equal_the_frames_of_all_records(plans):
    records = records_of(plans)
    recorder = RunRecorder(None, {"torch": "x"})
    for n, r in enumerate(records, 1):
        recorder.add(r)
        if n in (1, 2, 5, 9, len(records)):
            results, samples = recorder.frames()
            pd.testing.assert_frame_equal(results, to_frame(records[:n]))
            pd.testing.assert_frame_equal(samples, to_samples(records[:n]))
    results = recorder.finish(complete=True).results
    assert results["status"].tolist() == ["ok", "error", "error", "ok", "ok"]
    assert results["n_processes"].iloc[0] == 3 and results["instructions"].iloc[3] == 1000.0


def test_two_recorders_sharing_an_order_list_rows_as_either_side_first_saw_them(plans):
    records = records_of(plans)
    order = RowOrder()
    base, cand = RunRecorder(None, {}, order=order), RunRecorder(None, {}, order=order)
    base_records, cand_records = [], []
    for i, r in enumerate(records):  # the candidate sees plans[1] first, the baseline plans[0]
        side, mine = (cand, cand_records) if (i % 2) ^ (r.plan is plans[0]) else (base, base_records)
        side.add(r)
        mine.append(r)
    seen = list(dict.fromkeys(r.key for r in records))
    for recorder, mine in ((base, base_records), (cand, cand_records)):
        ordered = sorted(mine, key=lambda r: seen.index(r.key))
        results, samples = recorder.frames()
        pd.testing.assert_frame_equal(results, to_frame(ordered))
        pd.testing.assert_frame_equal(samples, to_samples(ordered))


def test_a_throttled_recorder_writes_when_its_clock_says_so_and_at_the_end(plans, tmp_path):
    now = [0.0]
    run_dir = new_run_dir(tmp_path)
    recorder = RunRecorder(run_dir, {}, flush_s=5.0, clock=lambda: now[0])
    rows = lambda: len(pd.read_csv(run_dir / "results.csv"))  # noqa: E731 - a probe, read at each step
    recorder.add(record(plans[0]))
    recorder.add(record(plans[1]))
    assert rows() == 0
    now[0] = 5.0
    recorder.add(record(plans[2]))
    assert rows() == 3
    recorder.add(record(plans[3]))
    assert rows() == 3
    run = recorder.finish(complete=True)
    assert rows() == 4 and len(read_run(run_dir).results) == 4 and run.complete


def test_the_runs_metadata_goes_through_the_recorder_into_env_json(plans, tmp_path):
    run_dir = new_run_dir(tmp_path)
    recorder = RunRecorder(run_dir, {"torch": "2.0", "python": "3.11", "settings": {"budget_s": 1.0},
                                     "ab": {"side": "baseline"}, "from_a_newer_bench": [1, 2]})
    recorder.set_seed(7)
    recorder.set_worker_cost({"started": 3})
    recorder.set_versions({"torch": "2.1", "python": "3.12", "other": "x"})
    recorder.set_looks(pairs_per_row={"a / cpu / float32": 16}, counted=["a / cpu / float32"])
    recorder.add(record(plans[0]))
    recorder.env["seed"] = 99  # a copy: the record does not change from outside
    recorder.finish(complete=False, reason="interrupted")
    env = json.loads((run_dir / "env.json").read_text())
    assert (env["schema_version"], env["env_version"]) == (SCHEMA_VERSION, ENV_SCHEMA_VERSION)
    assert (env["seed"], env["workers"], env["torch"], env["python"]) == (7, {"started": 3}, "2.1", "3.12")
    assert env["ab"] == {"side": "baseline", "pairs_per_row": {"a / cpu / float32": 16},
                         "counted": ["a / cpu / float32"]}
    assert env["complete"] is False and env["incomplete_reason"] == "interrupted" and "other" not in env
    assert env["from_a_newer_bench"] == [1, 2]  # a key this version does not know is kept, not refused


def test_env_record_of_an_old_env_json_keeps_every_key():
    old = json.loads((ROOT / "results" / "samples" / "nvidia-h200" / "seed" / "env.json").read_text())
    assert "env_version" not in old and old["schema_version"] == 1
    again = RunEnv.of(old).to_dict()
    assert {k: v for k, v in again.items() if k not in ("schema_version", "env_version")} == \
           {k: v for k, v in old.items() if k != "schema_version"}


def _run_folders(root: Path) -> list[Path]:
    """The run folders under root (a report folder keeps an env.json beside report.html, without samples.csv)."""
    return sorted(p.parent for p in root.rglob("env.json") if (p.parent / "samples.csv").is_file())


OLD_FOLDERS = _run_folders(ROOT / "results" / "samples") + _run_folders(ROOT / "results" / "baselines")


@pytest.mark.parametrize("folder", OLD_FOLDERS, ids=lambda p: str(p.relative_to(ROOT)))
def test_committed_run_folders_of_older_versions_load(folder):
    run = bench.load(folder)
    assert run.env["schema_version"] in READABLE_SCHEMA_VERSIONS and len(run.results) > 0


@pytest.mark.parametrize("version", [*READABLE_SCHEMA_VERSIONS, SCHEMA_VERSION + 1, 0])
def test_the_loader_accepts_exactly_the_readable_schema_versions(plans, tmp_path, version):
    recorder = RunRecorder(new_run_dir(tmp_path), {})
    recorder.add(record(plans[0]))
    run_dir = recorder.finish(complete=True).source
    env = json.loads((run_dir / "env.json").read_text())
    (run_dir / "env.json").write_text(json.dumps(dict(env, schema_version=version)))
    if version in READABLE_SCHEMA_VERSIONS:
        assert len(read_run(run_dir).results) == 1
    else:
        with pytest.raises(BenchError, match="schema_version"):
            read_run(run_dir)
