"""The baseline store: promoting runs, calibrating noise (with a scripted runner), reading it back."""
from __future__ import annotations

import json

import pandas as pd
import pytest
from helpers import frames
from test_compare import ENV, samples, write_run

from bench.api import comparison as compare
from bench.errors import BenchError
from bench.gate.baseline import load_noise, promote, store_dir
from bench.gate.calibrate import calibrate, noise_of, save_calibration
from bench.measure.record import Record
from bench.measure.sampling import Measurement
from bench.store.runs import load as load_rounds
from bench.suite import config
from bench.suite import plan as planning

KEY = ENV["machine_keys"]["cpu"]


def test_store_dir_uses_the_recorded_key_or_this_machine(tmp_path):
    assert store_dir("cpu", root=tmp_path, key="k") == tmp_path / "baselines" / "k"
    assert store_dir("cpu", root=tmp_path).name.startswith("cpu-")


def test_promote_copies_one_folder_per_device_and_keeps_noise(tmp_path):
    run = write_run(tmp_path / "run", {"a": samples(1e-3), ("a", "cuda", "float32", "default"): samples(1e-4)},
                    env={"machine_keys": {"cpu": KEY, "cuda": "cuda-test-1"}})
    folders = promote(load_rounds(run), root=tmp_path / "store")
    assert sorted(f.name for f in folders) == [KEY, "cuda-test-1"]
    results, samp, env = frames(load_rounds(tmp_path / "store" / "baselines" / KEY))
    assert set(results["device"]) == {"cpu"} and set(samp["device"]) == {"cpu"} and len(samp) == 20
    assert json.loads((tmp_path / "store" / "baselines" / KEY / "baseline.json").read_text())["source"] == str(run)
    (tmp_path / "store" / "baselines" / KEY / "noise.csv").write_text("workload,device,dtype,noise\n"
                                                                      "a,cpu,float32,0.05\n")
    promote(load_rounds(run), root=tmp_path / "store")
    assert load_noise(tmp_path / "store" / "baselines" / KEY) == {("a", "cpu", "float32"): 0.05}


def test_promote_refuses_incomplete_and_failed_runs(tmp_path):
    run = write_run(tmp_path / "a", {"a": samples(1e-3)}, env={"complete": False})
    with pytest.raises(BenchError, match="complete"):
        promote(load_rounds(run), root=tmp_path / "store")
    run = write_run(tmp_path / "b", {"a": samples(1e-3), "b": []}, status={"b": "error"})
    with pytest.raises(BenchError, match="1 failed row"):
        promote(load_rounds(run), root=tmp_path / "store")
    with pytest.raises(BenchError, match="no such folder"):
        promote(load_rounds(tmp_path / "missing"), root=tmp_path / "store")


def test_load_noise_rejects_bad_files(tmp_path):
    assert load_noise(tmp_path) == {}
    (tmp_path / "noise.csv").write_text("workload,device,dtype,noise\na,cpu,float32,-1\n")
    with pytest.raises(BenchError, match="noise"):
        load_noise(tmp_path)
    (tmp_path / "noise.csv").write_text("workload,noise\na,0.1\n")
    with pytest.raises(BenchError, match="device"):
        load_noise(tmp_path)


def test_noise_is_max_over_min_of_medians():
    medians = pd.DataFrame({"workload": ["a"] * 3 + ["b"] * 3, "device": "cpu", "dtype": "float32",
                            "median_s": [1.0, 1.1, 1.05, 2.0, 2.0, 2.0], "repeat": [0, 1, 2] * 2})
    noise = noise_of(medians).set_index("workload")["noise"]
    assert noise["a"] == pytest.approx(0.1) and noise["b"] == 0


@pytest.fixture(scope="module")
def smoke_plans():
    return planning.check(config.load_config("smoke").declared)


def scripted_runner(scales):
    """A stand-in for run_suite: repeat i gives every row samples around 1 ms * scales[i]."""
    calls = []

    def run(plans):
        i = len(calls)
        calls.append(i)
        return [Record(plan=p, device="cpu", device_name="Test CPU", threads=1, status="ok",
                       measurement=Measurement(device_s=tuple(samples(1e-3 * scales[i], seed=i)),
                                               host_s=(1e-3,) * 20, enqueue_s=(1e-3,) * 20, calls_per_sample=10,
                                               warmup_calls=1, first_call_s=1e-3, stop_reason="converged"))
                for p in plans]
    return run, calls


def test_calibrate_runs_the_suite_k_times_and_measures_the_spread(smoke_plans):
    run, calls = scripted_runner([1.0, 1.04, 1.02])
    cal = calibrate(lambda: run(smoke_plans), repeats=3)
    assert len(calls) == 3
    assert len(cal.medians) == 3 * len(smoke_plans)
    assert cal.noise["noise"].between(0.02, 0.07).all()  # 4% apart, give or take the samples' own 1% noise
    with pytest.raises(BenchError, match="at least 2"):
        calibrate(lambda: run(smoke_plans), repeats=1)


