"""Roofline: FLOP and byte counts of the seed workloads by hand, verdicts on synthetic rows, peaks cached and
overridden."""
from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from bench import api
from bench.errors import BenchError
from bench.measure import env as envmod
from bench.measure.probe import probe
from bench.measure.roofs import Peaks
from bench.report.roofline import annotate, roofline_figure, roofline_row, verdict, verdict_text
from bench.schema import LAUNCH_BOUND_S, is_launch_bound
from bench.store.folder import Run
from bench.store.peaks import from_json
from bench.suite import config
from bench.suite import plan as planning

F32 = 4  # bytes per float32


@pytest.fixture(scope="module")
def seed_plans():
    return {p.name: p for p in planning.check(config.load_config("seed").declared)}


def test_seed_conv_is_26_3_gflop_with_a_multiply_add_counted_as_two(seed_plans):
    p = seed_plans["seed-conv11"]
    macs = 256 * 3 * 217 * 217 * (3 * 11 * 11)  # every output element: in_channels x kernel multiply-adds
    assert p.flops == 2 * macs == 26_255_319_552
    assert round(p.flops / 1e9, 1) == 26.3
    assert p.bytes_moved == F32 * (256 * 3 * 227 * 227 + (3 * 3 * 11 * 11 + 3) + 256 * 3 * 217 * 217)


@pytest.mark.parametrize("name, rows, k, n", [
    ("seed-linear28x10", 256 * 1 * 28, 28, 10),  # Linear acts on the last dim: 7168 rows of 28
    ("seed-flatten-linear784x10", 256, 784, 10),
    ("seed-linear8x3", 128 * 64 * 16, 8, 3),
])
def test_seed_linear_flops_and_bytes(seed_plans, name, rows, k, n):
    p = seed_plans[name]
    assert p.flops == 2 * rows * k * n
    params = k * n + n
    assert p.bytes_moved == F32 * (rows * k + params + rows * n)


def test_seed_conv4_and_flatten(seed_plans):
    p = seed_plans["seed-conv4"]
    assert p.flops == 2 * 256 * 4 * 13 * 5 * (5 * 4 * 4)
    assert seed_plans["seed-flatten"].flops == 0 and seed_plans["seed-flatten"].is_view


PEAKS = Peaks(device="cpu", machine_key="cpu-test", device_name="test", threads=2,
              flops_per_s={"float32": 1e12, "tf32": 8e12, "bfloat16": 4e12}, bytes_per_s=1e11)


def _row(**kw) -> pd.Series:
    base = dict(status="ok", device="cpu", dtype="float32", math="float32", flops=1e9, bytes=1e7, median_s=2e-3,
                launch_bound=False, variant="default", workload="w")
    row = {**base, **kw}
    return pd.Series({**row, "flops_per_s": row["flops"] / row["median_s"]})


def test_verdicts():
    assert verdict(launch_bound=True, intensity=100, ridge=10) == "launch-bound"
    assert verdict(launch_bound=False, intensity=10, ridge=10) == "compute-bound"
    assert verdict(launch_bound=False, intensity=9.9, ridge=10) == "memory-bound"
    assert verdict(launch_bound=False, intensity=5, ridge=None) == ""
    assert verdict(launch_bound=False, intensity=0, ridge=10, no_work=True) == "no work"  # a view, on any device
    assert verdict(launch_bound=False, intensity=10, ridge=10, pct_of_roof=0.15) == "far below roof"
    assert verdict(launch_bound=False, intensity=1, ridge=10, pct_of_roof=9.9) == "far below roof"
    assert verdict(launch_bound=False, intensity=1, ridge=10, pct_of_roof=10) == "memory-bound"
    assert verdict(launch_bound=False, intensity=100, ridge=10, pct_of_roof=127) == "above roof"
    assert verdict(launch_bound=True, intensity=100, ridge=10, pct_of_roof=1) == "launch-bound"
    assert verdict_text("far below roof", 0.1512) == "far below roof (0.15%)"
    assert (verdict_text("above roof", 127.4) == "above roof (127%)"
            and verdict_text("memory-bound", 50) == "memory-bound")
    # one definition of launch-bound (bench.schema): a fast CPU row is not launch-bound, only CUDA rows can be
    assert not is_launch_bound(device="cpu", median_s=LAUNCH_BOUND_S / 2, enqueue_median_s=LAUNCH_BOUND_S / 2)
    assert is_launch_bound(device="cuda", median_s=LAUNCH_BOUND_S / 2, enqueue_median_s=0.0)
    assert is_launch_bound(device="cuda", median_s=1e-3, enqueue_median_s=0.9e-3)
    assert not is_launch_bound(device="cuda", median_s=1e-3, enqueue_median_s=0.1e-3)


