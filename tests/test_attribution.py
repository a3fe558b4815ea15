"""Attribution of a model's time to its layers: the pure table, layers.csv, the report's model section, the CLI.

Frames are made from real records (planned workloads, Record and Measurement as the runner makes them, turned
into results rows by bench.store.frames.to_frame), with the model columns the capture side fills set by hand:
a two-layer-kind "model" tiny (a Linear, a ReLU called twice, a Linear) and a model other whose second layer
fails. No row is timed: the samples are given.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from torch import nn

import bench
from bench import Workload, api
from bench.api import running
from bench.cli.main import main
from bench.measure import env as envmod
from bench.measure.record import Record
from bench.measure.roofs import Peaks
from bench.measure.sampling import Measurement
from bench.report.roofline import annotate
from bench.schema import RESULT_COLUMNS, SCHEMA_VERSION
from bench.store.attribution import ATTRIBUTION_COLUMNS, LAYERS_FILE, attribute, has_models, write_layers
from bench.store.cells import neutralize
from bench.store.folder import Run
from bench.store.frames import to_frame, to_samples
from bench.suite.plan import plan_one
from bench.suite.variants import DEFAULT, Variant

BF16 = Variant.parse("bfloat16")
# name -> (module factory, input shape, kind, model, count, paths, module type)
LAYERS = {
    "tiny-0": (lambda: nn.Linear(8, 16), (4, 8), "layer", "tiny", 1, "0", "Linear"),
    "tiny-1": (nn.ReLU, (4, 16), "layer", "tiny", 2, "1;3", "ReLU"),
    "tiny-2": (lambda: nn.Linear(16, 4), (4, 16), "layer", "tiny", 1, "2", "Linear"),
    "tiny": (lambda: nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4), nn.ReLU()), (4, 8), "model",
             "tiny", 1, "", "Sequential"),
    "other-0": (lambda: nn.Linear(8, 8), (2, 8), "layer", "other", 1, "0", "Linear"),
    "other-1": (nn.Tanh, (2, 8), "layer", "other", 1, "1", "Tanh"),
    "other": (lambda: nn.Sequential(nn.Linear(8, 8), nn.Tanh()), (2, 8), "model", "other", 1, "", "Sequential"),
    "plain": (lambda: nn.Linear(4, 4), (2, 4), "", "", 1, "", ""),
}
# per-call seconds by (workload, device, variant)
TIMES = {("tiny-0", "cpu", "default"): 2e-3, ("tiny-1", "cpu", "default"): 0.375e-3,
         ("tiny-2", "cpu", "default"): 1.25e-3,
         ("tiny", "cpu", "default"): 5e-3,
         ("tiny-0", "cpu", "bfloat16"): 1e-3, ("tiny-1", "cpu", "bfloat16"): 0.25e-3,
         ("tiny-2", "cpu", "bfloat16"): 0.5e-3, ("tiny", "cpu", "bfloat16"): 1.5e-3,
         ("tiny-0", "cuda", "default"): 40e-6, ("tiny-1", "cuda", "default"): 5e-6,
         ("tiny-2", "cuda", "default"): 20e-6,
         ("tiny", "cuda", "default"): 60e-6,
         ("other-0", "cpu", "default"): 3e-3, ("other", "cpu", "default"): 4e-3, ("plain", "cpu", "default"): 1e-3}


def _plans():
    return {name: plan_one(Workload(name=name, module=f, input_shape=shape), "tests/test_attribution.py")
            for name, (f, shape, *_) in LAYERS.items()}


def _record(plan, device: str, variant=DEFAULT) -> Record:
    per_call = TIMES[(plan.name, device, variant.name)]
    m = Measurement(device_s=(per_call,) * 5, host_s=(per_call,) * 5, enqueue_s=(per_call / 10,) * 5,
                    calls_per_sample=3, warmup_calls=2, first_call_s=per_call, stop_reason="budget")
    return Record(plan=plan, device=device, device_name=f"fake {device}", threads=2, status="ok", measurement=m,
                  variant=variant)


def _with_models(results: pd.DataFrame) -> pd.DataFrame:
    """The model columns the capture side writes, from LAYERS."""
    out = results.copy()
    for column, i in (("kind", 2), ("model", 3), ("count", 4), ("paths", 5), ("module_type", 6)):
        out[column] = [LAYERS[w][i] for w in out["workload"]]
    return out


def _records(names=None) -> list[Record]:
    plans = _plans()
    names = names or list(LAYERS)
    out = []
    for name, device, variant in TIMES:
        if name in names:
            out.append(_record(plans[name], device, BF16 if variant == "bfloat16" else DEFAULT))
    if "other-1" in names:
        out.append(Record(plan=plans["other-1"], device="cpu", device_name="fake cpu", threads=2, status="error",
                          reason="RuntimeError: tanh exploded"))
    return out


@pytest.fixture(scope="module")
def records():
    return _records()


@pytest.fixture(scope="module")
def results(records):
    return _with_models(to_frame(records))


def _rows(table: pd.DataFrame, **where) -> pd.DataFrame:
    mask = pd.Series(True, index=table.index)
    for column, value in where.items():
        mask &= table[column] == value
    return table[mask]


def test_layers_total_is_count_times_median_and_shares_sum_to_one(results):
    assert list(results.columns[:len(RESULT_COLUMNS)]) == RESULT_COLUMNS  # the real column set
    table = attribute(results)
    assert list(table.columns) == ATTRIBUTION_COLUMNS
    layers = _rows(table, model="tiny", device="cpu", variant="default", kind="layer")
    assert list(layers["workload"]) == ["tiny-0", "tiny-2", "tiny-1"]  # largest total first
    relu = layers.set_index("workload").loc["tiny-1"]
    assert (relu["count"], relu["median_s"], relu["paths"], relu["module_type"]) == (2, 0.375e-3, "1;3", "ReLU")
    assert relu["total_s"] == pytest.approx(2 * 0.375e-3)
    assert list(layers["total_s"]) == pytest.approx([2e-3, 1.25e-3, 0.75e-3])
    assert list(layers["share"]) == pytest.approx([0.5, 0.3125, 0.1875])
    assert "plain" not in set(table["workload"])  # a plain workload is not a model's


def test_model_row_sets_the_sum_of_layers_against_the_model(results):
    table = attribute(results)
    [model] = _rows(table, model="tiny", device="cpu", variant="default", kind="model").to_dict("records")
    assert (model["workload"], model["median_s"], model["failed_layers"]) == ("tiny", 5e-3, 0)
    assert model["layers_sum_s"] == pytest.approx(4e-3)
    assert model["outside_s"] == pytest.approx(1e-3)  # positive: the model spends time outside its layers
    assert model["ratio"] == pytest.approx(0.8)
    assert math.isnan(model["share"]) and model["note"] == ""
    # bfloat16: the isolated layers cost more than the model, so what lies outside them is negative
    [bf] = _rows(table, model="tiny", variant="bfloat16", kind="model").to_dict("records")
    assert bf["dtype"] == "bfloat16"
    assert bf["outside_s"] == pytest.approx(1.5e-3 - 2e-3) and bf["ratio"] == pytest.approx(2e-3 / 1.5e-3)


def test_a_failed_layer_is_kept_with_its_status_and_its_model_says_so(results):
    table = attribute(results)
    other = _rows(table, model="other")
    assert list(other["workload"]) == ["other", "other-0", "other-1"]
    failed = other.set_index("workload").loc["other-1"]
    assert (failed["status"], failed["reason"]) == ("error", "RuntimeError: tanh exploded")
    assert math.isnan(failed["median_s"]) and math.isnan(failed["total_s"]) and math.isnan(failed["share"])
    assert failed["verdict"] == "" and failed["bound"] == ""
    model = other.set_index("workload").loc["other"]
    assert model["failed_layers"] == 1 and "1 of 2 layers have no time: other-1 (error)" in model["note"]
    assert model["layers_sum_s"] == pytest.approx(3e-3)  # the layers that ran
    assert math.isnan(model["outside_s"]) and math.isnan(model["ratio"])  # the sum is incomplete
    assert other.set_index("workload").loc["other-0", "share"] == pytest.approx(1.0)


def test_models_devices_and_variants_are_kept_apart(results):
    table = attribute(results)
    groups = table.groupby(["model", "device", "dtype", "variant"], sort=False)
    assert set(groups.groups) == {("tiny", "cpu", "float32", "default"), ("tiny", "cuda", "float32", "default"),
                                  ("other", "cpu", "float32", "default"), ("tiny", "cpu", "bfloat16", "bfloat16")}
    for _, g in groups:
        assert (g["kind"] == "model").sum() == 1
        ran = g[(g["kind"] == "layer") & g["share"].notna()]
        assert ran["share"].sum() == pytest.approx(1.0)
    cuda = _rows(table, model="tiny", device="cuda", kind="model").iloc[0]
    assert cuda["layers_sum_s"] == pytest.approx(40e-6 + 2 * 5e-6 + 20e-6)


def test_a_model_without_its_whole_row_still_gets_a_model_row():
    results = _with_models(to_frame(_records(["tiny-0", "tiny-1", "tiny-2"])))
    table = attribute(results)
    model = table[(table["kind"] == "model") & (table["device"] == "cpu") & (table["variant"] == "default")].iloc[0]
    assert model["workload"] == "tiny" and model["status"] == "" and "no row of the whole model" in model["note"]
    assert model["layers_sum_s"] == pytest.approx(4e-3) and math.isnan(model["outside_s"])


def test_roofline_verdict_against_known_peaks(results):
    # Without peaks: unknown on the CPU; the CUDA rows under 10 us per call are launch-bound by results.csv alone.
    plain = attribute(results)
    row = plain.set_index(["workload", "device", "variant"])
    assert row.loc[("tiny-0", "cpu", "default"), "verdict"] == "unknown"
    assert row.loc[("tiny-0", "cpu", "default"), "bound"] == "unknown"
    assert row.loc[("tiny-1", "cuda", "default"), ("verdict", "bound")].tolist() == ["launch-bound", "launch"]
    # Peaks that put tiny-0 at half its memory roof, then at half its compute roof.
    r = results[(results["workload"] == "tiny-0") & (results["device"] == "cpu") & (results["variant"] == "default")]
    flops, nbytes, median = float(r["flops"].iloc[0]), float(r["bytes"].iloc[0]), float(r["median_s"].iloc[0])
    achieved = flops / median
    memory = Peaks(device="cpu", machine_key="k", device_name="fake", threads=2, flops_per_s={"float32": 1e18},
                   bytes_per_s=2 * achieved / (flops / nbytes))
    compute = Peaks(device="cpu", machine_key="k", device_name="fake", threads=2,
                    flops_per_s={"float32": 2 * achieved}, bytes_per_s=1e18)
    for peaks, verdict, bound in ((memory, "memory-bound", "memory"), (compute, "compute-bound", "compute")):
        cpu = results[results["device"] == "cpu"]
        table = attribute(annotate(cpu, lambda _row, p=peaks: p)).set_index(["workload", "variant"])
        got = table.loc[("tiny-0", "default")]
        assert (got["verdict"], got["bound"]) == (verdict, bound)
        assert got["pct_of_roof"] == pytest.approx(50.0)


def test_a_frame_without_model_rows_gives_an_empty_table():
    results = to_frame(_records(["plain"]))
    assert not has_models(results)
    table = attribute(results)
    assert table.empty and list(table.columns) == ATTRIBUTION_COLUMNS


# ------------------------------------------------------------------ files, report, API, CLI
def _env() -> dict:
    return {**envmod.capture(devices=["cpu"], argv=["test"], threads=2), "schema_version": SCHEMA_VERSION,
            "complete": True}


def _write_run(folder: Path, records: list[Record], *, models: bool = True) -> Path:
    """A run folder as `run` writes it (results.csv, samples.csv, env.json), CPU rows only."""
    folder.mkdir(parents=True)
    cpu = [r for r in records if r.device == "cpu"]
    results = to_frame(cpu)
    results = _with_models(results) if models else results
    (folder / "results.csv").write_text(neutralize(results).to_csv(index=False))
    (folder / "samples.csv").write_text(to_samples(cpu).to_csv(index=False))
    (folder / "env.json").write_text(json.dumps(_env(), default=str))
    return folder


def _peaks_for(env: dict, results: pd.DataFrame) -> Peaks:
    """This run's CPU peaks, set so that tiny-0 sits at half its memory roof."""
    r = results[(results["workload"] == "tiny-0") & (results["variant"] == "default")].iloc[0]
    achieved = r["flops"] / r["median_s"]
    return Peaks(device="cpu", machine_key=env["machine_keys"]["cpu"], device_name="fake cpu", threads=2,
                 flops_per_s={"float32": 1e18, "bfloat16": 1e18}, bytes_per_s=2 * achieved / (r["flops"] / r["bytes"]))


