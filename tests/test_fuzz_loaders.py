"""Fuzzing every loader with hypothesis: whatever a run folder, a store folder, a peaks file or a workload holds,
the CLI answers with exit 0, 1 (a real verdict) or 2 (one line), never a traceback or an internal error."""
from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_compare import samples, write_run

from bench import BenchError, Workload
from bench.cli.main import main
from bench.suite.plan import plan_suite
from bench.suite.workload import Declared

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
CELLS = st.one_of(st.sampled_from(["", "nan", "NaN", "inf", "-inf", "-1", "0", "1e308", "1e-320", "NA", "None",
                                   "True", "weird", "ok", "\"", ",", "=1+1", "1.0", "007", "\x00"]),
                  st.text(max_size=12), st.floats().map(repr), st.integers().map(str))


def cli(*argv) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        status = main([str(a) for a in argv])
    return status, err.getvalue()


def answers_in_one_line(status: int, err: str, allowed=(0, 1, 2)) -> None:
    assert status in allowed, err
    assert "Traceback" not in err and "internal error" not in err, err
    if status == 2:
        assert len([line for line in err.splitlines() if line.strip()]) >= 1


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pristine")
    write_run(root / "base", {"a": samples(1e-3), "b": samples(2e-3)})
    write_run(root / "cand", {"a": samples(1e-3, seed=1), "b": samples(2e-3, seed=2)})
    return root


def fresh_copy(pristine: Path, tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("case")
    shutil.copytree(pristine, work, dirs_exist_ok=True)
    return work


def mutate_csv(path: Path, data) -> None:
    lines = path.read_text().splitlines()
    row = data.draw(st.integers(0, len(lines) - 1))
    cells = lines[row].split(",")
    col = data.draw(st.integers(0, len(cells) - 1))
    cells[col] = data.draw(CELLS).replace("\n", " ")
    lines[row] = ",".join(cells)
    if data.draw(st.booleans()):  # and sometimes cut the file at a line boundary
        lines = lines[: data.draw(st.integers(1, len(lines)))]
    path.write_text("\n".join(lines) + "\n")


@SETTINGS
@given(data=st.data(), name=st.sampled_from(["results.csv", "samples.csv"]), side=st.sampled_from(["base", "cand"]))
def test_a_mutated_csv_gets_a_verdict_or_one_line(pristine, tmp_path_factory, data, name, side):
    work = fresh_copy(pristine, tmp_path_factory)
    mutate_csv(work / side / name, data)
    answers_in_one_line(*cli("compare", work / "base", work / "cand"))
    answers_in_one_line(*cli("export", work / side, "--out", work / "export"), allowed=(0, 2))


JSON = st.recursive(st.one_of(st.none(), st.booleans(), st.floats(allow_nan=True), st.integers(), st.text(max_size=8)),
                    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner,
                                                                                             max_size=4)),
                    max_leaves=12)


@SETTINGS
@given(data=st.data(), key=st.sampled_from(["schema_version", "complete", "machine_keys", "argv", "torch", "threads",
                                            "incomplete_reason"]), value=JSON)
def test_an_env_json_with_any_value_in_any_field_gets_a_verdict_or_one_line(pristine, tmp_path_factory, data, key,
                                                                            value):
    work = fresh_copy(pristine, tmp_path_factory)
    side = data.draw(st.sampled_from(["base", "cand"]))
    env = json.loads((work / side / "env.json").read_text())
    env[key] = value
    (work / side / "env.json").write_text(json.dumps(env))
    answers_in_one_line(*cli("compare", work / "base", work / "cand", "--allow-env-mismatch"))


@SETTINGS
@given(text=st.one_of(JSON.map(json.dumps), st.text(max_size=40), st.just("[" * 50000)))
def test_any_env_json_text_gets_one_line(pristine, tmp_path_factory, text):
    work = fresh_copy(pristine, tmp_path_factory)
    (work / "cand" / "env.json").write_text(text)
    answers_in_one_line(*cli("compare", work / "base", work / "cand"))


@SETTINGS
@given(noise=st.text(max_size=60), baseline_json=st.text(max_size=30))
def test_a_store_folder_with_any_noise_csv_or_baseline_json_gets_a_verdict_or_one_line(
        pristine, tmp_path_factory, noise, baseline_json):
    work = fresh_copy(pristine, tmp_path_factory)
    (work / "base" / "noise.csv").write_text("workload,device,dtype,noise\n" + noise)
    (work / "base" / "baseline.json").write_text(baseline_json)
    answers_in_one_line(*cli("compare", work / "base", work / "cand"))


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(peaks=JSON)
def test_any_peaks_json_gets_a_report_or_one_line(pristine, tmp_path_factory, peaks):
    work = fresh_copy(pristine, tmp_path_factory)
    (work / "peaks.json").write_text(json.dumps({"schema_version": 1, "peaks": peaks}))
    answers_in_one_line(*cli("report", work / "cand", "--peaks", work / "peaks.json", "--out", work / "rep"),
                        allowed=(0, 2))


FIELDS = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(), st.text(max_size=6),
                   st.lists(st.integers(-2, 4), max_size=3), st.tuples(st.integers(-2, 4)), st.just(object()))


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(name=FIELDS, shape=FIELDS, dtype=FIELDS, tags=FIELDS, threshold=FIELDS, note=FIELDS)
def test_any_workload_fields_are_planned_or_reported_never_raised(name, shape, dtype, tags, threshold, note):
    from torch import nn

    w = Workload(name=name, module=lambda: nn.Linear(4, 2), input_shape=shape, dtype=dtype, tags=tags,
                 threshold=threshold, note=note)
    try:
        plans, problems = plan_suite([Declared(workload=w, source="fuzz.py")])
    except BenchError:  # pragma: no cover - plan_suite reports problems, it does not raise them
        pytest.fail("plan_suite raised instead of reporting")
    assert len(plans) + len(problems) >= 1
    for p in problems:
        assert "\n" not in str(p)