def test_roofline_row_on_the_compute_side():
    # intensity 100 FLOP/B > ridge 10: the roof is the 1 TFLOP/s peak; 1 GFLOP in 2 ms is 0.5 TFLOP/s = 50%.
    r = roofline_row(_row(), PEAKS)
    assert r["ridge_flop_per_byte"] == 10 and r["roof_flops_per_s"] == 1e12
    assert r["pct_of_roof"] == pytest.approx(50.0) and r["verdict"] == "compute-bound"


def test_roofline_row_on_the_memory_side_and_per_math_mode():
    # 1 GFLOP over 1 GB: intensity 1, roof 1 * 1e11 = 0.1 TFLOP/s; 1 GFLOP in 20 ms is 0.05 TFLOP/s = 50%.
    r = roofline_row(_row(bytes=1e9, median_s=20e-3), PEAKS)
    assert r["roof_flops_per_s"] == pytest.approx(1e11) and r["pct_of_roof"] == pytest.approx(50.0)
    assert r["verdict"] == "memory-bound"
    # the same row in TF32 is judged against the 8 TFLOP/s roof: ridge 80, so intensity 100 is compute-bound
    tf32 = roofline_row(_row(math="tf32"), PEAKS)
    assert tf32["peak_flops_per_s"] == 8e12 and tf32["pct_of_roof"] == pytest.approx(6.25)
    assert tf32["verdict"] == "far below roof"  # compute side, but at 6% of its roof the peak does not explain it
    # a math mode without a figure falls back to float32's roof
    assert roofline_row(_row(math="float16", dtype="float16"), PEAKS)["peak_flops_per_s"] == 1e12


def test_float64_rows_are_judged_against_a_float64_roof_only():
    row = _row(math="float64", dtype="float64")
    none = roofline_row(row, PEAKS)  # peaks without float64: float32's roof would be 2x to 64x too high
    assert none["verdict"] == "" and math.isnan(none["peak_flops_per_s"]) and math.isnan(none["pct_of_roof"])
    with64 = Peaks(device="cpu", machine_key="cpu-test", device_name="test", threads=2,
                   flops_per_s={"float32": 1e12, "float64": 0.5e12}, bytes_per_s=1e11)
    r = roofline_row(row, with64)
    assert (r["peak_flops_per_s"] == 0.5e12 and r["pct_of_roof"] == pytest.approx(100.0)
            and r["verdict"] == "compute-bound")


def test_rows_without_flops_launch_bound_rows_and_failed_rows():
    assert roofline_row(_row(flops=0, bytes=0, median_s=0.02), PEAKS)["verdict"] == "no work"  # a view
    copy = roofline_row(_row(flops=0, bytes=1e9, median_s=0.02), PEAKS)
    assert copy["verdict"] == "memory-bound" and copy["pct_of_roof"] == pytest.approx(50.0)
    assert roofline_row(_row(launch_bound=True), PEAKS)["verdict"] == "launch-bound"
    failed = roofline_row(_row(status="error", median_s=float("nan")), PEAKS)
    assert failed["verdict"] == "" and math.isnan(failed["pct_of_roof"])
    assert roofline_row(_row(), None)["verdict"] == "" and math.isnan(roofline_row(_row(), None)["pct_of_roof"])


def test_annotate_adds_columns_per_row_with_its_own_peaks():
    frame = pd.DataFrame([_row(), _row(bytes=1e9, median_s=20e-3, workload="m")])
    out = annotate(frame, lambda row: PEAKS if row["workload"] == "w" else None)
    assert list(out["verdict"]) == ["compute-bound", ""]
    assert len(out) == 2 and "pct_of_roof" in out.columns


def test_roofline_figure_is_log_log_with_both_roofs_and_labelled_points():
    frame = annotate(pd.DataFrame([_row(), _row(bytes=1e9, median_s=20e-3, workload="m", variant="bfloat16")]),
                     lambda row: PEAKS)
    fig = roofline_figure(frame, PEAKS, title="t")
    ax = fig.axes[0]
    assert ax.get_xscale() == ax.get_yscale() == "log"
    labels = [line.get_label() for line in ax.get_lines()]
    assert any(lab.startswith("memory roof") for lab in labels) and any("float32 roof" in lab for lab in labels)
    assert {t.get_text() for t in ax.texts} == {"w"}  # the default variant's point is labelled
    assert len(ax.collections) >= 2  # a point per row


