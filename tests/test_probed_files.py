"""Run folders that once passed where they should not: an interrupted run, a header-only run, duplicate samples,
a samples.csv without its process column, a NUL byte, a shape that is no shape, and things that stand where a
file should (a folder, a FIFO, a symbolic link loop). Each is said in one line (or a warning for an incomplete
run that is still usable), never accepted silently."""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bench
from bench.cli.main import main
from bench.errors import BenchError, Problem
from bench.store.runs import load

ROOT = Path(__file__).resolve().parent.parent


def cli(capsys, *argv):
    """(exit status, stdout, stderr) of the command line, asserting no traceback reaches stderr."""
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return status, out, err.strip()


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> Path:
    """A real run folder of two smoke rows, measured in this process with a tiny budget."""
    out = tmp_path_factory.mktemp("measured")
    status = main(["run", str(ROOT / "configs" / "smoke.py"), "--device", "cpu", "--filter", "smoke-linear,flatten",
                   "--budget-s", "0.02", "--warmup-s", "0", "--out", str(out), "--store", "none"])
    assert status == 0
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    return run_dir


@pytest.fixture
def run_dir(measured, tmp_path) -> Path:
    """A fresh copy of the measured run folder, for one test to spoil."""
    return Path(shutil.copytree(measured, tmp_path / "run"))


def interrupted(run_dir: Path) -> Path:
    env = json.loads((run_dir / "env.json").read_text())
    env.update(complete=False, incomplete_reason="interrupted (Ctrl-C or SIGTERM)")
    (run_dir / "env.json").write_text(json.dumps(env))
    return run_dir


def header_only(run_dir: Path) -> Path:
    for name in ("results.csv", "samples.csv"):
        path = run_dir / name
        path.write_text(path.read_text().splitlines(keepends=True)[0])
    return run_dir


# ---------------------------------------------------------------- an incomplete run
@pytest.mark.parametrize("command", ["report", "plot", "export"])
def test_report_plot_and_export_warn_about_an_incomplete_run(run_dir, capsys, command):
    interrupted(run_dir)
    argv = [command, run_dir] + (["--out", run_dir.parent / "rep"] if command == "report" else [])
    status, _, err = cli(capsys, *argv)
    assert status == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "incomplete" in warnings[0] and "interrupted" in warnings[0], err
    assert str(run_dir) in warnings[0]


def test_a_complete_run_gets_no_warning(run_dir, capsys):
    status, _, err = cli(capsys, "export", run_dir)
    assert status == 0 and "warning" not in err


def test_history_import_refuses_an_incomplete_run_unless_allowed_and_marks_it(run_dir, tmp_path, capsys, one_line):
    interrupted(run_dir)
    store = tmp_path / "h.sqlite"
    status, _, err = cli(capsys, "history", "import", run_dir, "--store", store)
    assert status == 2
    one_line(err, str(run_dir / "env.json"), "complete", "--allow-incomplete")
    assert not store.exists() or not sqlite3.connect(store).execute("SELECT count(*) FROM bench_runs").fetchone()[0]

    status, out, err = cli(capsys, "history", "import", run_dir, "--store", store, "--allow-incomplete")
    assert status == 0 and "1 run(s) added" in out and "incomplete" in out, out
    assert sqlite3.connect(store).execute("SELECT complete FROM bench_runs").fetchall() == [("false",)]

    # `history` shows the run's rows, marked, and judges no change point on them
    status, out, err = cli(capsys, "history", "--store", store, "--out", tmp_path / "trends")
    assert status == 0, err
    assert "1 incomplete" in out and "not judged" in out, out
    shown = pd.read_csv(tmp_path / "trends" / "history.csv")
    assert len(shown) == 2 and set(shown["complete"]) == {False} and shown["suite_factor"].isna().all()
    h = bench.history(store=store)
    assert set(h.frame["complete"]) == {"false"} and h.values.empty and h.changes.empty


def test_a_complete_run_is_stored_as_complete(run_dir, tmp_path, capsys):
    store = tmp_path / "h.sqlite"
    assert cli(capsys, "history", "import", run_dir, "--store", store)[0] == 0
    assert sqlite3.connect(store).execute("SELECT complete FROM bench_runs").fetchall() == [("true",)]
    assert set(bench.history(store=store).frame["complete"]) == {"true"}


def test_a_store_of_schema_2_gains_the_complete_column(run_dir, tmp_path, capsys):
    store = tmp_path / "old.sqlite"
    assert cli(capsys, "history", "import", run_dir, "--store", store)[0] == 0
    with sqlite3.connect(store) as db:  # as bench of store schema 2 left it: no complete column
        db.execute("ALTER TABLE bench_runs DROP COLUMN complete")
        db.execute("UPDATE bench_meta SET value = '2' WHERE name = 'schema_version'")
    h = bench.history(store=store)
    assert set(h.frame["complete"]) == {""} and len(h.values)  # unknown counts as complete: judged as before
    assert sqlite3.connect(store).execute("SELECT value FROM bench_meta").fetchone() == ("3",)


# ---------------------------------------------------------------- a header-only run
@pytest.mark.parametrize("command", ["report", "plot", "export", "history import"])
def test_a_header_only_run_is_no_rows_in_one_line(run_dir, tmp_path, capsys, one_line, command):
    header_only(run_dir)
    extra = {"report": ["--out", tmp_path / "rep"], "history import": ["--store", tmp_path / "h.sqlite"]}
    status, out, err = cli(capsys, *command.split(), run_dir, *extra.get(command, []))
    assert status == 2 and not out.strip()
    one_line(err, str(run_dir / "results.csv"), "no rows")