@pytest.fixture(scope="module")
def run_dirs(tmp_path_factory, records):
    root = tmp_path_factory.mktemp("attribution")
    models = _write_run(root / "models", records)
    plain = _write_run(root / "plain", _records(["plain"]), models=False)
    loaded = bench.load(models)
    peaks = _peaks_for(dict(loaded.env), loaded.results)
    peaks_file = root / "peaks.json"
    peaks_file.write_text(json.dumps({"schema_version": 1, "peaks": [asdict(peaks)]}))
    return models, plain, peaks_file


def test_layers_csv_is_written_for_a_run_of_a_model_and_not_for_a_plain_run(tmp_path, run_dirs):
    models, plain, _ = run_dirs
    run = bench.load(models)
    written = write_layers(run)
    assert written == models / LAYERS_FILE
    back = pd.read_csv(written)
    assert {"workload", "kind", "count", "median_s", "total_s", "share", "model", "device", "dtype", "variant",
            "module_type", "paths", "status", "verdict", "layers_sum_s", "outside_s", "ratio"} <= set(back.columns)
    row = back[(back["workload"] == "tiny-1") & (back["variant"] == "default")].iloc[0]
    assert (row["count"], row["total_s"], row["paths"]) == (2, pytest.approx(0.75e-3), "1;3")
    assert set(back["kind"]) == {"layer", "model"}
    assert bench.load(models).results.equals(run.results)  # a run folder with layers.csv loads as before
    assert write_layers(bench.load(plain)) is None and not (plain / LAYERS_FILE).exists()
    in_memory = Run(results=run.results, samples=run.samples, env=run.env)
    assert write_layers(in_memory) is None


