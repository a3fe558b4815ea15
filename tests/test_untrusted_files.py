"""The gate fails closed: files bench did not write whole (cut, killed, hand-edited, corrupt) never pass as a
clean comparison. Each test is a probe that once exited 0 or crashed; now it is one line and exit 2."""
from __future__ import annotations

import errno
import json
import os
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_compare import ENV, samples, write_run
from torch import nn

import bench
from bench.cli.main import main
from bench.errors import BenchError
from bench.gate.baseline import load_noise
from bench.gate.compare import compare_runs
from bench.gate.rule import decide
from bench.measure.record import Record
from bench.measure.sampling import Measurement
from bench.stats import MAX_PAIRS, mann_whitney_p, ratio_interval, thinned_sizes
from bench.store.files import read_csv
from bench.store.peaks import read_peaks_file
from bench.store.recorder import RunRecorder
from bench.store.runs import load
from bench.suite.plan import plan_one
from bench.suite.workload import Workload

KEY = ENV["machine_keys"]["cpu"]


def cli(capsys, *argv):
    """(exit status, stdout, stderr) of the command line, asserting no traceback ever reaches stderr."""
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return status, out, err.strip()


def refused(capsys, one_line, *argv, needles=()):
    """The command exits 2 with one line on stderr naming every needle."""
    status, _, err = cli(capsys, *argv)
    assert status == 2, err
    return one_line(err, *needles)


