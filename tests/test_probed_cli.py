"""The command line under probing: prints of a module while `list --json` plans it, a signal at any early moment
of `run`, the help texts' defaults, options that mean the same in every command, and what `run` says before
and while it imports its configs."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

import bench.cli.run as run_cli
from bench.cli.main import build_parser, main
from bench.cli.run import estimate

ROOT = Path(__file__).resolve().parent.parent

PRINTING = """
    from torch import nn
    from bench import Workload

    class Chatty(nn.Module):
        def __init__(self):
            super().__init__()
            print("building Chatty")
            self.linear = nn.Linear(4, 4)

        def forward(self, x):
            print("Chatty forward on", x.device)
            return self.linear(x)

    print("config imported")
    WORKLOADS = [Workload(name="chatty", module=Chatty, input_shape=(2, 4))]
"""


def cli(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return status, out, err


# ---------------------------------------------------------------- list --json
def test_list_json_stdout_is_json_whatever_a_module_prints(write_config, capsys):
    status, out, err = cli(capsys, "list", write_config(PRINTING), "--json")
    assert status == 0, err
    assert [w["name"] for w in json.loads(out)] == ["chatty"]
    assert "building Chatty" in err and "Chatty forward" in err and "config imported" in err


def test_list_json_parses_in_a_pipe(write_config):
    """As a user runs it: `layerbench list cfg.py --json | python -m json.tool`."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "bench", "list", str(write_config(PRINTING)), "--json"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["name"] == "chatty"


# ---------------------------------------------------------------- signals
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("after_s", [0.2, 0.8, 1.5])
def test_a_signal_at_any_early_moment_of_run_is_one_line_and_exit_130(tmp_path, signum, after_s):
    """The moments are counted from the end of the interpreter's start (a sitecustomize module marks it): they land
    while torch loads, while the config is imported or planned, or while a row is timed; the answer is the same
    whichever. Before bench/__main__.py's first lines (Python starting, runpy importing the bench package, a few
    milliseconds) a signal is Python's own to handle. Nothing here asserts how long anything takes."""
    marker, started = tmp_path / "site", tmp_path / "started"
    marker.mkdir()
    (marker / "sitecustomize.py").write_text(f"open({str(started)!r}, 'w').close()\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(marker)]), BENCH_PROCESSES="0",
               BENCH_STORE="none")
    proc = subprocess.Popen([sys.executable, "-m", "bench", "run", str(ROOT / "configs" / "smoke.py"), "--device",
                             "cpu", "--budget-s", "5", "--out", str(tmp_path / "out")], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for _ in range(6000):  # at most a minute on a loaded machine
            if started.exists() or proc.poll() is not None:
                break
            time.sleep(0.01)
        time.sleep(after_s)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert "Traceback" not in err, err
    assert proc.returncode == 130, (proc.returncode, err)
    assert err.strip().splitlines()[-1].startswith("interrupted"), err


def test_sigterm_in_process_is_restored_after_main(capsys):
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    assert cli(capsys, "list", "smoke")[0] == 0
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


# ---------------------------------------------------------------- help texts and options that agree
def _subparsers():
    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.choices and isinstance(a.choices, dict)]
    return sub.choices


@pytest.mark.parametrize("name", sorted(_subparsers()))
def test_help_shows_each_default_once_and_never_an_empty_one(name):
    text = " ".join(_subparsers()[name].format_help().split())
    assert not re.search(r"\(default: [^)]*\) \(default:", text), text
    assert "(default: )" not in text and "(default: None)" not in text, text


def test_history_device_offers_no_empty_choice(capsys):
    device = next(a for a in _subparsers()["history"]._actions if "--device" in a.option_strings)
    assert "" not in device.choices and "all" in device.choices


def test_ab_help_says_one_of_base_ref_and_base_python_is_required():
    text = " ".join(_subparsers()["ab"].format_help().split())
    assert "this or --base-python is required" in text and "this or --base-ref is required" in text


@pytest.mark.parametrize("command", [["run", "smoke"], ["peaks"], ["ab", "smoke", "--base-ref", "HEAD"],
                                     ["calibrate", "smoke"]])
def test_threads_0_is_refused_alike_everywhere(capsys, command):
    status, _, err = cli(capsys, *command, "--threads", "0")
    assert status == 2 and "--threads" in err and "expected an integer >= 1, found '0'" in err, err


# ---------------------------------------------------------------- what run says before the configs load
def test_run_announces_a_config_that_is_slow_to_load_while_it_loads(write_config, tmp_path, capsys, monkeypatch):
    """The config's import waits until `run` has said it is loading (LOADING_NOTE_AFTER_S in): the line comes while
    the import is under way, whatever the machine's speed."""
    announced = threading.Event()
    monkeypatch.setitem(sys.modules, "loading_probe", SimpleNamespace(announced=announced))
    say = run_cli.err

    def err(text):
        say(text)
        if text.startswith("loading"):
            announced.set()

    monkeypatch.setattr(run_cli, "err", err)
    path = write_config("import loading_probe\nassert loading_probe.announced.wait(120)\n" + textwrap.dedent(PRINTING))
    status, _, err_text = cli(capsys, "run", path, "--device", "cpu", "--budget-s", "0.01", "--warmup-s", "0",
                              "--out", tmp_path / "out")
    assert status == 0, err_text
    lines = err_text.splitlines()
    loading = next(i for i, line in enumerate(lines) if line.startswith("loading"))
    assert loading < lines.index("config imported") and "cfg.py" in lines[loading]


def test_a_config_that_loads_quickly_keeps_a_mistake_to_one_line(write_config, tmp_path, capsys, one_line):
    status, _, err_text = cli(capsys, "run", tmp_path / "missing.py", "--out", tmp_path)
    assert status == 2
    one_line(err_text, "missing.py", "no such file")


def test_the_estimate_says_what_it_knows_and_never_at_least_0_s():
    text = estimate(SimpleNamespace(least_s=0.04, processes=7, min_processes=7), load_s=60.0)
    assert "at least 0 s" not in text and "40" in text
    assert "7 worker starts" in text and "not known" in text and "60" in text
    # rows that reach their precision stop at the minimum: that many starts at least
    assert "3 worker starts" in estimate(SimpleNamespace(least_s=1.0, processes=7, min_processes=3), load_s=1.0)
    assert "worker" not in estimate(SimpleNamespace(least_s=12.0, processes=0), load_s=0.1)
    assert "0 s" not in estimate(SimpleNamespace(least_s=0.0, processes=0), load_s=0.1)