def test_quick_probe_is_cached_per_machine_and_threads(tmp_path, monkeypatch):
    (first,) = api.peaks("cpu", threads=1, quick=True, root=tmp_path)
    assert first.threads == 1 and first.flops_per_s["float32"] > 0 and first.bytes_per_s > 0
    assert first.load_avg_1m is not None and first.measured_utc and "1 thread" in first.provenance
    (path,) = (tmp_path / "peaks").glob("cpu-*.json")
    assert "quick-threads=1" in json.loads(path.read_text())["entries"]
    monkeypatch.setattr("bench.api.reporting.probe", lambda *a, **k: pytest.fail("probed again despite the cache"))
    assert api.peaks("cpu", threads=1, quick=True, root=tmp_path) == [first]


def test_probe_measures_and_announces_each_step():
    steps = []
    p = probe("cpu", quick=True, on_step=steps.append)
    assert set(p.flops_per_s) == {"float32", "bfloat16", "float16", "float64"} and p.source == "quick probe"
    assert len(steps) == 5 and steps[0].startswith("cpu float32 matrix product") and "copy" in steps[-1]


def _ran_on(key: str, threads: int = 2) -> Run:
    results = pd.DataFrame([dict(workload="w", device="cpu", dtype="float32", status="ok", threads=threads,
                                 median_s=1e-3)])
    return Run(results=results, samples=pd.DataFrame(columns=["workload", "device", "dtype", "sample", "device_s"]),
               env={"machine_keys": {"cpu": key}})


def test_the_report_never_probes_unless_asked(tmp_path, monkeypatch):
    monkeypatch.setattr("bench.api.reporting.probe", lambda *a, **k: pytest.fail("the report measured"))
    here = envmod.machine_key("cpu")
    assert api.gather_peaks([_ran_on(here)], root=tmp_path) == []  # nothing cached, nothing given: no roofs


def test_config_peaks_are_given_roofs(tmp_path, write_config, one_line, monkeypatch):
    monkeypatch.setattr("bench.api.reporting.probe", lambda *a, **k: pytest.fail("probed despite given peaks"))
    cfg = write_config('WORKLOADS = []\nPEAKS = {"cpu": {"flops_per_s": {"float32": 2e12}, "bytes_per_s": 5e10}}\n')
    (p,) = api.gather_peaks([_ran_on("cpu-elsewhere", threads=4)], peaks=str(cfg), root=tmp_path, probe_missing=True)
    assert p.flops_per_s == {"float32": 2e12} and p.bytes_per_s == 5e10 and p.source.startswith("config ")
    assert (p.machine_key, p.threads) == ("cpu-elsewhere", 4)
    bad = write_config('PEAKS = {"cuda": {"flops_per_s": {"float32": 2e12}, "bytes_per_s": -1}}\n', name="bad.py")
    with pytest.raises(BenchError) as exc:
        api.gather_peaks([_ran_on("k")], peaks=str(bad))
    one_line(str(exc.value), "PEAKS['cuda']", "bytes_per_s", "-1")
    with pytest.raises(BenchError):
        from_json({"flops_per_s": {}, "bytes_per_s": 1e9}, where="x")


def test_a_math_mode_too_slow_to_probe_is_left_out_not_fatal(monkeypatch):
    """A CPU that emulates bfloat16 once needed 62 s for the first 2048^3 product: that mode gets no roof (float32's
    applies to its rows) and the probe goes on."""
    import bench.measure.probe as probe_module

    real, calls = probe_module.measure, []

    def second_times_out(fn, *, timer, policy):
        calls.append(fn)
        if len(calls) == 2:  # bfloat16, after float32
            raise probe_module.WorkloadTimeout(61.9, 309.5, policy.timeout_s)
        return real(fn, timer=timer, policy=policy)

    monkeypatch.setattr(probe_module, "measure", second_times_out)
    p = probe("cpu", quick=True)
    assert set(p.flops_per_s) == {"float32", "float16", "float64"} and p.bytes_per_s > 0 and len(calls) == 5
    assert p.peak_flops_per_s("bfloat16") == p.flops_per_s["float32"]
