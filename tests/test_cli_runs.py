"""One way to name a run, through the command line: every command that reads a run takes the run folder, the
folder given to `run --out` (one run, or rounds), or a results.csv; and the crashes a newcomer hit."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from bench import load
from bench.cli.main import main

ROOT = Path(__file__).resolve().parent.parent

FAST = ["--device", "cpu", "--budget-s", "0.01", "--warmup-s", "0", "--min-samples", "3"]
CONFIG = """
    from torch import nn
    from bench import Workload
    WORKLOADS = [Workload(name="lin", module=lambda: nn.Linear(8, 4), input_shape=(2, 8)),
                 Workload(name="NA", module=nn.ReLU, input_shape=(4, 16)),
                 Workload(name="1.0", module=nn.Flatten, input_shape=(2, 2, 2))]
"""


def cli(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return status, out, err


@pytest.fixture
def cfg(write_config):
    return write_config(CONFIG)


@pytest.fixture
def two_outs(cfg, tmp_path, capsys):
    for name in ("X", "Y"):
        assert cli(capsys, "run", cfg, "--out", tmp_path / name, *FAST)[0] == 0
    return tmp_path / "X", tmp_path / "Y"


def test_the_folder_given_to_run_out_names_the_run_for_every_command(two_outs, tmp_path, capsys):
    x, y = two_outs
    (run_dir,) = x.iterdir()
    status, out, _ = cli(capsys, "report", x)
    assert status == 0 and (run_dir / "report.html").is_file()  # written into the run folder itself
    status, out, _ = cli(capsys, "plot", x)
    assert status == 0 and str(run_dir / "latency.png") in out
    status, out, _ = cli(capsys, "export", x, "--format", "pytest-benchmark")
    assert status == 0 and [b["params"]["workload"] for b in json.loads(out)["benchmarks"]] == ["lin", "NA", "1.0"]
    status, out, _ = cli(capsys, "compare", x, y)
    assert status == 2 and (y / "gate.md").is_file()  # one process a side (BENCH_PROCESSES=0): not judged
    for name in ("lin", "NA", "1.0"):  # names that look like missing values or numbers stay names
        assert f"{name} / cpu / float32" in out


def test_a_results_csv_names_its_run(two_outs, capsys):
    (run_dir,) = two_outs[0].iterdir()
    assert cli(capsys, "plot", run_dir / "results.csv")[0] == 0 and (run_dir / "latency.png").is_file()
    assert cli(capsys, "report", run_dir / "results.csv")[0] == 0 and (run_dir / "report.html").is_file()
    status, _, err = cli(capsys, "plot", run_dir / "latency.png")
    assert status == 2 and "a run's results.csv" in err and len(err.splitlines()) == 1


def test_rounds_in_one_out_folder_are_pooled_by_every_reader(cfg, tmp_path, capsys):
    for _ in range(2):
        assert cli(capsys, "run", cfg, "--out", tmp_path / "R", *FAST)[0] == 0
    pooled = load(tmp_path / "R")
    assert pooled.env["rounds"] == 2 and len(pooled.run_dirs) == 2
    one = load(pooled.run_dirs[0])
    assert len(pooled.samples) == len(one.samples) + len(load(pooled.run_dirs[1]).samples)
    status, out, _ = cli(capsys, "compare", tmp_path / "R", tmp_path / "R")
    assert status == 2 and "0 slower" in out  # a process per round: too few to judge, not a pass
    assert cli(capsys, "report", tmp_path / "R")[0] == 0 and (tmp_path / "R" / "report.html").is_file()


def test_report_merges_two_runs_with_the_same_workload_names(two_outs, tmp_path, capsys):
    status, out, err = cli(capsys, "report", *two_outs, "--out", tmp_path / "T")
    assert status == 0, err
    assert (tmp_path / "T" / "report.html").is_file()
    assert " (X) " in out and " (Y) " in out  # one machine in two runs: its rows told apart by run


def test_report_latest_says_which_run_it_took(two_outs, tmp_path, capsys):
    status, _, err = cli(capsys, "report", "--latest", "--root", tmp_path)
    (newest,) = two_outs[1].iterdir()
    assert status == 0 and f"the newest run under {tmp_path} is {newest}" in err


def test_run_label_names_the_folder_and_a_bad_label_is_one_line(cfg, tmp_path, capsys):
    assert cli(capsys, "run", cfg, "--out", tmp_path, "--label", "base-1", *FAST)[0] == 0
    (folder,) = tmp_path.glob("*-base-1")
    assert json.loads((folder / "env.json").read_text())["label"] == "base-1"
    status, _, err = cli(capsys, "run", cfg, "--out", tmp_path, "--label", "../up", *FAST)
    assert status == 2 and "--label" in err and len(err.splitlines()) == 1


def test_progress_never_promises_less_than_it_takes(cfg, tmp_path, capsys):
    _, _, err = cli(capsys, "run", cfg, "--out", tmp_path, *FAST)
    assert "at least 30 ms of warm-up and sampling" in err and "at least 0 s" not in err and "in all" not in err


def test_list_filter_like_run(capsys, repo_root):
    status, out, _ = cli(capsys, "list", "smoke", "--filter", "FLATTEN")
    assert status == 0 and "smoke-flatten" in out and "smoke-linear " not in out


def test_every_option_shows_its_default(capsys):
    for command in ("run", "compare", "report", "export", "baseline", "calibrate", "peaks", "list"):
        assert main([command, "--help"]) == 0
        text = capsys.readouterr().out
        assert "(default: " in text, command
    assert main(["run", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "sampling seconds per row (default: 2.0)" in text and "--out OUT the folder this command writes into" in text


def test_a_zero_sized_conv_is_one_line_without_torch_warnings(write_config, capsys):
    path = write_config("""
        from torch import nn
        from bench import Workload
        WORKLOADS = [Workload(name="z", module=lambda: nn.Conv2d(3, 0, 3), input_shape=(1, 3, 8, 8)),
                     Workload(name="k", module=lambda: nn.Conv2d(3, 4, 0), input_shape=(1, 3, 8, 8))]
    """)
    status, _, err = cli(capsys, "list", path)
    lines = err.splitlines()
    assert status == 2 and "Warning" not in err
    assert "'z': module.out_channels: expected a positive integer, found 0" in lines[0]
    assert "'k': module.kernel_size" in lines[1] and len(lines) == 3


def test_a_config_that_prints_leaves_json_on_stdout_and_one_that_exits_is_one_line(write_config, capsys):
    path = write_config(textwrap.dedent(CONFIG) + "print('hello from the config')\n")
    status, out, err = cli(capsys, "list", path, "--json")
    assert status == 0 and [w["name"] for w in json.loads(out)] == ["lin", "NA", "1.0"]
    assert "hello from the config" in err
    path = write_config("import sys\nsys.exit(3)\n", name="exits.py")
    status, _, err = cli(capsys, "list", path)
    assert status == 2 and "exits.py:2" in err and "SystemExit" in err and len(err.splitlines()) == 1


def test_each_config_module_is_imported_once_per_command(write_config, tmp_path, capsys):
    count = tmp_path / "imports.txt"
    path = write_config(CONFIG + f"""
    open({str(count)!r}, "a").write("x")
    VARIANTS = ["threads=1"]
    PEAKS = {{"cpu": {{"flops_per_s": {{"float32": 1e12}}, "bytes_per_s": 1e10}}}}
    """)
    assert cli(capsys, "run", path, "--out", tmp_path / "runs", *FAST)[0] == 0
    assert count.read_text() == "x"


def test_an_internal_error_is_not_reported_as_a_user_error(two_outs, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise ValueError("a bug")

    monkeypatch.setattr("bench.cli.run.save_plots", broken)
    status = main(["plot", str(two_outs[0])])
    err = capsys.readouterr().err
    assert status == 3 and "internal error" in err and "ValueError: a bug" in err


def test_a_formula_in_a_note_reaches_results_csv_neutralized(write_config, tmp_path, capsys):
    path = write_config(textwrap.dedent(CONFIG).replace('input_shape=(2, 8))', 'input_shape=(2, 8), note="=1+1")'))
    assert cli(capsys, "run", path, "--out", tmp_path, *FAST)[0] == 0
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    text = (run_dir / "results.csv").read_text()
    assert ",'=1+1," in text and ",=1+1," not in text


def test_rounds_run_from_python_with_other_settings_do_not_pool(tmp_path):
    from torch import nn

    import bench

    tiny = [bench.Workload(name="lin", module=lambda: nn.Linear(8, 4), input_shape=(2, 8))]
    bench.run(tiny, device="cpu", budget_s=0.01, warmup_s=0.0, min_samples=3, out=tmp_path / "Y")
    bench.run(tiny, device="cpu", budget_s=0.02, warmup_s=0.0, min_samples=3, out=tmp_path / "Y")
    with pytest.raises(bench.BenchError, match=r"settings.budget_s .*expected 0.01 as in .*found 0.02"):
        bench.load(tmp_path / "Y")


def test_run_out_into_a_run_folder_and_a_filter_matching_nothing_are_one_line(two_outs, capsys, repo_root):
    (run_dir,) = two_outs[0].iterdir()
    status, _, err = cli(capsys, "run", "smoke", "--out", run_dir, *FAST)
    assert status == 2 and "a run folder itself" in err and len(err.splitlines()) == 1
    status, _, err = cli(capsys, "list", "smoke", "--filter", "zzz")
    assert status == 2 and "--filter" in err and len(err.splitlines()) == 1


def test_report_latest_under_a_root_whose_path_holds_baselines(cfg, tmp_path, capsys):
    root = tmp_path / "baselines" / "res"
    assert cli(capsys, "run", cfg, "--out", root, *FAST)[0] == 0
    status, _, err = cli(capsys, "report", "--latest", "--root", root)
    assert status == 0 and f"the newest run under {root}" in err


def test_a_closed_pipe_is_not_an_internal_error(two_outs):
    import subprocess
    import sys

    done = subprocess.run(f"{sys.executable} -m bench export {two_outs[0]} | head -c 10", shell=True,
                          capture_output=True, text=True, cwd=ROOT)
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
