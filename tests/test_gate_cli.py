"""The gate's commands through bench.cli.main.main: every exit status, every bad input, the reports' content."""
from __future__ import annotations

import json

import pandas as pd
import pytest
from test_compare import samples, write_run

from bench.cli.main import main
from bench.schema import SCHEMA_VERSION

TINY = ["--device", "cpu", "--budget-s", "0.05", "--warmup-s", "0.01", "--min-samples", "3"]


@pytest.fixture
def runs(tmp_path):
    base = write_run(tmp_path / "base", {"a": samples(1e-3), "b": samples(2e-3), "gone": samples(1e-3)})
    same = write_run(tmp_path / "same", {"a": samples(1e-3, seed=1), "b": samples(2e-3, seed=2), "new": samples(1e-3)})
    slow = write_run(tmp_path / "slow", {"a": samples(1.3e-3, seed=1), "b": samples(2e-3, seed=2)})
    return base, same, slow


def test_exit_0_when_nothing_is_slower(runs, capsys):
    base, same, _ = runs
    assert main(["compare", str(base), str(same), "--allow-missing"]) == 0  # "gone" is missing: allowed
    out = capsys.readouterr().out
    assert "added (only in the candidate): new" in out and "removed (only in the baseline): gone" in out
    assert (same / "gate.md").is_file() and (same / "gate.png").is_file()


def test_exit_1_when_something_is_slower_and_the_markdown_report(runs, tmp_path, capsys):
    base, _, slow = runs
    md = tmp_path / "pr" / "comment.md"
    assert main(["compare", str(base), str(slow), "--markdown", str(md), "--allow-missing"]) == 1
    text = md.read_text()
    assert text.startswith("### ❌ 1 row(s) slower")
    assert "| a / cpu / float32 | 🔴 slower |" in text
    assert "removed (only in the baseline): gone / cpu / float32" in text  # untrusted text: md_text, not a code span
    assert "Environments match." in text and "Mann-Whitney" in text
    assert (slow / "gate.md").read_text() == text
    assert "1 slower" in capsys.readouterr().out


def test_threshold_option(runs):
    base, _, slow = runs
    assert main(["compare", str(base), str(slow), "--threshold", "80%", "--allow-missing"]) == 0
    assert main(["compare", str(base), str(slow), "--threshold", "0.1", "--allow-missing"]) == 1


@pytest.mark.parametrize("value", ["abc", "0%", "-5%", "2000%"])
def test_bad_threshold_is_usage_error(runs, value, capsys):
    base, same, _ = runs
    assert main(["compare", str(base), str(same), "--threshold", value]) == 2
    assert "--threshold" in capsys.readouterr().err