def test_the_run_writes_layers_csv_beside_its_plots(tmp_path, records):
    """The call in bench.api.running after a run (and after an interrupted one): layers.csv beside latency.png."""
    folder = _write_run(tmp_path / "run", records)
    running._plots(bench.load(folder))
    assert (folder / "latency.png").stat().st_size > 0
    assert (folder / LAYERS_FILE).is_file()
    plain = _write_run(tmp_path / "plain", _records(["plain"]), models=False)
    running._plots(bench.load(plain))
    assert (plain / "latency.png").is_file() and not (plain / LAYERS_FILE).exists()


def test_the_api_returns_the_table_with_the_roofline(run_dirs):
    models, _, peaks_file = run_dirs
    table = bench.attribution(models, peaks=peaks_file)
    assert isinstance(table, pd.DataFrame) and {"run", "machine", *ATTRIBUTION_COLUMNS} <= set(table.columns)
    row = table[(table["workload"] == "tiny-0") & (table["variant"] == "default")].iloc[0]
    assert (row["verdict"], row["bound"]) == ("memory-bound", "memory")
    assert row["pct_of_roof"] == pytest.approx(50.0)
    without = bench.attribution(models, root=models / "no-peaks-here")
    assert set(without[without["status"] == "ok"]["verdict"]) == {"unknown"}


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sections, self.text = [], []

    def handle_starttag(self, tag, attrs):
        if tag == "section":
            self.sections.append(dict(attrs).get("id"))

    def handle_data(self, data):
        self.text.append(data)


