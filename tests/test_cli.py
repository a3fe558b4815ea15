"""The command line end to end on the smoke config: in-process through main(argv), and once as `python -m bench`."""
from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from bench.cli.main import main
from bench.suite.config import load_config

RUN_ARGS = ["--device", "cpu", "--budget-s", "0.05", "--warmup-s", "0.01", "--min-samples", "3"]
PNG = b"\x89PNG\r\n\x1a\n"


def cli(*argv: str) -> tuple[int, str, str]:
    """Run main(argv) in-process; return (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(list(argv))
    return status, out.getvalue(), err.getvalue()


def error_lines(err: str) -> list[str]:
    assert "Traceback" not in err, err
    return [line for line in err.splitlines() if line.strip()]


@pytest.fixture(autouse=True)
def at_repo_root(repo_root):
    """Config names resolve from the repository, and files are shown relative to it."""


# ---------------------------------------------------------------- list
def test_list_seed_table():
    status, out, err = cli("list", "seed")
    assert status == 0 and err == ""
    for d in load_config("seed").declared:
        assert d.workload.name in out
    assert "[256, 3, 217, 217]" in out and "26.3 G" in out
    assert "seed-conv11: module H: floor((227 + 2*0 - 1*(11 - 1) - 1) / 1) + 1 = 217" in out
    assert "multiply-add counts 2" in out


def test_list_seed_json():
    status, out, _ = cli("list", "seed", "--json")
    assert status == 0
    rows = {r["name"]: r for r in json.loads(out)}
    assert list(rows) == [d.workload.name for d in load_config("seed").declared]
    for row in rows.values():
        assert {"name", "input_shape", "output_shape", "flops", "params", "bytes"} <= set(row)
    conv = rows["seed-conv11"]
    assert conv["input_shape"] == [256, 3, 227, 227] and conv["output_shape"] == [256, 3, 217, 217]
    assert conv["flops"] == 2 * 256 * 3 * 217 * 217 * 3 * 11 * 11 and conv["params"] == 3 * 3 * 11 * 11 + 3
    assert rows["seed-flatten"]["output_shape"] == [256, 784] and rows["seed-flatten"]["flops"] == 0


def test_list_broken_one_line_per_problem():
    status, out, err = cli("list", "broken")
    assert status == 2
    lines = error_lines(err)
    names = [d.workload.name for d in load_config("broken").declared]
    problems = [line for line in lines if line.startswith("configs/broken.py: workload '")]
    assert len(problems) == len(names) == len(lines) - 1  # plus one closing count line
    for name in names:
        assert sum(f"workload '{name}'" in line for line in problems) == 1
    assert "in_channels" in problems[0] and "expected 3" in problems[0] and "found 5" in problems[0]
    assert f"{len(names)} problem" in lines[-1]


def test_list_reports_good_and_bad_configs_together():
    status, out, err = cli("list", "seed", "broken")
    assert status == 2
    assert "seed-conv11" in out  # the good config is still listed
    assert len(error_lines(err)) == len(load_config("broken").declared) + 1


@pytest.mark.parametrize("spec", ["no-such-config", "configs/no_such.py"])
def test_unknown_config_is_one_line(spec):
    status, out, err = cli("list", spec)
    assert status == 2 and out == ""
    [line] = error_lines(err)
    assert spec in line


def test_bad_option_is_a_usage_error():
    status, _, err = cli("run", "smoke", "--budget-s", "soon")
    assert status == 2 and "Traceback" not in err


# ---------------------------------------------------------------- run and plot
@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("runs")
    cwd = os.getcwd()
    os.chdir(Path(__file__).resolve().parent.parent)  # module-scoped: monkeypatch.chdir is not available here
    try:
        status, out, err = cli("run", "smoke", "--out", str(out_dir), *RUN_ARGS)
    finally:
        os.chdir(cwd)
    return status, out, err, out_dir


def test_run_smoke_writes_a_complete_run_folder(smoke_run):
    status, out, err, out_dir = smoke_run
    assert status == 0, err
    [run_dir] = list(out_dir.iterdir())
    names = [d.workload.name for d in load_config("smoke").declared]

    results = pd.read_csv(run_dir / "results.csv")
    for column in ("workload", "device", "dtype", "status", "median_s", "iqr_s", "host_median_s", "n_samples",
                   "calls_per_sample", "flops_per_s", "noisy"):
        assert column in results.columns
    assert results["workload"].tolist() == names
    assert (results["status"] == "ok").all() and (results["device"] == "cpu").all()
    assert (results["median_s"] > 0).all() and (results["n_samples"] >= 3).all()

    samples = pd.read_csv(run_dir / "samples.csv")
    assert len(samples) == results["n_samples"].sum() and (samples["device_s"] > 0).all()

    env = json.loads((run_dir / "env.json").read_text())
    assert env["complete"] is True and env["schema_version"] >= 1 and env["threads"] >= 1
    assert env["torch"] == torch.__version__

    png = (run_dir / "latency.png").read_bytes()
    assert png.startswith(PNG) and len(png) > 5000

    for name in names:
        assert name in out
    assert str(run_dir) in out
    assert f"[1/{len(names)}]" in err and f"[{len(names)}/{len(names)}]" in err  # progress on stderr


def test_plot_redraws(smoke_run):
    _, _, _, out_dir = smoke_run
    [run_dir] = list(out_dir.iterdir())
    (run_dir / "latency.png").unlink()
    status, out, err = cli("plot", str(run_dir))
    assert status == 0, err
    assert (run_dir / "latency.png").read_bytes().startswith(PNG)
    assert "latency.png" in out


def test_plot_of_a_missing_folder(tmp_path):
    status, _, err = cli("plot", str(tmp_path / "nope"))
    assert status == 2
    [line] = error_lines(err)
    assert str(tmp_path / "nope") in line


def test_run_refuses_a_broken_suite_before_timing(tmp_path):
    status, out, err = cli("run", "smoke", "broken", "--out", str(tmp_path / "out"), *RUN_ARGS)
    assert status == 2
    assert len(error_lines(err)) == len(load_config("broken").declared)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_run_with_a_missing_config_path(tmp_path):
    status, _, err = cli("run", str(tmp_path / "missing.py"), "--out", str(tmp_path), *RUN_ARGS)
    assert status == 2
    [line] = error_lines(err)
    assert "missing.py" in line


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given where there is no GPU")
def test_device_cuda_without_a_gpu(tmp_path):
    status, _, err = cli("run", "smoke", "--device", "cuda", "--out", str(tmp_path))
    assert status == 2
    [line] = error_lines(err)
    assert "--device cuda" in line and "CUDA" in line


def test_python_dash_m_bench_end_to_end(tmp_path, repo_root):
    done = subprocess.run([sys.executable, "-m", "bench", "run", "smoke", "--out", str(tmp_path), *RUN_ARGS],
                          cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    [run_dir] = list(tmp_path.iterdir())
    assert {"env.json", "latency.png", "results.csv", "samples.csv"} <= {p.name for p in run_dir.iterdir()}
    assert (pd.read_csv(run_dir / "results.csv")["status"] == "ok").all()
