"""The gate's verdict logic on synthetic samples with known answers, and row matching between runs."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.api import comparison as compare
from bench.errors import BenchError
from bench.gate.compare import compare_runs
from bench.gate.rule import Rule, decide
from bench.schema import SCHEMA_VERSION
from bench.stats import mann_whitney_p, ratio_interval
from bench.store.folder import Run

ENV = {"schema_version": SCHEMA_VERSION, "complete": True, "torch": "2.13.0+cpu", "threads": 1,
       "float32_matmul_precision": "highest", "cpu_name": "Test CPU", "cpu_count": 2, "cuda": "", "cudnn": "",
       "cuda_device": "", "allow_tf32_matmul": False, "allow_tf32_cudnn": True, "cudnn_benchmark": False,
       "cudnn_deterministic": False, "git_commit": "abc", "machine_keys": {"cpu": "cpu-test-cpu-0000"}}


def samples(median_s: float, n: int = 20, *, rel_noise: float = 0.01, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return median_s * (1 + rel_noise * rng.standard_normal(n))


def run_frames(rows: dict, *, env: dict | None = None, variant: bool = True, threshold=None, status=None,
               processes: int = 10):
    """(results, samples, env) for {workload: samples} (or {(workload, device, dtype, variant): samples}); sample i
    comes from process i % processes (the gate's unit)."""
    res, smp = [], []
    for key, xs in rows.items():
        w, d, t, v = key if isinstance(key, tuple) else (key, "cpu", "float32", "default")
        st = (status or {}).get(w, "ok")
        res.append(dict(workload=w, device=d, dtype=t, variant=v, status=st,
                        median_s=float(np.median(xs)) if len(xs) else None,
                        threshold=(threshold or {}).get(w)))
        smp += [dict(workload=w, device=d, dtype=t, variant=v, sample=i, device_s=x, calls=10, process=i % processes)
                for i, x in enumerate(xs)]
    results = pd.DataFrame(res, columns=["workload", "device", "dtype", "variant", "status", "median_s", "threshold"])
    samp = pd.DataFrame(smp, columns=["workload", "device", "dtype", "variant", "sample", "device_s", "calls",
                                      "process"])
    if not variant:
        results, samp = results.drop(columns="variant"), samp.drop(columns="variant")
    return results, samp, dict(ENV, **(env or {}))


def compare_frames(base, cand, **kw):
    """compare_runs over two (results, samples, env) triples."""
    return compare_runs(*(Run(results=r, samples=s, env=e) for r, s, e in (base, cand)), **kw)


def write_run(folder: Path, rows: dict, **kw) -> Path:
    results, samp, env = run_frames(rows, **kw)
    folder.mkdir(parents=True, exist_ok=True)
    results.to_csv(folder / "results.csv", index=False)
    samp.to_csv(folder / "samples.csv", index=False)
    (folder / "env.json").write_text(json.dumps(env))
    return folder


# ---------------------------------------------------------------- verdicts with known answers
def test_identical_samples_are_same():
    x = samples(1e-3)
    verdict, reason, fig = decide(x, x.copy(), threshold=0.1)
    assert verdict == "same", reason
    assert fig.ratio == pytest.approx(1.0)
    assert fig.p_value > 0.5


@pytest.mark.parametrize("shift, expected", [(1.25, "slower"), (1.10, "slower"), (0.80, "faster"), (1.04, "same")])
def test_shifted_samples(shift, expected):
    verdict, reason, fig = decide(samples(1e-3, seed=1), samples(1e-3 * shift, seed=2), threshold=0.1)
    assert verdict == expected, reason
    assert fig.ratio == pytest.approx(shift, rel=0.02)
    assert fig.ratio_low < fig.ratio < fig.ratio_high


def test_slowdown_below_half_the_threshold_is_not_slower_even_when_significant():
    verdict, _, fig = decide(samples(1e-3, rel_noise=0.001, seed=1), samples(1.04e-3, rel_noise=0.001, seed=2),
                             threshold=0.1)
    assert fig.p_value < 1e-6  # clearly different...
    assert verdict == "same"  # ...but a 4% change is not what a 10% threshold asks to catch


def test_noisy_samples_are_unsure():
    verdict, reason, _ = decide(samples(1e-3, rel_noise=0.3, seed=3), samples(1.05e-3, rel_noise=0.3, seed=4),
                                threshold=0.1)
    assert verdict == "unsure"
    assert "noisy" in reason or "weak evidence" in reason


def test_too_few_samples_are_unsure_even_for_a_large_change():
    verdict, reason, _ = decide(samples(1e-3, n=3), samples(2e-3, n=3), threshold=0.1)
    assert verdict == "unsure"
    assert "too few processes (3 and 3" in reason


def test_large_effect_without_significance_is_unsure():
    base = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 5.0, 5.0, 5.0]) * 1e-3
    cand = np.array([1.0, 1.0, 1.0, 1.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0]) * 1e-3
    verdict, _, fig = decide(base, cand, threshold=0.1)
    assert fig.p_value > 0.001
    assert verdict == "unsure"