def test_the_report_has_a_section_per_model_with_its_figures(tmp_path, run_dirs):
    models, _, peaks_file = run_dirs
    out = tmp_path / "report"
    report = api.make_report([models], out=out, peaks=peaks_file, root=tmp_path)
    page = Page()
    page.feed((out / "report.html").read_text(encoding="utf-8"))
    assert [s for s in page.sections if s.startswith("model-")] == ["model-1", "model-2"]
    text = " ".join(page.text)
    assert "Model tiny" in text and "Model other" in text and "outside the layers" in text
    assert "1 of 2 layers have no time" in text
    [tiny] = [s for s in report.models if "tiny" in s.title]
    assert len(tiny.figures) == 2  # the shares and the roofline
    for i in range(2):
        assert (out / f"{tiny.anchor}-fig{i + 1}.png").stat().st_size > 0
    md = (out / "report.md").read_text(encoding="utf-8")
    assert f"]({tiny.anchor}-fig1.png)" in md and "## Model tiny" in md
    layers = pd.read_csv(out / LAYERS_FILE)
    assert layers[(layers["workload"] == "tiny-0") & (layers["variant"] == "default")]["verdict"].iloc[0] == \
        "memory-bound"


def test_a_report_without_model_rows_has_no_model_section(tmp_path, run_dirs):
    _, plain, _ = run_dirs
    out = tmp_path / "report"
    report = api.make_report([plain], out=out, root=tmp_path)
    assert report.models == () and report.attribution.empty
    page = Page()
    page.feed((out / "report.html").read_text(encoding="utf-8"))
    assert not [s for s in page.sections if s and s.startswith("model-")]
    assert not (out / LAYERS_FILE).exists() and not list(out.glob("model-*.png"))


