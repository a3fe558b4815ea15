"""The Python API (bench.run, load, compare, make_report) and the records it returns, on tiny real measurements."""
from __future__ import annotations

import dataclasses
import os

import pandas as pd
import pytest
from torch import nn

import bench
import bench.suite.config
from bench.schema import RESULT_COLUMNS, SAMPLE_COLUMNS, RowKey

FAST = dict(device="cpu", budget_s=0.01, warmup_s=0.0, min_samples=3)
TINY = [bench.Workload(name="lin", module=lambda: nn.Linear(8, 4), input_shape=(2, 8)),
        bench.Workload(name="relu", module=nn.ReLU, input_shape=(4, 16), tags=("Act",))]


@pytest.fixture
def in_empty_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_run_a_config_by_name_returns_a_frame_and_writes_nothing(in_empty_dir, monkeypatch):
    monkeypatch.chdir(os.path.dirname(os.path.dirname(__file__)))  # config names resolve from the repository
    before = {p for p in os.listdir(".")}
    run = bench.run("smoke", **FAST)
    assert isinstance(run, bench.Run) and isinstance(run.frame, pd.DataFrame)
    assert list(run.frame.columns) == RESULT_COLUMNS and list(run.samples.columns) == SAMPLE_COLUMNS
    assert run.frame["workload"].tolist() == [w.name for w in bench.suite.config.load_config("smoke").workloads]
    assert (run.frame["status"] == "ok").all() and (run.frame["median_s"] > 0).all()
    assert run.source is None and run.run_dirs == () and run.complete
    assert {p for p in os.listdir(".")} == before  # nothing written: no run folder, no results/, no plot


def test_run_workloads_in_code_with_out_writes_one_run_that_load_reads(in_empty_dir):
    run = bench.run(TINY, out="runs", label="try-1", **FAST)
    (folder,) = (in_empty_dir / "runs").iterdir()
    assert folder.resolve() == run.source.resolve() and folder.name.endswith("-try-1")
    assert {"results.csv", "samples.csv", "env.json", "latency.png"} <= {p.name for p in folder.iterdir()}
    back = bench.load(folder)
    pd.testing.assert_frame_equal(back.frame[["workload", "device", "dtype", "variant", "status"]],
                                  run.frame[["workload", "device", "dtype", "variant", "status"]])
    assert back.frame["median_s"].tolist() == pytest.approx(run.frame["median_s"].tolist())
    assert back.env["label"] == "try-1" and back.complete
    for path in (in_empty_dir / "runs", folder / "results.csv"):  # the --out folder and a results.csv name it too
        assert bench.load(path).frame["workload"].tolist() == ["lin", "relu"]
    assert back.keys() == [RowKey("lin", "cpu", "float32"), RowKey("relu", "cpu", "float32")]


def test_run_is_frozen_data(in_empty_dir):
    run = bench.run(TINY[:1], **FAST)
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.env = {}


def test_filter_is_a_case_insensitive_comma_list_of_name_parts_or_tags(in_empty_dir):
    assert bench.run(TINY, filter="LIN", **FAST).frame["workload"].tolist() == ["lin"]
    assert bench.run(TINY, filter="nothing, act", **FAST).frame["workload"].tolist() == ["relu"]
    with pytest.raises(bench.BenchError, match="--filter"):
        bench.run(TINY, filter="conv", **FAST)


def test_compare_returns_verdicts_as_a_frame_and_report_writes_a_page(in_empty_dir):
    a = bench.run(TINY, out="a", **FAST)
    b = bench.run(TINY, out="b", **FAST)
    verdicts = bench.compare(a.source, b.source)
    assert isinstance(verdicts, pd.DataFrame) and verdicts["workload"].tolist() == ["lin", "relu"]
    assert set(verdicts["verdict"]) <= {"slower", "unsure", "same", "faster"}
    assert {"ratio", "ratio_low", "ratio_high", "p_value", "threshold"} <= set(verdicts.columns)
    assert bench.compare(a, b)["workload"].tolist() == ["lin", "relu"]  # Run objects work as well as paths
    report = bench.make_report([a.source, b], out="rep")
    assert (in_empty_dir / "rep" / "report.html").is_file() and len(report.frame) == 4
    assert report.peaks == () and any("no peaks" in n for n in report.notes)  # it never measured


def test_bad_arguments_are_bench_errors_naming_the_field(in_empty_dir):
    with pytest.raises(bench.BenchError, match="suite"):
        bench.run([], **FAST)
    with pytest.raises(bench.BenchError, match="budget_s"):
        bench.run(TINY, device="cpu", budget_s=float("nan"))
    with pytest.raises(bench.BenchError, match="--label"):
        bench.run(TINY, out="x", label="a/b", **FAST)
    with pytest.raises(bench.BenchError, match="threads"):
        bench.run(TINY, threads=0, **FAST)