def test_threshold_moves_the_line():
    base, cand = samples(1e-3, seed=5), samples(1.15e-3, seed=6)
    assert decide(base, cand, threshold=0.1)[0] == "slower"
    assert decide(base, cand, threshold=0.4)[0] == "same"


def test_mann_whitney_exact_small_samples():
    # complete separation of 5 against 5: two of the C(10, 5) = 252 orderings are as extreme
    assert mann_whitney_p([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]) == pytest.approx(2 / 252)
    assert mann_whitney_p([1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)
    assert mann_whitney_p([], [1.0]) == 1.0


def test_mann_whitney_against_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(7)
    for m, n, shift in [(8, 9, 0.5), (30, 25, 0.3), (40, 40, 0.0)]:
        a, b = rng.normal(0, 1, m), rng.normal(shift, 1, n)
        method = "exact" if m * n <= 400 else "asymptotic"
        expected = stats.mannwhitneyu(a, b, alternative="two-sided", method=method).pvalue
        assert mann_whitney_p(a, b) == pytest.approx(expected, rel=1e-6)
    a, b = np.round(rng.normal(0, 1, 30), 1), np.round(rng.normal(0.4, 1, 30), 1)  # ties
    expected = stats.mannwhitneyu(a, b, alternative="two-sided", method="asymptotic").pvalue
    assert mann_whitney_p(a, b) == pytest.approx(expected, rel=1e-6)


def test_ratio_interval_brackets_a_known_ratio():
    base = samples(1e-3, n=30, seed=8)
    ratio, lo, hi = ratio_interval(base, base * 1.2, confidence=0.99)
    assert ratio == pytest.approx(1.2)
    assert lo <= 1.2 <= hi
    assert ratio_interval([1.0], [1.0], confidence=0.99)[1:] == (0.0, float("inf"))


def test_rule_rejects_impossible_values():
    with pytest.raises(BenchError, match="threshold"):
        Rule(threshold=0)
    with pytest.raises(BenchError, match="alpha"):
        Rule(alpha=2)


# ---------------------------------------------------------------- matching runs
def test_rows_match_on_identity_and_added_removed_are_listed():
    base = run_frames({"a": samples(1e-3), "b": samples(2e-3), ("a", "cpu", "bfloat16", "default"): samples(3e-3)})
    cand = run_frames({"a": samples(1e-3, seed=9), "c": samples(2e-3), ("a", "cpu", "float32", "x"): samples(1e-3)})
    cmp = compare_frames(base, cand, allow_missing=True)  # b and a/bfloat16 are missing: allowed
    assert [v.label for v in cmp.verdicts] == ["a / cpu / float32"]
    assert cmp.verdicts[0].verdict == "same"
    assert set(cmp.removed) == {"b / cpu / float32", "a / cpu / bfloat16"}
    assert set(cmp.added) == {"c / cpu / float32", "a / x / cpu / float32"}


def test_variant_ignored_when_one_run_lacks_the_column():
    cmp = compare_frames(run_frames({"a": samples(1e-3)}, variant=False), run_frames({"a": samples(1e-3)}))
    assert [v.workload for v in cmp.verdicts] == ["a"] and cmp.verdicts[0].variant == "default"


def test_duplicate_rows_are_bad_input():
    results, samp, env = run_frames({"a": samples(1e-3)})
    doubled = (pd.concat([results, results]), samp, env)
    with pytest.raises(BenchError, match="duplicate"):
        compare_frames(doubled, run_frames({"a": samples(1e-3)}))


def test_environment_mismatch_is_refused_unless_allowed():
    base, cand = run_frames({"a": samples(1e-3)}), run_frames({"a": samples(1e-3)}, env={"torch": "2.12.0"})
    with pytest.raises(BenchError) as err:
        compare_frames(base, cand)
    assert "torch" in str(err.value) and "2.12.0" in str(err.value) and "--allow-env-mismatch" in str(err.value)
    cmp = compare_frames(base, cand, allow_env_mismatch=True)
    assert any("torch" in n for n in cmp.notes)
    assert [d.field for d in cmp.env_diffs if d.blocking] == ["torch"]


def test_cuda_settings_matter_only_when_cuda_rows_are_compared():
    base = run_frames({"a": samples(1e-3)})
    cand = run_frames({"a": samples(1e-3)}, env={"allow_tf32_cudnn": False})
    assert not [d for d in compare_frames(base, cand).env_diffs if d.blocking]
    key = ("a", "cuda", "float32", "default")
    with pytest.raises(BenchError, match="allow_tf32_cudnn"):
        compare_frames(run_frames({key: samples(1e-3)}),
                       run_frames({key: samples(1e-3)}, env={"allow_tf32_cudnn": False}))


def test_thresholds_default_workload_and_noise():
    base = run_frames({"a": samples(1e-3), "b": samples(1e-3), "c": samples(1e-3)}, threshold={"b": 0.5})
    cand = run_frames({"a": samples(1.2e-3, seed=3), "b": samples(1.2e-3, seed=3), "c": samples(1.2e-3, seed=3)},
                      threshold={"b": 0.5})
    got = {v.workload: v for v in compare_frames(base, cand, noise={("c", "cpu", "float32"): 0.2}).verdicts}
    assert (got["a"].threshold, got["a"].threshold_source, got["a"].verdict) == (0.1, "default", "slower")
    assert (got["b"].threshold, got["b"].threshold_source, got["b"].verdict) == (0.5, "workload", "same")
    assert got["c"].threshold_source == "noise" and got["c"].threshold == pytest.approx(0.6)
    assert got["c"].verdict == "same"


def test_a_row_that_ran_in_the_baseline_but_failed_in_the_candidate_fails_closed():
    """A regression bad enough to time out must not pass the gate as `unsure`."""
    base = run_frames({"a": samples(1e-3)})
    cand = run_frames({"a": []}, status={"a": "oom"})
    with pytest.raises(BenchError, match="status .*expected ok as in baseline .--allow-failed.*found oom"):
        compare_frames(base, cand)
    cmp = compare_frames(base, cand, allow_failed=True)
    (v,) = cmp.verdicts
    assert v.verdict == "unsure" and "oom" in v.reason and any("--allow-failed" in n for n in cmp.notes)
    (v,) = compare_frames(cand, base).verdicts  # failed in the baseline, ran now: unsure, no refusal needed
    assert v.verdict == "unsure"


def test_incomplete_run_is_noted(tmp_path):
    a = write_run(tmp_path / "a", {"a": samples(1e-3)})
    b = write_run(tmp_path / "b", {"a": samples(1e-3)}, env={"complete": False, "incomplete_reason": "interrupted"})
    with pytest.raises(BenchError, match="complete"):  # the gate fails closed...
        compare(a, b / "results.csv")
    cmp = compare(a, b / "results.csv", allow_incomplete=True)  # ...unless told otherwise, and then says so
    assert any("incomplete (interrupted)" in n for n in cmp.notes)
    assert cmp.frame["verdict"].tolist() == ["same"]


def test_launch_bound_rows_are_held_to_the_wide_threshold():
    """The same code gave up to +120% on tiny launch-bound CUDA rows between two processes (H200, A/A):
    such rows fail only from 3x (decision line at 1 + 4.0/2), real work stays at 10%."""
    base = run_frames({"tiny": samples(2.4e-6), "big": samples(1e-3)})
    cand = run_frames({"tiny": samples(4.1e-6, seed=2), "big": samples(1.2e-3, seed=2)})
    base[0]["launch_bound"] = [True, False]
    cand[0]["launch_bound"] = [False, False]  # launch-bound in either run is enough
    got = {v.workload: v for v in compare_frames(base, cand).verdicts}
    assert (got["tiny"].threshold, got["tiny"].threshold_source) == (4.0, "launch-bound")
    assert got["tiny"].verdict != "slower"
    assert (got["big"].threshold, got["big"].verdict) == (0.1, "slower")
    cand3 = run_frames({"tiny": samples(9e-6, seed=2), "big": samples(1e-3, seed=2)})
    cand3[0]["launch_bound"] = [True, False]
    assert {v.workload: v.verdict for v in compare_frames(base, cand3).verdicts}["tiny"] == "slower"


def test_not_applicable_rows_are_listed_apart_not_judged():
    """A variant that cannot run on a device (cuda_graph on the CPU) is not-applicable: on both sides it is
    neither a verdict nor unsure; on one side only (ok on the other) it stays unsure with its reason."""
    rows = {"a": samples(1e-3), ("a", "cpu", "float32", "cuda_graph"): [], ("b", "cpu", "float32", "x"): []}
    base = run_frames(rows, status={"b": "not-applicable"})
    base[0].loc[1, "status"] = "not-applicable"
    base[0]["reason"] = [None, "CUDA graph replay needs a CUDA device", "x needs a GPU"]
    cand = run_frames({"a": samples(1e-3, seed=1), ("a", "cpu", "float32", "cuda_graph"): [],
                       ("b", "cpu", "float32", "x"): samples(1e-3)})
    cand[0].loc[1, "status"] = "not-applicable"
    cmp = compare_frames(base, cand)
    assert cmp.not_applicable == ("a / cuda_graph / cpu / float32",)
    got = {v.label: v for v in cmp.verdicts}
    assert sorted(got) == ["a / cpu / float32", "b / x / cpu / float32"]
    assert got["a / cpu / float32"].verdict == "same"
    one_side = got["b / x / cpu / float32"]
    assert one_side.verdict == "unsure"
    assert "not-applicable (x needs a GPU) in baseline" in one_side.reason and "ok in candidate" in one_side.reason
    assert not cmp.added and not cmp.removed


def test_not_applicable_against_a_failure_is_unsure():
    key = ("a", "cpu", "float32", "cuda_graph")
    base, cand = run_frames({key: []}), run_frames({key: []}, status={"a": "error"})
    base[0]["status"] = "not-applicable"
    (v,) = compare_frames(base, cand).verdicts
    assert v.verdict == "unsure" and "error" in v.reason and "not-applicable" in v.reason