def test_environment_mismatch_exit_2_unless_allowed(runs, tmp_path, capsys):
    base = runs[0]
    other = write_run(tmp_path / "other", {"a": samples(1e-3)}, env={"threads": 2})
    assert main(["compare", str(base), str(other), "--allow-missing"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "env.json: threads: expected 1" in err and "found 2" in err
    assert main(["compare", str(base), str(other), "--allow-env-mismatch", "--allow-missing"]) == 0
    text = (other / "gate.md").read_text()
    assert "(compared anyway: `--allow-env-mismatch`)" in text and "| threads | 1 | 2 | yes |" in text


def _corrupt(folder, name, text):
    (folder / name).write_text(text)
    return folder


@pytest.mark.parametrize("damage, message", [
    (lambda f: f / "missing", "no such folder"),
    (lambda f: _corrupt(f, "results.csv", "nonsense\n\"unclosed"), "results.csv"),
    (lambda f: _corrupt(f, "samples.csv", "workload,device\n"), "samples.csv: expected columns"),
    (lambda f: _corrupt(f, "env.json", "{not json"), "env.json: expected valid JSON"),
    (lambda f: _corrupt(f, "env.json", json.dumps({"schema_version": SCHEMA_VERSION + 1})), "schema_version"),
    (lambda f: _corrupt(f, "noise.csv", "workload,device,dtype,noise\na,cpu,float32,x\n"), "noise.csv"),
])
def test_bad_input_is_one_line_and_exit_2(runs, damage, message, capsys):
    base, same, _ = runs
    broken = damage(base)
    assert main(["compare", str(broken), str(same)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_baseline_promote_and_where(runs, tmp_path, capsys):
    base = runs[0]
    assert main(["baseline", str(base), "--root", str(tmp_path / "store")]) == 0
    assert "baseline: " in capsys.readouterr().out
    assert (tmp_path / "store" / "baselines" / "cpu-test-cpu-0000" / "results.csv").is_file()
    assert main(["baseline", "--where", "--root", str(tmp_path / "store")]) == 0
    assert capsys.readouterr().out.strip().startswith(str(tmp_path / "store" / "baselines" / "cpu-"))
    assert main(["baseline", "--root", str(tmp_path / "store")]) == 2
    assert "RUN" in capsys.readouterr().err


def test_end_to_end_run_calibrate_compare(tmp_path, capsys):
    """Real (tiny) measurements in this process: too few processes to decide, so every row is unsure, and a job that
    cannot judge its rows is not a pass: exit 2, with one line saying how many rows, why and what would resolve it."""
    store = tmp_path / "store"
    assert main(["calibrate", "smoke", "--repeats", "2", "--root", str(store), *TINY[:-2], "--min-samples", "3"]) == 0
    (folder,) = list((store / "baselines").iterdir())
    assert (folder / "noise.csv").is_file() and (folder / "results.csv").is_file()
    assert main(["run", "smoke", "--out", str(tmp_path / "runs"), *TINY]) in (0, 1)
    (cand,) = list((tmp_path / "runs").iterdir())
    capsys.readouterr()
    assert main(["compare", str(folder), str(cand)]) == 2
    out, err = capsys.readouterr()
    assert "unsure" in out and "too few processes" in out
    (last,) = err.strip().splitlines()
    assert last.startswith("NOT A VERDICT: ") and "too few processes" in last and "--processes 7" in last


def test_workload_threshold_from_the_config_reaches_the_verdict(write_config, tmp_path, capsys):
    cfg = write_config("""
        from torch import nn
        from bench import Workload
        WORKLOADS = [Workload(name="tiny", module=lambda: nn.Linear(8, 4), input_shape=(2, 8), threshold=0.5)]
    """)
    for out in ("a", "b"):
        assert main(["run", str(cfg), "--out", str(tmp_path / out), *TINY[:-1], "8"]) == 0
    (a,), (b,) = (list((tmp_path / out).iterdir()) for out in ("a", "b"))
    capsys.readouterr()
    assert main(["compare", str(a), str(b)]) == 2  # one process a side (BENCH_PROCESSES=0): not judged
    assert "50% (workload)" in capsys.readouterr().out


def test_markdown_names_the_rule_the_code_uses(runs):
    """The footnote describes the Hodges-Lehmann ratio and the rank (Moses) interval, not a bootstrap."""
    base, _, slow = runs
    main(["compare", str(base), str(slow), "--allow-missing"])
    rule = [line for line in (slow / "gate.md").read_text().splitlines() if line.startswith("<sub>Rule")]
    assert len(rule) == 1
    assert "Hodges-Lehmann" in rule[0] and "median of all pairwise ratios" in rule[0]
    assert "distribution-free rank interval" in rule[0] and "Moses" in rule[0]
    assert "bootstrap" not in rule[0] and "ratio of medians" not in rule[0]


def _not_applicable_run(folder):
    """A run with an ok row and a variant that cannot run on the CPU (as `bench run --variants cuda_graph` writes)."""
    run = write_run(folder, {"a": samples(1e-3), ("a", "cpu", "float32", "cuda_graph"): []})
    results = pd.read_csv(run / "results.csv")
    results.loc[1, ["status", "reason"]] = ["not-applicable", "CUDA graph replay needs a CUDA device"]
    results.to_csv(run / "results.csv", index=False)
    return run


def test_not_applicable_rows_pass_baseline_and_are_listed_apart_by_compare(tmp_path, capsys):
    run = _not_applicable_run(tmp_path / "run")
    assert main(["baseline", str(run), "--root", str(tmp_path / "store")]) == 0
    assert main(["compare", str(run), str(run)]) == 0
    out = capsys.readouterr().out
    assert "cuda_graph" not in out.split("not compared")[0]  # not in the verdict table
    assert "0 slower, 0 unsure, 1 same, 0 faster; 1 row(s) not applicable on both sides" in out
    assert "not compared: 1 row(s) not applicable on both sides" in out and "a / cuda_graph / cpu / float32" in out
    assert "a / cuda\\_graph / cpu / float32" in (run / "gate.md").read_text()  # Markdown-escaped (md_text)


@pytest.mark.slow
def test_real_not_applicable_rows_through_run_baseline_compare(write_config, tmp_path, capsys):
    cfg = write_config("""
        from torch import nn
        from bench import Workload
        WORKLOADS = [Workload(name="tiny", module=lambda: nn.Linear(8, 4), input_shape=(2, 8))]
    """)
    assert main(["run", str(cfg), "--variants", "cuda_graph", "--out", str(tmp_path / "runs"), *TINY]) == 0
    (run,) = list((tmp_path / "runs").iterdir())
    assert "not-applicable" in set(pd.read_csv(run / "results.csv")["status"])
    capsys.readouterr()
    assert main(["baseline", str(run), "--root", str(tmp_path / "store")]) == 0
    assert main(["compare", str(run), str(run)]) == 2  # one process a side (BENCH_PROCESSES=0): not judged
    out = capsys.readouterr().out
    assert "1 row(s) not applicable on both sides" in out and "0 slower, 1 unsure" in out


def test_unwritable_markdown_path_is_one_line(runs, tmp_path, capsys, one_line):
    base, same, _ = runs
    (tmp_path / "afile").write_text("")
    target = tmp_path / "afile" / "x.md"
    assert main(["compare", str(base), str(same), "--markdown", str(target), "--allow-missing"]) == 2
    one_line(capsys.readouterr().err.strip(), f"{target}: --markdown", "expected a writable file path",
             f"found {tmp_path / 'afile'} is a file, not a folder")
    # a folder, not a file
    assert main(["compare", str(base), str(same), "--markdown", str(tmp_path), "--allow-missing"]) == 2
    one_line(capsys.readouterr().err.strip(), f"{tmp_path}: --markdown", "expected a writable file path")


@pytest.mark.parametrize("option, value, needle", [
    ("--threads", "-3", "expected an integer >= 1, found '-3'"),
    ("--threads", "0", "expected an integer >= 1, found '0'"),
    ("--threads", "two", "expected an integer >= 1, found 'two'"),
    ("--repeats", "1", "expected an integer >= 2, found '1'"),
    ("--repeats", "1.5", "expected an integer >= 2, found '1.5'"),
    ("--min-samples", "-1", "expected an integer >= 1"),
])
def test_calibrate_bad_numbers_are_one_line(option, value, needle, capsys, one_line):
    assert main(["calibrate", "smoke", option, value]) == 2
    one_line(capsys.readouterr().err.strip(), "calibrate", option, needle)


@pytest.mark.parametrize("value", ["abc", "0%", "-5%", "2000%", "nan", "%"])
def test_bad_threshold_is_one_line(runs, value, capsys, one_line):
    base, same, _ = runs
    assert main(["compare", str(base), str(same), f"--threshold={value}"]) == 2
    one_line(capsys.readouterr().err.strip(), "compare", "--threshold", repr(value))


def test_compare_refuses_a_folder_of_rounds_that_do_not_belong_together(runs, tmp_path, capsys, one_line):
    base = runs[0]
    argv = ["bench", "run", "smoke", "--budget-s", "0.3", "--out", "x"]
    write_run(tmp_path / "rounds" / "r1", {"a": samples(1e-3), "b": samples(2e-3)}, env={"argv": argv})
    write_run(tmp_path / "rounds" / "r2", {"a": samples(1e-3), "b": samples(2e-3)},
              env={"argv": argv[:4] + ["0.05"] + argv[5:]})
    assert main(["compare", str(base), str(tmp_path / "rounds")]) == 2
    one_line(capsys.readouterr().err.strip(), str(tmp_path / "rounds"), "argv", "'--budget-s 0.3' as in r1",
             "'--budget-s 0.05' in r2")


@pytest.mark.parametrize("name, column, command", [
    ("samples.csv", "device_s", "compare"), ("results.csv", "threshold", "compare"),
    ("samples.csv", "device_s", "export"),
])
def test_non_numeric_cell_is_one_line_naming_the_file(runs, name, column, command, capsys, one_line):
    base, same, _ = runs
    frame = pd.read_csv(base / name)
    frame[column] = frame[column].astype(object)
    frame.loc[0, column] = "abc"
    frame.to_csv(base / name, index=False)
    args = (["compare", str(base), str(same)] if command == "compare"
            else ["export", str(base), "--format", "pytest-benchmark"])
    assert main(args) == 2
    one_line(capsys.readouterr().err.strip(), str(base / name), column, "abc")
