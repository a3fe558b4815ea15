"""Disk full and interruption: one line and exit 4 for "cannot write", results and samples always a consistent
pair, no partial or temporary file, the reason recorded; interruptions keep what was measured."""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from bench.cli.main import main

FAST = ["--device", "cpu", "--budget-s", "0.01", "--warmup-s", "0", "--min-samples", "3"]
CONFIG = """
    from torch import nn
    from bench import Workload
    WORKLOADS = [Workload(name=f"lin{i}", module=lambda: nn.Linear(8, 4), input_shape=(2, 8)) for i in range(4)]
"""
ROOT = Path(__file__).resolve().parent.parent


def no_temporary_files(folder: Path) -> None:
    left = [p.name for p in folder.rglob("*") if p.name.startswith(".") or p.name.endswith((".tmp", ".tmp.png"))]
    assert left == [], left


def consistent_pair(run_dir: Path) -> list[str]:
    results = pd.read_csv(run_dir / "results.csv", dtype=str, keep_default_na=False)
    samples = pd.read_csv(run_dir / "samples.csv", dtype=str, keep_default_na=False)
    assert set(samples["workload"]) == set(results[results["status"] == "ok"]["workload"])
    return results["workload"].tolist()


@pytest.fixture
def cfg(write_config):
    return write_config(CONFIG)


def test_a_full_disk_mid_run_is_exit_4_in_one_line_and_keeps_a_whole_pair(cfg, tmp_path, capsys, monkeypatch):
    """The third save of results.csv + samples.csv fails with ENOSPC: the folder keeps the rows saved before it."""
    import bench.store.files as writer

    real, calls = writer.os.fsync, []

    def fsync(fd):  # os is one module: this sees every write; only the data pair's count
        if os.readlink(f"/proc/self/fd/{fd}").rsplit("/", 1)[-1].startswith((".results.csv.", ".samples.csv.")):
            calls.append(fd)
            if len(calls) > 2 * 3:  # the header-only pair, then two rows' pairs: 2 files each
                raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    monkeypatch.setattr(writer.os, "fsync", fsync)
    status = main(["run", str(cfg), "--out", str(tmp_path / "runs"), *FAST])
    err = capsys.readouterr().err
    (run_dir,) = (tmp_path / "runs").iterdir()
    last = err.strip().splitlines()[-1]
    assert status == 4 and "Traceback" not in err
    assert last == f"cannot write: {run_dir}: expected a folder with free space that bench can write, " \
                   f"found No space left on device"
    assert consistent_pair(run_dir) == ["lin0", "lin1"]
    env = json.loads((run_dir / "env.json").read_text())
    assert env["complete"] is False and env["incomplete_reason"].startswith("cannot write: ")
    no_temporary_files(tmp_path / "runs")


def test_when_nothing_at_all_can_be_written_still_one_line_and_no_temporary_file(cfg, tmp_path, capsys, monkeypatch):
    import bench.store.files as files
    import bench.store.files as writer

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writer.os, "fsync", full)
    monkeypatch.setattr(files.os, "fsync", full)
    status = main(["run", str(cfg), "--out", str(tmp_path / "runs"), *FAST])
    err = capsys.readouterr().err
    assert status == 4 and "Traceback" not in err and err.count("cannot write") == 1
    no_temporary_files(tmp_path / "runs")


def test_a_report_that_cannot_be_written_leaves_no_empty_figure(cfg, tmp_path, capsys, monkeypatch):
    assert main(["run", str(cfg), "--out", str(tmp_path / "runs"), *FAST]) == 0
    import bench.store.files as files

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", full)
    status = main(["report", str(tmp_path / "runs"), "--out", str(tmp_path / "rep")])
    err = capsys.readouterr().err
    assert status == 4 and "cannot write" in err and "Traceback" not in err
    assert [p for p in (tmp_path / "rep").iterdir() if p.suffix == ".png" and p.stat().st_size == 0] == []
    no_temporary_files(tmp_path / "rep")


def test_interrupted_before_the_folder_holds_anything_leaves_no_empty_folder(cfg, tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt("signal 15")

    monkeypatch.setattr("bench.api.running.RunRecorder", interrupted)
    assert main(["run", str(cfg), "--out", str(tmp_path / "runs"), *FAST]) == 130
    assert list((tmp_path / "runs").iterdir()) == []


def test_interrupted_after_the_last_row_still_draws_the_plot_and_records_why(cfg, tmp_path, capsys, monkeypatch):
    import bench.api.running as running

    real = running.run_suite

    def then_interrupted(*args, **kwargs):
        real(*args, **kwargs)
        raise KeyboardInterrupt("signal 2")

    monkeypatch.setattr(running, "run_suite", then_interrupted)
    assert main(["run", str(cfg), "--out", str(tmp_path / "runs"), *FAST]) == 130
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert (run_dir / "latency.png").stat().st_size > 1000
    assert consistent_pair(run_dir) == ["lin0", "lin1", "lin2", "lin3"]
    env = json.loads((run_dir / "env.json").read_text())
    assert env["complete"] is False and env["incomplete_reason"] == "interrupted"


def test_a_run_folder_is_a_loadable_incomplete_run_from_its_first_moment(tmp_path):
    from bench import load
    from bench.store.recorder import RunRecorder

    RunRecorder(tmp_path, {"torch": "x"})
    run = load(tmp_path)
    assert not run.complete and len(run.results) == 0 and len(run.samples) == 0


@pytest.fixture
def tiny_disk(tmp_path):
    """A 300 kB tmpfs (needs root and mount; skipped elsewhere)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root): " + done.stderr.decode().strip()[:80])
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_real_full_disk_through_the_command_line(tiny_disk, write_config):
    """`bench run` in a separate process, on a 300 kB disk that fills up mid-run."""
    # a long note makes each row about 8 kB in results.csv: the disk fills up after a few dozen rows
    cfg = write_config(textwrap.dedent(CONFIG).replace("range(4)", "range(40)").replace(
        "input_shape=(2, 8))", "input_shape=(2, 8), note='x' * 8000)"), name="forty.py")
    done = subprocess.run([sys.executable, "-m", "bench", "run", str(cfg), "--out", str(tiny_disk), *FAST,
                           "--budget-s", "0.05"], capture_output=True, text=True, cwd=ROOT, timeout=600,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert done.returncode == 4, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and done.stderr.strip().splitlines()[-1].startswith("cannot write: ")
    (run_dir,) = [p for p in tiny_disk.iterdir() if p.is_dir()]
    rows = consistent_pair(run_dir)
    assert 0 < len(rows) < 40
    no_temporary_files(tiny_disk)


@pytest.mark.parametrize("fails", ["gate.md", "gate.png"])
def test_compare_that_cannot_write_its_report_is_exit_4(cfg, tmp_path, capsys, monkeypatch, fails):
    for side in ("a", "b"):
        assert main(["run", str(cfg), "--out", str(tmp_path / side), *FAST]) == 0
    import bench.store.files as files

    real = files.os.replace

    def replace(src, dst):
        if str(dst).endswith(fails):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(files.os, "replace", replace)
    capsys.readouterr()
    status = main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "gate")])
    err = capsys.readouterr().err
    assert status == 4 and err.strip().splitlines()[-1].startswith("cannot write: ") and fails in err
    assert "Traceback" not in err
    no_temporary_files(tmp_path / "gate")