def test_saved_calibration_seeds_a_baseline_and_widens_thresholds(smoke_plans, tmp_path):
    run, _ = scripted_runner([1.0, 1.10, 1.05])
    cal = calibrate(lambda: run(smoke_plans), repeats=3)
    env = dict(ENV, machine_keys={"cpu": KEY})
    (folder,) = save_calibration(cal, env, root=tmp_path)
    assert (folder / "noise.csv").is_file() and (folder / "calibration.csv").is_file()
    assert (folder / "results.csv").is_file()  # no baseline there before: the first repeat became it
    cand = tmp_path / "cand"
    run_frames = frames(load_rounds(folder))
    cand.mkdir()
    for frame, name in zip(run_frames[:2], ("results.csv", "samples.csv")):
        frame.to_csv(cand / name, index=False)
    (cand / "env.json").write_text(json.dumps(run_frames[2]))
    verdicts = compare(folder, cand).verdicts
    assert {v.threshold_source for v in verdicts} == {"noise"}  # 3 x ~10% noise > the 10% default
    assert all(v.threshold > 0.2 for v in verdicts)


def test_rounds_folder_pools_samples_and_keeps_failures(tmp_path):
    write_run(tmp_path / "ci" / "r1", {"a": samples(1e-3, n=10), "b": samples(1e-3, n=10)})
    write_run(tmp_path / "ci" / "r2", {"a": samples(1e-3, n=12, seed=2), "b": []}, status={"b": "oom"})
    results, samp, env = frames(load_rounds(tmp_path / "ci"))
    assert env["rounds"] == 2 and env["complete"] is True
    assert results.set_index("workload")["status"].to_dict() == {"a": "ok", "b": "oom"}
    assert (len(samp[samp["workload"] == "a"]) == 22
            and samp[samp["workload"] == "a"]["sample"].tolist() == list(range(22)))
    single = frames(load_rounds(tmp_path / "ci" / "r1"))
    assert len(single[1]) == 20 and "rounds" not in single[2]


def test_rounds_must_share_their_environment(tmp_path):
    write_run(tmp_path / "ci" / "r1", {"a": samples(1e-3)})
    write_run(tmp_path / "ci" / "r2", {"a": samples(1e-3)}, env={"torch": "2.0.0"})
    with pytest.raises(BenchError, match="r2/env.json: torch"):
        frames(load_rounds(tmp_path / "ci"))


def test_compare_and_promote_accept_a_folder_of_rounds(tmp_path):
    for i in range(3):
        write_run(tmp_path / "ci" / f"r{i}", {"a": samples(1e-3, n=8, seed=i)})
    (folder,) = promote(load_rounds(tmp_path / "ci"), root=tmp_path / "store")
    assert len(frames(load_rounds(folder))[1]) == 24
    for i in range(3):
        write_run(tmp_path / "new" / f"r{i}", {"a": samples(1.3e-3, n=8, seed=10 + i)})
    (v,) = compare(folder, tmp_path / "new").verdicts
    assert (v.n_baseline, v.n_candidate, v.verdict) == (24, 24, "slower")


def test_promote_keeps_not_applicable_rows_and_they_are_not_failures(tmp_path):
    run = write_run(tmp_path / "run", {"a": samples(1e-3), ("a", "cpu", "float32", "cuda_graph"): []})
    results = pd.read_csv(run / "results.csv")
    results.loc[1, "status"] = "not-applicable"
    results.to_csv(run / "results.csv", index=False)
    (folder,) = promote(load_rounds(run), root=tmp_path / "store")
    stored = frames(load_rounds(folder))[0].set_index("variant")["status"].to_dict()
    assert stored == {"default": "ok", "cuda_graph": "not-applicable"}
    results.loc[0, "status"] = "error"  # a real failure is still refused
    results.to_csv(run / "results.csv", index=False)
    with pytest.raises(BenchError, match="1 failed row.*a: error"):
        promote(load_rounds(run), root=tmp_path / "store")


def test_noise_needs_at_least_two_repeats():
    """A row that ran in only one repeat shows no spread: it gets no noise value (not 0)."""
    medians = pd.DataFrame({"workload": ["a", "a", "once"], "device": "cpu", "dtype": "float32",
                            "median_s": [1.0, 1.2, 5.0], "repeat": [0, 1, 0]})
    noise = noise_of(medians)
    assert noise["workload"].tolist() == ["a"]
    assert noise["noise"].iloc[0] == pytest.approx(0.2) and noise["repeats"].iloc[0] == 2


def test_calibrate_gives_no_noise_to_a_row_that_ran_once(smoke_plans):
    run, _ = scripted_runner([1.0, 1.05, 1.02])

    def flaky():
        records = run(smoke_plans)
        if len(_calls) > 0:  # the first workload fails in every repeat but the first
            records[0] = Record(plan=records[0].plan, device="cpu", device_name="Test CPU", threads=1,
                                status="error", reason="boom")
        _calls.append(1)
        return records

    _calls: list[int] = []
    cal = calibrate(flaky, repeats=3)
    assert smoke_plans[0].name not in set(cal.noise["workload"])
    assert len(cal.noise) == len(smoke_plans) - 1 and (cal.noise["repeats"] == 3).all()