# ---------------------------------------------------------------- loaders
def load_error(path, one_line, *needles) -> str:
    with pytest.raises(BenchError) as info:
        load(path)
    return one_line(str(info.value), *needles)


def test_duplicate_lines_in_samples_csv_are_refused(run_dir, one_line):
    path = run_dir / "samples.csv"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:3] + [lines[2]] + lines[3:]))  # the second sample twice, as line 4
    load_error(run_dir, one_line, f"{path}:4", "process, sample", "a duplicate")


def test_samples_without_their_process_column_are_refused_when_results_has_processes(run_dir, one_line):
    path = run_dir / "samples.csv"
    pd.read_csv(path, dtype=str, keep_default_na=False).drop(columns="process").to_csv(path, index=False)
    load_error(run_dir, one_line, str(path), "process", "n_processes")


def test_samples_of_a_run_from_before_worker_processes_still_load(run_dir):
    """A run folder from before worker processes has neither results' n_processes nor samples' process."""
    for name, column in (("results.csv", "n_processes"), ("samples.csv", "process")):
        path = run_dir / name
        pd.read_csv(path, dtype=str, keep_default_na=False).drop(columns=column).to_csv(path, index=False)
    assert set(load(run_dir).samples["process"]) == {0}


def test_a_nul_byte_in_the_results_header_is_refused(run_dir, one_line):
    path = run_dir / "results.csv"
    path.write_bytes(path.read_bytes().replace(b"median_s", b"median\x00_s", 1))
    text = load_error(run_dir, one_line, str(path), "NUL")
    assert "\x00" not in text


def test_a_nul_byte_in_a_cell_is_refused(run_dir, one_line):
    path = run_dir / "results.csv"
    path.write_bytes(path.read_bytes().replace(b"smoke,", b"sm\x00oke,", 1))
    assert "\x00" not in load_error(run_dir, one_line, f"{path}:2", "tags", "NUL")


@pytest.mark.parametrize("column", ["input_shape", "output_shape"])
@pytest.mark.parametrize("text", ["garbage", "[16, -1]", "[1.5]", "16, 64"])
def test_a_shape_that_is_no_shape_is_refused(run_dir, one_line, column, text):
    path = run_dir / "results.csv"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.loc[0, column] = text
    frame.to_csv(path, index=False)
    load_error(run_dir, one_line, f"{path}:2", column, "[16, 64]", repr(text))


def test_shapes_as_written_load(run_dir):
    frame = load(run_dir).results
    assert frame["input_shape"].str.startswith("[").all()


# ---------------------------------------------------------------- what stands where a file should
def test_a_folder_a_fifo_and_a_link_loop_are_named_for_what_they_are(run_dir, tmp_path, one_line):
    (run_dir / "results.csv").unlink()
    (run_dir / "results.csv").mkdir()
    load_error(run_dir, one_line, str(run_dir / "results.csv"), "a folder")
    shutil.rmtree(run_dir / "results.csv")
    os.symlink("results.csv", run_dir / "results.csv")
    load_error(run_dir, one_line, str(run_dir / "results.csv"), "a symbolic link loop")
    (run_dir / "results.csv").unlink()
    os.mkfifo(run_dir / "results.csv")
    load_error(run_dir, one_line, str(run_dir / "results.csv"), "a FIFO")
    (run_dir / "results.csv").unlink()
    load_error(run_dir, one_line, str(run_dir / "results.csv"), "no such file")
    (run_dir / "env.json").unlink()
    (run_dir / "env.json").mkdir()
    load_error(run_dir, one_line, str(run_dir / "env.json"), "a folder")


def test_a_config_that_is_a_folder_or_fifo_is_named_for_what_it_is(tmp_path, capsys, one_line):
    (tmp_path / "dir.py").mkdir()
    os.mkfifo(tmp_path / "pipe.py")
    os.symlink("loop.py", tmp_path / "loop.py")
    for name, what in (("dir.py", "a folder"), ("pipe.py", "a FIFO"), ("loop.py", "a symbolic link loop"),
                       ("none.py", "no such file")):
        status, _, err = cli(capsys, "list", tmp_path / name)
        assert status == 2
        one_line(err, name, what)


# ---------------------------------------------------------------- messages
def test_numpy_scalars_print_as_plain_numbers():
    assert str(Problem(where="x", field="f", expected="a number", found=repr(np.float64("inf")))) == \
        "x: f: expected a number, found inf"
    assert str(Problem(where="x", found=f"{np.int64(3)!r} and {np.True_!r} and {np.str_('a')!r}")) == \
        "x: 3 and True and 'a'"


def test_an_infinite_time_prints_as_inf(run_dir, one_line):
    path = run_dir / "samples.csv"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.loc[0, "device_s"] = "inf"
    frame.to_csv(path, index=False)
    text = load_error(run_dir, one_line, f"{path}:2", "device_s", "found inf")
    assert "np." not in text


def test_a_non_ascii_name_is_refused_as_not_ascii(write_config, capsys, one_line):
    path = write_config("""
        from torch import nn
        from bench import Workload
        WORKLOADS = [Workload(name="lineär", module=lambda: nn.Linear(4, 4), input_shape=(2, 4))]
    """)
    status, _, err = cli(capsys, "list", path)
    assert status == 2 and "ASCII letters" in err, err
    status, _, err = cli(capsys, "run", path, "--label", "läbel")
    assert status == 2 and "ASCII letters" in err, err
