"""Records -> tidy frames -> a run folder and back; every way a run folder can be unreadable."""
from __future__ import annotations

import json
import math
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest
from helpers import frames

from bench import BenchError
from bench.measure.record import Record
from bench.measure.sampling import Measurement
from bench.schema import SCHEMA_VERSION
from bench.store.files import write_atomic
from bench.store.frames import to_frame, to_samples
from bench.store.recorder import RunRecorder
from bench.store.runs import load as read_run
from bench.store.writer import new_run_dir
from bench.suite.config import load_config
from bench.suite.plan import plan_one

DEVICE_S = (1e-3, 2e-3, 3e-3, 4e-3, 10e-3)
HOST_S = (2e-3, 2e-3, 4e-3, 5e-3, 11e-3)
ENQUEUE_S = (1e-4, 1e-4, 2e-4, 2e-4, 3e-4)
REQUIRED = ["workload", "device", "dtype", "status", "reason", "input_shape", "output_shape", "params", "flops",
            "bytes", "median_s", "iqr_s", "mean_s", "std_s", "min_s", "max_s", "n_samples", "calls_per_sample",
            "rel_iqr", "noisy", "host_median_s", "launch_bound", "flops_per_s"]


@pytest.fixture(scope="module")
def plans():
    return {d.workload.name: plan_one(d.workload, d.source) for d in load_config("smoke").declared}


def measurement(device_s=DEVICE_S, host_s=HOST_S, enqueue_s=ENQUEUE_S) -> Measurement:
    return Measurement(device_s=device_s, host_s=host_s, enqueue_s=enqueue_s, calls_per_sample=7, warmup_calls=12,
                       first_call_s=5e-3, stop_reason="budget")


def ok(plan, device="cpu", **kwargs) -> Record:
    return Record(plan=plan, device=device, device_name=f"fake {device}", threads=2, status="ok",
                  measurement=measurement(**kwargs))


def failed(plan) -> Record:
    return Record(plan=plan, device="cpu", device_name="fake cpu", threads=2, status="error",
                  reason="RuntimeError: boom")


def test_frame_row_of_a_measured_record(plans):
    plan = plans["smoke-linear"]
    [row] = to_frame([ok(plan)]).to_dict("records")
    q25, q50, q75 = np.percentile(DEVICE_S, [25, 50, 75])
    assert (row["workload"], row["device"], row["dtype"], row["status"]) == ("smoke-linear", "cpu", "float32", "ok")
    assert row["input_shape"] == "[16, 64]" and row["output_shape"] == "[16, 32]"
    assert (row["params"], row["flops"], row["bytes"]) == (plan.params, plan.flops, plan.bytes_moved)
    assert row["median_s"] == q50 == 3e-3
    assert row["iqr_s"] == pytest.approx(q75 - q25)
    assert row["mean_s"] == pytest.approx(np.mean(DEVICE_S))
    assert row["std_s"] == pytest.approx(np.std(DEVICE_S, ddof=1))
    assert (row["min_s"], row["max_s"], row["n_samples"], row["calls_per_sample"]) == (1e-3, 10e-3, 5, 7)
    assert row["rel_iqr"] == pytest.approx((q75 - q25) / q50)
    assert row["noisy"] is True  # rel IQR 2/3
    assert row["host_median_s"] == np.median(HOST_S) and row["enqueue_median_s"] == np.median(ENQUEUE_S)
    assert row["launch_bound"] is False  # never on the CPU
    assert row["flops_per_s"] == pytest.approx(plan.flops / 3e-3)
    assert (row["warmup_calls"], row["first_call_s"], row["stop_reason"]) == (12, 5e-3, "budget")
    assert (row["threads"], row["device_name"], row["source"]) == (2, "fake cpu", "configs/smoke.py")


def test_failed_record_keeps_identity_and_has_nan_times(plans):
    frame = to_frame([ok(plans["smoke-linear"]), failed(plans["smoke-conv"])])
    assert list(frame.columns[:4]) == ["workload", "device", "dtype", "status"]
    assert set(REQUIRED) <= set(frame.columns)
    row = frame.iloc[1]
    assert (row["workload"], row["status"], row["reason"]) == ("smoke-conv", "error", "RuntimeError: boom")
    assert row["flops"] == plans["smoke-conv"].flops
    for column in ("median_s", "iqr_s", "mean_s", "host_median_s", "flops_per_s", "n_samples"):
        assert pd.isna(row[column]), column
    samples = to_samples([failed(plans["smoke-conv"])])
    assert len(samples) == 0 and {"workload", "device", "sample", "device_s"} <= set(samples.columns)


def test_samples_are_long_format(plans):
    records = [ok(plans["smoke-linear"]), ok(plans["smoke-mlp"], device_s=(1e-6, 2e-6, 3e-6), host_s=(1e-6,) * 3,
                                            enqueue_s=(1e-7,) * 3)]
    samples = to_samples(records)
    for column in ("workload", "device", "dtype", "sample", "device_s", "host_s", "enqueue_s", "calls"):
        assert column in samples.columns
    assert len(samples) == 5 + 3
    linear = samples[samples["workload"] == "smoke-linear"]
    assert linear["sample"].tolist() == [0, 1, 2, 3, 4]
    assert tuple(linear["device_s"]) == DEVICE_S and tuple(linear["host_s"]) == HOST_S
    assert set(samples["calls"]) == {7}