def test_cli_attribution_and_report(tmp_path, run_dirs, capsys):
    models, plain, peaks_file = run_dirs
    assert main(["attribution", str(models), "--peaks", str(peaks_file), "--top", "2"]) == 0
    out = capsys.readouterr().out
    assert "tiny [" in out and "sum of layers 4 ms (0.80x the model), outside the layers 1 ms" in out
    assert "tiny-0" in out and "memory-bound" in out and "1 more layers" in out
    assert main(["attribution", str(plain)]) == 2
    assert "expected rows of a model" in capsys.readouterr().err
    target = tmp_path / "rep"
    assert main(["report", str(models), "--out", str(target), "--peaks", str(peaks_file), "--root",
                 str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"Wrote {target / LAYERS_FILE}" in out and (target / LAYERS_FILE).is_file()


def test_text_from_a_results_file_is_inert_in_the_model_section(tmp_path, records):
    """model, paths and module_type are text read from results.csv: escaped in HTML and Markdown, mathtext-free
    in the figures, and no layers.csv cell reads as a formula."""
    results = _with_models(to_frame([r for r in records if r.device == "cpu"]))
    results["model"] = results["model"].replace("tiny", "=HYPERLINK(1)<b>$x$</b>")
    results["paths"] = results["paths"].replace("0", "@cmd|<i>")
    run = Run(results=results, samples=to_samples([r for r in records if r.device == "cpu"]), env=_env())
    out = tmp_path / "report"
    api.make_report([run], out=out, root=tmp_path)
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<b>$x$</b>" not in page and "&lt;b&gt;$x$&lt;/b&gt;" in page and "<i>" not in page
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "<b>" not in md and "\\<b\\>" in md
    layers = (out / LAYERS_FILE).read_text(encoding="utf-8")
    assert "'=HYPERLINK(1)" in layers and "'@cmd|<i>" in layers
    assert not any(line.startswith("=") or ",=" in line for line in layers.splitlines())
