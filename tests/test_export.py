"""pytest-benchmark JSON from a run folder: its stats formulas, and its own loader and compare read it."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from test_compare import samples, write_run

from bench.cli.main import main
from bench.store.export import pytest_benchmark_stats, to_pytest_benchmark
from bench.store.runs import load as load_run


def export_run(path):
    return to_pytest_benchmark(load_run(path))

pb_stats = pytest.importorskip("pytest_benchmark.stats")


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 20])
def test_stats_match_pytest_benchmark(n):
    data = list(samples(1e-3, n=n, rel_noise=0.2, seed=n))
    theirs = pb_stats.Stats()
    for x in data:
        theirs.update(x)
    ours = pytest_benchmark_stats(data, iterations=7)
    for field in pb_stats.Stats.fields:
        assert ours[field] == pytest.approx(getattr(theirs, field)), field
    assert ours["data"] == data and ours["iterations"] == 7


@pytest.fixture
def two_runs(tmp_path):
    a = write_run(tmp_path / "a", {"smoke-linear": samples(1e-5), "smoke-conv": samples(5e-5), "broken": []},
                  status={"broken": "error"})
    b = write_run(tmp_path / "b", {"smoke-linear": samples(1.3e-5, seed=2), "smoke-conv": samples(5e-5, seed=3)})
    return a, b


def test_document_layout(two_runs):
    doc = export_run(two_runs[0])
    assert set(doc) == {"machine_info", "commit_info", "benchmarks", "datetime", "version"}
    names = [b["name"] for b in doc["benchmarks"]]
    assert names == ["test_workload[smoke-linear-default-cpu-float32]", "test_workload[smoke-conv-default-cpu-float32]"]
    bench = doc["benchmarks"][0]
    assert bench["fullname"].startswith("tests/benchmarks/test_config_workloads.py::")
    assert bench["params"] == {"workload": "smoke-linear", "device": "cpu", "dtype": "float32", "variant": "default"}
    assert bench["stats"]["rounds"] == 20 and bench["stats"]["iterations"] == 10
    assert {"group", "options", "extra_info"} <= set(bench)


def test_pytest_benchmark_loads_and_compares_our_files(two_runs, tmp_path):
    from pytest_benchmark.storage.file import FileStorage

    paths = []
    for run in two_runs:
        out = tmp_path / run.name  # --out is the folder the command writes into
        assert main(["export", str(run), "--format", "pytest-benchmark", "--out", str(out)]) == 0
        (out / "pytest-benchmark.json").rename(tmp_path / f"{run.name}.json")
        paths.append(tmp_path / f"{run.name}.json")

    class Logger:
        def __init__(self):
            self.warnings = []

        def warning(self, text, **_):
            self.warnings.append(text)

        info = debug = error = warning

    logger = Logger()
    storage = FileStorage(tmp_path, logger=logger)
    loaded = list(storage.load_benchmarks(*map(str, paths)))
    assert not logger.warnings
    assert len(loaded) == 4 and {b["name"] for b in loaded} == {
        "test_workload[smoke-linear-default-cpu-float32]", "test_workload[smoke-conv-default-cpu-float32]"}
    out = subprocess.run([sys.executable, "-m", "pytest_benchmark", "compare", *map(str, paths),
                          "--columns=min,median,max"], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "smoke-linear-default-cpu-float32" in out.stdout and "Median" in out.stdout


def test_export_to_stdout(two_runs, capsys):
    assert main(["export", str(two_runs[1]), "--format", "pytest-benchmark"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["benchmarks"]) == 2


def test_export_bad_input(tmp_path, capsys):
    assert main(["export", str(tmp_path / "none"), "--format", "pytest-benchmark"]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert main(["export", str(tmp_path), "--format", "csv"]) == 2


def test_export_to_an_unwritable_path_is_one_line(two_runs, tmp_path, capsys, one_line):
    (tmp_path / "afile").write_text("")
    for target in (tmp_path / "afile", tmp_path / "afile" / "sub"):
        assert main(["export", str(two_runs[0]), "--format", "pytest-benchmark", "--out", str(target)]) == 2
        one_line(capsys.readouterr().err.strip(), f"{target / 'pytest-benchmark.json'}: --out",
                 "expected a writable file path", f"{tmp_path / 'afile'} is a file, not a folder")
    assert main(["export", str(two_runs[0]), "--format", "pytest-benchmark", "--out", str(tmp_path / "new")]) == 0
    assert json.loads((tmp_path / "new" / "pytest-benchmark.json").read_text())["benchmarks"]


def test_export_leaves_out_not_applicable_rows(tmp_path):
    run = write_run(tmp_path / "run", {"a": samples(1e-3), ("a", "cpu", "float32", "cuda_graph"): samples(1e-3)})
    (run / "results.csv").write_text((run / "results.csv").read_text().replace(",cuda_graph,ok,",
                                                                               ",cuda_graph,not-applicable,"))
    assert [b["param"] for b in export_run(run)["benchmarks"]] == ["a-default-cpu-float32"]


def test_export_refuses_rounds_that_do_not_belong_together(tmp_path, capsys, one_line):
    write_run(tmp_path / "ci" / "r1", {"a": samples(1e-3)}, env={"argv": ["bench", "run", "smoke", "--out", "ci"]})
    write_run(tmp_path / "ci" / "r2", {"a": samples(1e-3)}, env={"argv": ["bench", "run", "seed", "--out", "ci"]})
    assert main(["export", str(tmp_path / "ci"), "--format", "pytest-benchmark"]) == 2
    one_line(capsys.readouterr().err.strip(), str(tmp_path / "ci"), "argv", "'smoke' as in r1", "'seed' in r2")