@pytest.mark.parametrize("device_s, enqueue_s, expected", [
    ((5e-6,) * 3, (1e-6,) * 3, True),      # under 10 us per call: launch overhead dominates
    ((1e-3,) * 3, (1e-4,) * 3, False),     # the GPU is busy long after the host has issued the calls
    ((1e-3,) * 3, (0.95e-3,) * 3, True),   # the host took as long to issue the calls as the GPU to run them
])
def test_launch_bound_flag_on_cuda(plans, device_s, enqueue_s, expected):
    record = ok(plans["smoke-linear"], device="cuda", device_s=device_s, host_s=device_s, enqueue_s=enqueue_s)
    assert to_frame([record])["launch_bound"].tolist() == [expected]


# ---------------------------------------------------------------- the run folder
def test_writer_leaves_valid_files_after_each_record(plans, tmp_path):
    run_dir = new_run_dir(tmp_path)
    writer = RunRecorder(run_dir, {"torch": "x.y", "devices": ["cpu"]})
    env = json.loads((run_dir / "env.json").read_text())
    assert env["schema_version"] == SCHEMA_VERSION and env["complete"] is False and env["torch"] == "x.y"

    writer.add(ok(plans["smoke-linear"]))
    results, samples, env = frames(read_run(run_dir))
    assert results["workload"].tolist() == ["smoke-linear"] and len(samples) == 5
    assert results["median_s"].tolist() == [3e-3]  # exact round trip through the CSV
    assert env["complete"] is False

    writer.add(failed(plans["smoke-conv"]))
    results, samples, _ = frames(read_run(run_dir))
    assert results["status"].tolist() == ["ok", "error"] and math.isnan(results["median_s"][1])
    assert len(samples) == 5

    writer.finish(complete=True)
    results, _, env = frames(read_run(run_dir / "results.csv"))  # a file in the folder names the folder too
    assert env["complete"] is True and "finished_utc" in env and len(results) == 2
    assert sorted(p.name for p in run_dir.iterdir()) == ["env.json", "results.csv", "samples.csv"]  # no temp files


def test_interrupted_run_is_marked_incomplete(plans, tmp_path):
    writer = RunRecorder(new_run_dir(tmp_path), {})
    writer.add(ok(plans["smoke-linear"]))
    writer.finish(complete=False, reason="interrupted")
    _, _, env = frames(read_run(writer.run_dir))
    assert env["complete"] is False and env["incomplete_reason"] == "interrupted"


def test_new_run_dir_never_reuses_a_folder(tmp_path, monkeypatch):
    class FrozenClock(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)

    monkeypatch.setattr("bench.store.writer.datetime", FrozenClock)
    dirs = [new_run_dir(tmp_path / "results") for _ in range(3)]
    assert [d.name for d in dirs] == ["20260102-030405", "20260102-030405-1", "20260102-030405-2"]
    assert all(d.is_dir() for d in dirs)
    assert new_run_dir(tmp_path / "results", label="smoke").name == "20260102-030405-smoke"


def test_new_run_dir_twice_in_a_row_with_the_real_clock(tmp_path):
    a, b = new_run_dir(tmp_path), new_run_dir(tmp_path)
    assert a != b and a.is_dir() and b.is_dir()


def test_write_atomic_replaces_and_leaves_no_temp(tmp_path):
    path = tmp_path / "f.txt"
    write_atomic(path, "one\n")
    write_atomic(path, "two\n")
    assert path.read_text() == "two\n" and [p.name for p in tmp_path.iterdir()] == ["f.txt"]


# ---------------------------------------------------------------- unreadable run folders
@pytest.fixture
def run_dir(plans, tmp_path):
    writer = RunRecorder(new_run_dir(tmp_path), {"torch": "x"})
    for name in ("smoke-linear", "smoke-mlp"):
        writer.add(ok(plans[name]))
    writer.finish(complete=True)
    return writer.run_dir


def load_error(path) -> str:
    with pytest.raises(BenchError) as info:
        frames(read_run(path))
    text = str(info.value)
    assert "\n" not in text and "Traceback" not in text, text
    return text


def test_missing_folder(tmp_path):
    assert "no such folder" in load_error(tmp_path / "nope")


@pytest.mark.parametrize("name", ["env.json", "results.csv", "samples.csv"])
def test_missing_file(run_dir, name):
    (run_dir / name).unlink()
    text = load_error(run_dir)
    assert str(run_dir / name) in text and "no such file" in text


@pytest.mark.parametrize("content, needle", [
    ("workload,device,dt", "cut short"),                     # cut inside the header
    ("workload,device\ncpu,x\n", "columns"),                # not written by bench run
    ("", "EmptyDataError"),                                   # nothing at all
    ('workload,device\n"unterminated,cpu\n', "ParserError"),  # a broken quote
])
def test_corrupt_results_csv(run_dir, content, needle):
    (run_dir / "results.csv").write_text(content)
    text = load_error(run_dir)
    assert str(run_dir / "results.csv") in text and needle in text


def test_binary_garbage_csv(run_dir):
    (run_dir / "samples.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    assert str(run_dir / "samples.csv") in load_error(run_dir)


def test_csv_truncated_in_the_middle_of_a_row(run_dir):
    text = (run_dir / "results.csv").read_text()
    last = text.rstrip("\n").rsplit("\n", 1)[1]
    cut = len(text) - 1 - len(last) + last.index(",0.003,") + 5  # inside the last row's median_s: 0.003 -> 0.00
    (run_dir / "results.csv").write_text(text[:cut])
    load_error(run_dir)


@pytest.mark.parametrize("content, needle", [
    ("{not json", "valid JSON"),
    ("[1, 2]", "a JSON object"),
    (json.dumps({"schema_version": 999, "complete": True}), "schema_version"),
    (json.dumps({"complete": True}), "schema_version"),
])
def test_bad_env_json(run_dir, content, needle):
    (run_dir / "env.json").write_text(content)
    text = load_error(run_dir)
    assert str(run_dir / "env.json") in text and needle in text