def set_cell(path: Path, row: int, column: str, text: str) -> None:
    """Write `text` into one cell of a CSV (row 0 is the file's line 2), every other cell as it was."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.loc[row, column] = text
    frame.to_csv(path, index=False)


def load_error(path) -> str:
    with pytest.raises(BenchError) as info:
        load(path)
    text = str(info.value)
    assert "\n" not in text and "Traceback" not in text, text
    return text


@pytest.fixture
def pair(tmp_path):
    """A baseline and a candidate of the same two rows, no change between them: compare exits 0."""
    base = write_run(tmp_path / "base", {"a": samples(1e-3), "b": samples(2e-3)})
    cand = write_run(tmp_path / "cand", {"a": samples(1e-3, seed=1), "b": samples(2e-3, seed=2)})
    return base, cand


def test_the_pair_itself_compares_clean(pair, capsys):
    assert cli(capsys, "compare", *pair)[0] == 0


# ---------------------------------------------------------------- 1. compare fails closed
def test_compare_refuses_a_header_only_candidate(pair, capsys, one_line):
    base, cand = pair
    for name in ("results.csv", "samples.csv"):
        text = (cand / name).read_text()
        (cand / name).write_text(text.splitlines(keepends=True)[0])  # the header line only
    needles = (f"{cand / 'results.csv'}: rows", "at least one row", "a header only")
    refused(capsys, one_line, "compare", base, cand, needles=needles)
    # even when missing rows are allowed: nothing to judge is not a pass
    refused(capsys, one_line, "compare", base, cand, "--allow-missing", "--allow-incomplete", needles=needles)


@pytest.mark.parametrize("text", ["", "nan", "NaN"])
def test_compare_refuses_nan_samples_of_an_ok_row(pair, capsys, one_line, text):
    base, cand = pair
    frame = pd.read_csv(cand / "samples.csv", dtype=str, keep_default_na=False)
    frame.loc[frame["workload"] == "a", "device_s"] = text  # every sample of an ok row
    frame.to_csv(cand / "samples.csv", index=False)
    refused(capsys, one_line, "compare", base, cand, needles=(f"{cand / 'samples.csv'}:2", "device_s"))


def test_compare_refuses_a_results_csv_cut_at_a_line_boundary(pair, capsys, one_line):
    base, cand = pair
    lines = (cand / "results.csv").read_text().splitlines(keepends=True)
    (cand / "results.csv").write_text("".join(lines[:-1]))  # row b gone, its samples still there
    refused(capsys, one_line, "compare", base, cand,
            needles=(str(cand / "samples.csv"), "workload, device, dtype, variant", "b / cpu / float32"))


def test_compare_refuses_a_candidate_missing_rows_unless_allowed(tmp_path, pair, capsys, one_line):
    base, _ = pair
    cand = write_run(tmp_path / "short", {"a": samples(1e-3, seed=1)})  # results and samples agree: b never ran
    refused(capsys, one_line, "compare", base, cand,
            needles=(f"{cand / 'results.csv'}: rows", "1 row(s) missing, e.g. b / cpu / float32", "--allow-missing"))
    status, out, _ = cli(capsys, "compare", base, cand, "--allow-missing")
    assert status == 0 and "removed (only in the baseline): b" in out and "--allow-missing" in out
    with pytest.raises(BenchError, match="missing"):
        bench.comparison(base, cand)
    assert bench.compare(base, cand, allow_missing=True)["workload"].tolist() == ["a"]
    with pytest.raises(BenchError, match="missing"):
        compare_runs(load(base), load(cand))
    assert len(compare_runs(load(base), load(cand), allow_missing=True).verdicts) == 1


@pytest.mark.parametrize("side", ["candidate", "baseline"])
def test_compare_refuses_an_incomplete_run_unless_allowed(tmp_path, capsys, one_line, side):
    killed = {"complete": False, "incomplete_reason": "interrupted"}
    base = write_run(tmp_path / "base", {"a": samples(1e-3)}, env=killed if side == "baseline" else None)
    cand = write_run(tmp_path / "cand", {"a": samples(1e-3, seed=1)}, env=killed if side == "candidate" else None)
    bad = cand if side == "candidate" else base
    refused(capsys, one_line, "compare", base, cand,
            needles=(f"{bad / 'env.json'}: complete", "interrupted", "--allow-incomplete"))
    status, out, _ = cli(capsys, "compare", base, cand, "--allow-incomplete")
    assert status == 0 and "incomplete (interrupted)" in out
    with pytest.raises(BenchError, match="complete"):
        bench.compare(base, cand)
    assert bench.compare(base, cand, allow_incomplete=True)["verdict"].tolist() == ["same"]
    with pytest.raises(BenchError, match="complete"):
        compare_runs(load(base), load(cand))
    assert compare_runs(load(base), load(cand), allow_incomplete=True).verdicts[0].verdict == "same"


def test_a_run_without_complete_is_not_complete(tmp_path, capsys, one_line):
    base = write_run(tmp_path / "base", {"a": samples(1e-3)})
    env = dict(ENV)
    del env["complete"]
    cand = write_run(tmp_path / "cand", {"a": samples(1e-3, seed=1)})
    (cand / "env.json").write_text(json.dumps(env))
    refused(capsys, one_line, "compare", base, cand, needles=(f"{cand / 'env.json'}: complete", "None"))


def test_a_stored_baseline_must_be_complete_too(tmp_path, capsys, one_line):
    run = write_run(tmp_path / "run", {"a": samples(1e-3)})
    assert cli(capsys, "baseline", run, "--root", tmp_path / "store")[0] == 0
    stored = tmp_path / "store" / "baselines" / KEY
    env = json.loads((stored / "env.json").read_text())
    (stored / "env.json").write_text(json.dumps(dict(env, complete=False)))  # killed while being replaced, say
    refused(capsys, one_line, "compare", stored, run, needles=(f"{stored / 'env.json'}: complete",))


def test_baseline_refuses_a_run_without_rows(tmp_path, capsys, one_line):
    run = write_run(tmp_path / "run", {})
    refused(capsys, one_line, "baseline", run, "--root", tmp_path / "store",
            needles=(str(run / "results.csv"), "rows", "at least one row"))


# ---------------------------------------------------------------- 2. loading refuses what no reader can use
@pytest.mark.parametrize("column", ["device_s", "host_s", "enqueue_s"])
@pytest.mark.parametrize("text", ["-0.001", "0", "", "nan", "inf", "-inf", "1e308"])
def test_per_call_times_must_be_finite_and_positive(tmp_path, column, text):
    run = write_run(tmp_path / "run", {"a": samples(1e-3)})
    frame = pd.read_csv(run / "samples.csv", dtype=str, keep_default_na=False)
    frame.assign(host_s=frame["device_s"], enqueue_s=frame["device_s"]).to_csv(run / "samples.csv", index=False)
    assert load(run).samples["enqueue_s"].gt(0).all()  # valid as written
    set_cell(run / "samples.csv", 3, column, text)
    assert f"{run / 'samples.csv'}:5: {column}" in load_error(run)


@pytest.mark.parametrize("text", ["-1", "0", "", "inf", "nan", "1e308"])
def test_median_of_an_ok_row_must_be_a_time(tmp_path, text):
    run = write_run(tmp_path / "run", {"a": samples(1e-3), "b": samples(1e-3)})
    set_cell(run / "results.csv", 1, "median_s", text)
    assert f"{run / 'results.csv'}:3: median_s" in load_error(run)


def test_a_failed_row_has_no_median_and_that_is_fine(tmp_path):
    run = write_run(tmp_path / "run", {"a": samples(1e-3), "b": []}, status={"b": "oom"})
    assert load(run).results["status"].tolist() == ["ok", "oom"]


@pytest.mark.parametrize("text", ["weird", "", "OK"])
def test_status_must_be_one_of_the_schema(tmp_path, text):
    run = write_run(tmp_path / "run", {"a": samples(1e-3)})
    set_cell(run / "results.csv", 0, "status", text)
    message = load_error(run)
    assert f"{run / 'results.csv'}:2: status" in message and "not-applicable" in message


@pytest.mark.parametrize("text", ["-5", "0", "1e9", "10", "nan", "inf"])
def test_threshold_cell_must_be_a_fraction_in_0_to_10(tmp_path, text):
    run = write_run(tmp_path / "run", {"a": samples(1e-3)}, threshold={"a": 0.2})
    assert load(run).results["threshold"].tolist() == [0.2]
    set_cell(run / "results.csv", 0, "threshold", text)
    assert f"{run / 'results.csv'}:2: threshold" in load_error(run)


def _with_duplicate_row(run: Path) -> Path:
    frame = pd.read_csv(run / "results.csv", dtype=str, keep_default_na=False)
    pd.concat([frame, frame.iloc[[0]]]).to_csv(run / "results.csv", index=False)
    return run


@pytest.mark.parametrize("command", ["compare", "report", "export", "baseline"])
def test_duplicate_rows_are_refused_on_load_by_every_command(pair, tmp_path, capsys, one_line, command):
    base, cand = pair
    _with_duplicate_row(cand)
    args = {"compare": [base, cand], "report": [cand, "--out", tmp_path / "rep"], "export": [cand],
            "baseline": [cand, "--root", tmp_path / "store"]}[command]
    refused(capsys, one_line, command, *args,
            needles=(f"{cand / 'results.csv'}:4", "workload, device, dtype, variant",
                     "duplicate row, a / cpu / float32"))


def test_samples_of_a_row_results_lacks_are_refused(tmp_path):
    run = write_run(tmp_path / "run", {"a": samples(1e-3)})
    frame = pd.read_csv(run / "samples.csv", dtype=str, keep_default_na=False)
    ghost = frame.iloc[[0]].assign(workload="ghost")
    pd.concat([frame, ghost]).to_csv(run / "samples.csv", index=False)
    message = load_error(run)
    assert f"{run / 'samples.csv'}:22" in message and "ghost / cpu / float32" in message


def test_an_ok_row_without_samples_is_refused(tmp_path):
    run = write_run(tmp_path / "run", {"a": samples(1e-3), "b": samples(1e-3)})
    frame = pd.read_csv(run / "samples.csv", dtype=str, keep_default_na=False)
    frame[frame["workload"] != "b"].to_csv(run / "samples.csv", index=False)
    message = load_error(run)
    assert f"{run / 'results.csv'}:3: status" in message and "none for b / cpu / float32" in message


def test_compare_repeats_the_checks_for_runs_built_in_memory(pair):
    base, cand = load(pair[0]), load(pair[1])
    bad = bench.Run(results=cand.results, samples=cand.samples.assign(device_s=float("nan")), env=cand.env)
    with pytest.raises(BenchError, match="candidate/samples.csv:2: device_s"):
        compare_runs(base, bad)


@pytest.mark.parametrize("env, needle", [
    ({"schema_version": True}, "schema_version"),
    ({"machine_keys": ["cpu-test"]}, "machine_keys"),
    ({"machine_keys": "cpu-test"}, "machine_keys"),
    ({"machine_keys": {"cpu": 7}}, "machine_keys"),
    ({"complete": "yes"}, "complete"),
])
def test_bad_env_json_fields(tmp_path, capsys, one_line, env, needle):
    run = write_run(tmp_path / "run", {"a": samples(1e-3)}, env=env)
    assert f"{run / 'env.json'}: {needle}" in load_error(run)
    for argv in (["compare", run, run], ["baseline", run, "--root", tmp_path / "store"], ["export", run]):
        refused(capsys, one_line, *argv, needles=(f"{run / 'env.json'}: {needle}",))


def test_deeply_nested_env_json_is_one_line(tmp_path, capsys, one_line):
    run = write_run(tmp_path / "run", {"a": samples(1e-3)})
    (run / "env.json").write_text("[" * 100_000)
    assert "valid JSON" in load_error(run)
    refused(capsys, one_line, "compare", run, run, needles=(str(run / "env.json"), "RecursionError"))


@pytest.mark.parametrize("name", ["results.csv", "samples.csv", "env.json", "noise.csv"])
def test_a_read_that_fails_with_eio_is_one_line(pair, monkeypatch, capsys, one_line, name):
    base, cand = pair
    (base / "noise.csv").write_text("workload,device,dtype,noise\na,cpu,float32,0.01\n")
    real = Path.read_bytes

    def failing(self):
        if self.parent == base and self.name == name:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", failing)
    refused(capsys, one_line, "compare", base, cand, needles=(str(base / name), os.strerror(errno.EIO)))


# ---------------------------------------------------------------- 3. noise and thresholds
@pytest.mark.parametrize("text", ["inf", "nan", "-0.1", "", "x"])
def test_noise_must_be_a_finite_fraction(pair, capsys, one_line, text):
    base, cand = pair
    (base / "noise.csv").write_text(f"workload,device,dtype,noise\na,cpu,float32,0.01\nb,cpu,float32,{text}\n")
    with pytest.raises(BenchError, match="noise.csv:3: noise"):
        load_noise(base)
    refused(capsys, one_line, "compare", base, cand, needles=(f"{base / 'noise.csv'}:3: noise",))


def test_good_noise_still_reads(pair):
    (pair[0] / "noise.csv").write_text("workload,device,dtype,variant,noise\n007,cpu,float32,default,0\n")
    assert load_noise(pair[0]) == {("007", "cpu", "float32", "default"): 0.0}


@pytest.mark.parametrize("value", ["-5", "0", "nan", "1e9", "inf"])
def test_command_line_threshold_outside_0_to_10_is_exit_2(pair, capsys, one_line, value):
    refused(capsys, one_line, "compare", *pair, "--threshold", value, needles=("--threshold", repr(value)))


# ---------------------------------------------------------------- 4. peaks files
@pytest.mark.parametrize("content, needles", [
    ([{"device": "cpu"}], ("a JSON object", "list")),
    ({"peaks": [{"device": "cpu"}]}, ("peaks[0]", "flops_per_s")),
    ({"peaks": {"device": "cpu"}}, ("peaks", "expected a list")),
    ({"peaks": [{"device": "cpu", "machine_key": "k", "flops_per_s": {"float32": 1e12}, "bytes_per_s": 1e11,
                 "device_name": 3}]}, ("peaks[0]", "device_name")),
    ({"peaks": [{"device": "cpu", "machine_key": "k", "flops_per_s": {"float32": float("nan")}, "bytes_per_s": 1e11}]},
     ("peaks[0]", "flops_per_s")),
])
def test_a_bad_peaks_file_is_one_line_through_report(tmp_path, capsys, one_line, content, needles):
    run = _named_run(tmp_path / "run", 1.0)
    path = tmp_path / "peaks.json"
    path.write_text(json.dumps(content))
    refused(capsys, one_line, "report", run, "--peaks", path, "--out", tmp_path / "rep",
            needles=(str(path), *needles))


def test_a_peaks_entry_without_a_device_name_reads(tmp_path):
    path = tmp_path / "peaks.json"
    path.write_text(json.dumps({"peaks": [{"device": "cpu", "machine_key": "k", "flops_per_s": {"float32": 1e12},
                                           "bytes_per_s": 1e11}]}))
    (peaks,) = read_peaks_file(path)
    assert (peaks.device, peaks.device_name, peaks.bytes_per_s) == ("cpu", "", 1e11)


# ---------------------------------------------------------------- 5. export
@pytest.mark.parametrize("text", ["nan", "inf", "1e308", ""])
def test_export_of_bad_times_is_one_line(pair, capsys, one_line, text):
    run = pair[1]
    set_cell(run / "samples.csv", 0, "device_s", text)
    refused(capsys, one_line, "export", run, needles=(f"{run / 'samples.csv'}:2", "device_s"))


def test_export_of_a_missing_calls_cell_is_one_line(pair, capsys, one_line):
    run = pair[1]
    set_cell(run / "samples.csv", 0, "calls", "")
    refused(capsys, one_line, "export", run, needles=(f"{run / 'samples.csv'}:2", "calls"))


# ---------------------------------------------------------------- 6. memory bounded whatever the sample count
def test_thinned_sizes():
    assert thinned_sizes(20, 20) == (20, 20)
    assert thinned_sizes(2000, 2000) == (2000, 2000)
    assert thinned_sizes(30_000, 30_000) == (2000, 2000)
    assert thinned_sizes(30_000, 500) == (2000, 500)
    m, n = thinned_sizes(10**6, 10**6)
    assert m * n <= MAX_PAIRS


def test_30000_samples_per_side_in_bounded_memory_with_a_sensible_ratio():
    rng = np.random.default_rng(3)
    base = 1e-3 * rng.lognormal(0, 0.05, 30_000)
    cand = 1.2e-3 * rng.lognormal(0, 0.05, 30_000)
    tracemalloc.start()
    try:
        ratio, lo, hi = ratio_interval(base, cand, confidence=0.99)
        p = mann_whitney_p(base, cand)
        verdict = decide(base, cand, threshold=0.1)[0]
        peak_bytes = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak_bytes < 200e6  # all 9e8 pairs would take 7.2 GB
    assert ratio == pytest.approx(1.2, rel=0.005) and lo < ratio < hi and lo > 1.19 and hi < 1.21
    assert p < 1e-6 and verdict == "slower"
    exact, lo2, hi2 = ratio_interval(base, base * 1.2, confidence=0.99)
    assert exact == pytest.approx(1.2, rel=1e-9) and lo2 <= 1.2 <= hi2


def test_thinning_never_narrows_the_interval():
    rng = np.random.default_rng(4)
    base, cand = rng.lognormal(0, 0.1, 2500), 1.05 * rng.lognormal(0, 0.1, 2500)
    assert thinned_sizes(2500, 2500) == (2000, 2000)
    ratio, lo, hi = ratio_interval(base, cand, confidence=0.99)
    d = np.sort(np.subtract.outer(np.log(cand), np.log(base)).ravel())  # all the pairs, as before thinning
    from statistics import NormalDist
    z = NormalDist().inv_cdf(0.995)
    k = int(np.floor(2500 * 2500 / 2 - z * np.sqrt(2500 * 2500 * 5001 / 12)))
    full_lo, full_hi = np.exp(d[k]), np.exp(d[-1 - k])
    assert ratio == pytest.approx(np.exp(np.median(d)), rel=0.002)
    assert lo <= full_lo * 1.0005 and hi >= full_hi / 1.0005


# ---------------------------------------------------------------- 7. names stay strings end to end
NAMES = ["NA", "None", "1", "1.0", "007"]


def _named_run(folder: Path, scale: float) -> Path:
    """A run as `bench run` writes it (every column), of workloads named NAMES, per-call times around scale ms."""
    folder.mkdir(parents=True)
    writer = RunRecorder(folder, {k: v for k, v in ENV.items() if k not in ("schema_version", "complete")})
    for i, name in enumerate(NAMES):
        plan = plan_one(Workload(name=name, module=lambda: nn.Linear(8, 4), input_shape=(2, 8)), "test")
        times = tuple(samples(1e-3 * scale, seed=i))
        for process in range(10):  # as worker processes measure it: 10 of them, 2 samples each
            part = times[2 * process:2 * process + 2]
            writer.add(Record(plan=plan, device="cpu", device_name="Test CPU", threads=1, status="ok", process=process,
                              measurement=Measurement(device_s=part, host_s=part, enqueue_s=part, calls_per_sample=10,
                                                      warmup_calls=1, first_call_s=1e-3, stop_reason="budget")))
    writer.finish(complete=True)
    return folder


def test_names_that_look_like_numbers_or_missing_values_round_trip(tmp_path, capsys):
    base = _named_run(tmp_path / "base", 1.0)
    cand = _named_run(tmp_path / "cand", 1.0)
    run = bench.load(base)
    assert run.results["workload"].tolist() == NAMES and set(run.samples["workload"]) == set(NAMES)
    assert read_csv(base / "results.csv", ["workload"])["workload"].tolist() == NAMES
    verdicts = bench.compare(base, cand)
    assert verdicts["workload"].tolist() == NAMES and set(verdicts["verdict"]) == {"same"}  # no duplicates
    status, out, _ = cli(capsys, "compare", base, cand)
    assert status == 0 and "removed" not in out and "added" not in out
    for name in NAMES:
        assert f"{name} / cpu / float32" in out
    assert cli(capsys, "export", base)[0] == 0
    assert cli(capsys, "baseline", base, "--root", tmp_path / "store")[0] == 0
    stored = tmp_path / "store" / "baselines" / KEY
    assert bench.load(stored).results["workload"].tolist() == NAMES
    status, out, _ = cli(capsys, "compare", stored, cand)
    assert status == 0 and "0 slower" in out and "removed" not in out


def test_names_that_look_like_numbers_report_without_a_crash(tmp_path, capsys):
    base = _named_run(tmp_path / "base", 1.0)
    status, out, err = cli(capsys, "report", base, "--out", tmp_path / "rep")
    assert status == 0, err
    assert (tmp_path / "rep" / "report.html").is_file()


# ---------------------------------------------------------------- run with nothing to run
def test_run_with_an_empty_workloads_list_is_exit_2(write_config, tmp_path, capsys, one_line):
    cfg = write_config("WORKLOADS = []\n")
    status, _, err = cli(capsys, "run", cfg, "--device", "cpu", "--out", tmp_path / "out")
    assert status == 2
    one_line(err, "WORKLOADS", "at least one workload")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# ---------------------------------------------------------------- found by review, each a probe
def test_a_name_a_spreadsheet_would_run_is_refused_on_load(tmp_path, capsys, one_line):
    run = write_run(tmp_path / "h", {'=HYPERLINK("http://x")': samples(1e-3)})
    refused(capsys, one_line, "compare", run, run, needles=("results.csv:2", "workload", "does not start with ="))


@pytest.mark.parametrize("column", ["threads", "n_samples", "calls_per_sample"])
def test_an_integer_column_of_an_ok_row_must_hold_an_integer(tmp_path, capsys, one_line, column):
    run = write_run(tmp_path / "r", {"a": samples(1e-3)})
    frame = pd.read_csv(run / "results.csv", dtype=str, keep_default_na=False).assign(**{column: ""})
    frame.to_csv(run / "results.csv", index=False)
    refused(capsys, one_line, "report", run, "--out", tmp_path / "rep", needles=("results.csv:2", column, "integer"))


def test_a_root_that_is_a_file_is_one_line_before_anything_is_measured(tmp_path, capsys, one_line, monkeypatch):
    run = write_run(tmp_path / "r", {"a": samples(1e-3)})
    afile = tmp_path / "afile"
    afile.write_text("")
    monkeypatch.setattr("bench.api.calibrating.measure_noise",
                        lambda *a, **k: pytest.fail("measured before checking --root"))
    monkeypatch.setattr("bench.api.reporting.probe", lambda *a, **k: pytest.fail("probed before checking --root"))
    for argv in (["baseline", run], ["calibrate", "smoke", "--device", "cpu"], ["peaks", "--device", "cpu"]):
        refused(capsys, one_line, *argv, "--root", afile, needles=(str(afile), "--root", "expected a folder"))


def test_a_baseline_that_cannot_be_written_is_exit_4_and_leaves_the_old_one_whole(tmp_path, capsys, monkeypatch):
    old = write_run(tmp_path / "old", {"a": samples(1e-3)})
    new = write_run(tmp_path / "new", {"a": samples(2e-3, seed=5)})
    assert cli(capsys, "baseline", old, "--root", tmp_path / "store")[0] == 0
    (folder,) = (tmp_path / "store" / "baselines").iterdir()
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    import bench.store.files as files

    real, calls = files.os.fsync, []

    def fsync(fd):  # a full disk fails a write (not a rename): the second of the four files
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    monkeypatch.setattr(files.os, "fsync", fsync)
    status, _, err = cli(capsys, "baseline", new, "--root", tmp_path / "store")
    assert status == 4 and err.startswith("cannot write: ")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # not one file changed, nothing left over
