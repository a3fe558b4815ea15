"""The shared vocabulary: statuses and what counts as failed, the row identity, the strict number checks and the
verdict's figures, each defined once."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from bench.errors import BenchError, finite_number, fraction, is_int, is_number, strict_int
from bench.gate.compare import VERDICT_COLUMNS, Verdict
from bench.gate.rule import Figures, decide_count
from bench.schema import FAILED, FAILED_RUNNING, NOT_APPLICABLE, OK, SKIPPED, STATUSES, WORKER_LOST, RowKey


def test_failed_is_every_status_but_ok_and_not_applicable_and_skipped_is_decided_before_running():
    assert set(STATUSES) == FAILED | {OK, NOT_APPLICABLE} and OK not in FAILED and NOT_APPLICABLE not in FAILED
    assert SKIPPED in FAILED and SKIPPED not in FAILED_RUNNING and FAILED_RUNNING == FAILED - {SKIPPED}
    assert WORKER_LOST == {"crashed", "timeout"} and WORKER_LOST <= FAILED_RUNNING


@pytest.mark.parametrize("value", [True, False, 1.0, "3", None, -1])
def test_strict_int_refuses_bools_floats_text_and_small_values_in_one_line(value):
    with pytest.raises(BenchError) as err:
        strict_int(value, where="run", field="processes")
    assert str(err.value) == f"run: processes: expected an integer >= 0, found {value!r}"


def test_strict_int_and_fraction_return_good_values_and_say_what_was_expected():
    assert strict_int(0, where="w", field="f") == 0 and strict_int(5, where="w", field="f", minimum=2) == 5
    assert fraction(0.5, where="w", field="f") == 0.5 and fraction(9.5, where="w", field="f", high=10) == 9.5
    for bad in (0, 1, True, math.nan, math.inf, "0.5"):
        with pytest.raises(BenchError, match="expected a number strictly between 0 and 1"):
            fraction(bad, where="compare", field="alpha")
    with pytest.raises(BenchError, match="expected at least 2, found 1"):
        strict_int(1, where="calibrate", field="--repeats", minimum=2, expected="at least 2")
    with pytest.raises(BenchError, match=r"expected a finite number >= 0, found inf"):
        finite_number(math.inf, where="compare", field="noise_factor")
    with pytest.raises(BenchError) as err:
        strict_int("x" * 500, where="w", field="f")
    assert len(str(err.value)) < 200  # the found value is cut: the message stays one line
    assert not is_int(True) and is_int(3, minimum=3) and not is_int(2, minimum=3)
    assert not is_number(False) and not is_number(math.nan) and is_number(2) and is_number(0.5)


def test_row_key_names_a_scheduled_row_and_reads_groups_and_frame_rows():
    key = RowKey("lin", "cpu", "bfloat16", "bfloat16")
    scheduled = SimpleNamespace(workload="lin", device="cpu", variant=SimpleNamespace(name="bfloat16"))
    assert key.names(scheduled) and not RowKey("lin", "cuda", "bfloat16", "bfloat16").names(scheduled)
    assert RowKey.of_group(("lin", "cpu", "bfloat16", "bfloat16")) == key
    frame_row = {"workload": "lin", "device": "cpu", "dtype": "float32", "variant": float("nan")}  # an older file
    assert RowKey.of(frame_row).variant == "default"
    assert key.as_dict() == {"workload": "lin", "device": "cpu", "dtype": "bfloat16", "variant": "bfloat16"}


def test_a_verdict_holds_typed_figures_and_its_frame_row_spreads_them():
    verdict, _, figures = decide_count(1000.0, 1200.0, threshold=0.1)
    assert verdict == "slower" and figures == Figures(1.2, 1.2, 1.2, figures.p_value) and math.isnan(figures.p_value)
    assert not Figures.unknown().known and figures.known
    v = Verdict(workload="w", device="cpu", dtype="float32", variant="default", verdict=verdict, reason="",
                baseline_median_s=1e-3, candidate_median_s=1.2e-3, figures=figures, threshold=0.1,
                threshold_source="default", n_baseline=1, n_candidate=1)
    row = v.as_row()
    assert list(row) == VERDICT_COLUMNS and "figures" not in row
    assert (row["ratio"], row["ratio_low"], row["ratio_high"]) == (1.2, 1.2, 1.2) and v.ratio == 1.2
    assert VERDICT_COLUMNS.index("ratio") == VERDICT_COLUMNS.index("candidate_median_s") + 1
