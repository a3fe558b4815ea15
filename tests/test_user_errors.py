"""Mistakes a user can make on the command line and in files (found in review): one line, exit 2, no traceback."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from bench import Workload
from bench.cli.main import main
from bench.errors import BenchError
from bench.suite.plan import plan_one


@pytest.mark.parametrize("args, needle", [
    (["--budget-s", "-1"], "argument --budget-s: expected a finite number >= 0, found '-1'"),
    (["--warmup-s", "nan"], "argument --warmup-s: expected a finite number >= 0, found 'nan'"),
    (["--budget-s", "inf"], "argument --budget-s: expected a finite number >= 0, found 'inf'"),
    (["--timeout-s", "0"], "argument --timeout-s: expected a finite number > 0, found '0'"),
    (["--threads", "-1"], "argument --threads: expected an integer >= 1, found '-1'"),
    (["--threads", "0"], "argument --threads: expected an integer >= 1, found '0'"),
    (["--min-samples", "0"], "argument --min-samples: expected an integer >= 1, found '0'"),
    (["--target-rel-iqr", "x"], "argument --target-rel-iqr: expected a finite number >= 0, found 'x'"),
    (["--device", "tpu"], "argument --device: invalid choice"),
])
def test_bad_run_options_are_one_line(args, needle, capsys, tmp_path):
    assert main(["run", "smoke", "--out", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err
    assert not list(tmp_path.iterdir())  # refused before any run folder exists


def test_min_samples_below_the_floor_is_accepted(tmp_path, capsys):
    code = main(["run", "smoke", "--device", "cpu", "--out", str(tmp_path), "--filter", "smoke-linear",
                 "--budget-s", "0", "--warmup-s", "0", "--min-samples", "2"])
    assert code == 0, capsys.readouterr().err


@pytest.mark.parametrize("make_out, found", [
    (lambda tmp: tmp / "a-file", "expected a folder, found a file"),
    (lambda tmp: Path("/proc/no-such-dir/sub"), "found No such file or directory"),  # not creatable, even by root
])
def test_an_out_folder_that_cannot_be_made_is_one_line(tmp_path, capsys, make_out, found):
    (tmp_path / "a-file").write_text("x")
    out = make_out(tmp_path)
    code = main(["run", "smoke", "--device", "cpu", "--out", str(out), "--budget-s", "0"])
    err = capsys.readouterr().err
    assert code == 2 and f"{out}: --out: " in err and found in err and "Traceback" not in err


def test_a_non_number_in_a_csv_names_file_row_and_column(tmp_path, capsys):
    assert main(["run", "smoke", "--device", "cpu", "--out", str(tmp_path), "--budget-s", "0", "--warmup-s", "0",
                 "--min-samples", "3"]) == 0
    (run_dir,) = tmp_path.iterdir()
    lines = (run_dir / "samples.csv").read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[2].split(",")
    cells[header.index("device_s")] = "abc"
    lines[2] = ",".join(cells)
    (run_dir / "samples.csv").write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    for command in (["plot", str(run_dir)], ["report", str(run_dir)],
                    ["export", str(run_dir), "--format", "pytest-benchmark"]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert f"{run_dir / 'samples.csv'}:3: device_s: expected a number, found 'abc'" in err, (command, err)
        assert "Traceback" not in err


def test_report_names_missing_columns(tmp_path, capsys):
    assert main(["run", "smoke", "--device", "cpu", "--out", str(tmp_path), "--budget-s", "0", "--warmup-s", "0",
                 "--min-samples", "3"]) == 0
    (run_dir,) = tmp_path.iterdir()
    frame = pd.read_csv(run_dir / "results.csv")
    frame.drop(columns="flops").to_csv(run_dir / "results.csv", index=False)
    capsys.readouterr()
    assert main(["report", str(run_dir)]) == 2
    assert "expected columns flops" in capsys.readouterr().err


def _problem(workload: Workload) -> str:
    problems = workload.problems("cfg.py")
    if problems:
        return str(problems[0])
    with pytest.raises(BenchError) as info:
        plan_one(workload, "cfg.py")
    return str(info.value)


def test_a_module_instance_is_named_as_such():
    from torch import nn

    text = _problem(Workload(name="inst", module=nn.Linear(4, 4), input_shape=(2, 4)))
    assert "module: expected a class or lambda" in text and "found an already built Linear instance" in text


def test_an_absurd_shape_is_a_problem_not_a_crash():
    from torch import nn

    text = _problem(Workload(name="huge", module=lambda: nn.Linear(8, 8), input_shape=(2**40, 2**30, 8)))
    assert "workload 'huge': input_shape: expected a tensor size torch can address" in text


def test_conv1d_input_error_says_length():
    from torch import nn

    text = _problem(Workload(name="c1", module=lambda: nn.Conv1d(3, 4, 3), input_shape=(2, 3, 8, 8)))
    assert "[N, C, L]" in text


def test_an_in_place_layer_is_not_a_view():
    from torch import nn

    plan = plan_one(Workload(name="relu", module=lambda: nn.ReLU(inplace=True), input_shape=(2, 4)), "cfg.py")
    assert not plan.is_view and plan.bytes_moved == 2 * 2 * 4 * 4  # read and written once
    flat = plan_one(Workload(name="flat", module=nn.Flatten, input_shape=(2, 2, 2)), "cfg.py")
    assert flat.is_view and flat.bytes_moved == 0