ARGV = ["bench", "run", "smoke", "--device", "cpu", "--budget-s", "0.3", "--out", "results/ci"]


def _rounds(tmp_path, *argvs, rows=None, complete=None):
    for i, (argv, done) in enumerate(zip(argvs, complete or [True] * len(argvs))):
        write_run(tmp_path / "ci" / f"r{i}", (rows or [{"a": samples(1e-3, seed=i)}] * len(argvs))[i],
                  env={"argv": argv, "complete": done})
    return tmp_path / "ci"


def test_rounds_may_differ_in_out_only(tmp_path):
    other_out = ARGV[:-1] + ["results/elsewhere"]
    folder = _rounds(tmp_path, ARGV, other_out, ARGV[:-2] + ["--out=x"])
    results, samp, env = frames(load_rounds(folder))
    assert env["rounds"] == 3 and len(samp) == 60


@pytest.mark.parametrize("argv, needles", [
    (ARGV[:6] + ["0.05"] + ARGV[7:], ["'--budget-s 0.3' as in r0", "'--budget-s 0.05' in r1"]),
    (ARGV[:3] + ["--variants", "standard"] + ARGV[3:], ["'smoke' as in r0", "'smoke --variants standard' in r1"]),
    (["bench", "run", "seed"] + ARGV[3:], ["'smoke' as in r0", "'seed' in r1"]),
    (None, ["argv"]),
])
def test_rounds_with_another_command_line_are_refused(tmp_path, argv, needles, one_line):
    folder = _rounds(tmp_path, ARGV, argv)
    with pytest.raises(BenchError) as err:
        frames(load_rounds(folder))
    one_line(err.value, f"{folder}: argv", "expected", "found", *needles)


def test_incomplete_round_is_refused(tmp_path, one_line):
    folder = _rounds(tmp_path, ARGV, ARGV, complete=(True, False))
    with pytest.raises(BenchError) as err:
        frames(load_rounds(folder))
    one_line(err.value, str(folder / "r1" / "env.json"), "complete", f"every round of {folder} finished", "incomplete")
    with pytest.raises(BenchError, match="incomplete"):
        promote(load_rounds(folder), root=tmp_path / "store")


def test_rounds_with_other_rows_are_refused(tmp_path, one_line):
    folder = _rounds(tmp_path, ARGV, ARGV, rows=[{"a": samples(1e-3), "b": samples(1e-3)},
                                                 {"a": samples(1e-3), "c": samples(1e-3)}])
    with pytest.raises(BenchError) as err:
        frames(load_rounds(folder))
    one_line(err.value, f"{folder}: rows", "expected the 2 rows of r0", "1 row(s) missing, e.g. b / cpu / float32",
             "1 extra row(s), e.g. c / cpu / float32", "in r1")


def test_pooled_rounds_are_summarized_from_the_pooled_samples_in_the_first_rounds_order(tmp_path):
    write_run(tmp_path / "ci" / "r1", {"b": samples(1e-3, n=10), "a": samples(1e-3, n=10)})
    write_run(tmp_path / "ci" / "r2", {"b": [], "a": samples(2e-3, n=12, seed=2)}, status={"b": "oom"})
    run = load_rounds(tmp_path / "ci")
    assert run.results["workload"].tolist() == ["b", "a"]  # a row that failed later keeps its place
    assert run.results.set_index("workload").loc["b", "status"] == "oom"
    pooled = run.samples[run.samples["workload"] == "a"]["device_s"]
    assert len(pooled) == 22
    # the headline is the median of the per-process medians (the test's writer gives each sample a process),
    # not of the samples pooled
    by_process = run.samples[run.samples["workload"] == "a"].groupby("process")["device_s"].median()
    assert len(by_process) == 20
    assert run.results.set_index("workload").loc["a", "median_s"] == pytest.approx(by_process.median())


def test_calibrate_measures_each_repeat_as_run_does_with_seeds_drawn_from_its_own(smoke_plans, tmp_path,
                                                                                 monkeypatch):
    from bench.api import calibrate as api_calibrate

    run, _ = scripted_runner([1.0, 1.1, 1.05] * 2)
    seeds = []

    def execute(prepared, *, on_record, seed):  # bench.api.execute as calibrate calls it: one repeat
        seeds.append(seed)
        for r in run([p for p in smoke_plans if p.name in {q.name for q in prepared.plans}]):
            on_record(r)

    monkeypatch.setattr("bench.api.calibrating.execute", execute)
    done = [api_calibrate("smoke", repeats=3, device="cpu", processes=0, seed=5, root=tmp_path) for _ in range(2)]
    assert len(seeds) == 6 and seeds[:3] == seeds[3:] and len(set(seeds)) == 3
    (folder,) = done[0].folders
    assert (folder / "noise.csv").is_file() and len(done[0].calibration.noise) == len(smoke_plans)
