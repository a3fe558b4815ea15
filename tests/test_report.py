"""The report: two run folders (this CPU, and a GPU server's older-format run) merged into HTML and Markdown."""
from __future__ import annotations

import base64
import json
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from torch import nn

from bench import Workload, api
from bench.cli.main import main
from bench.measure import env as envmod
from bench.measure.clock import Block
from bench.measure.runner import run_suite
from bench.measure.sampling import Policy
from bench.report.build import MIN_SPEEDUP, best_variants
from bench.report.figures import speedup_table
from bench.store.recorder import RunRecorder
from bench.suite import config
from bench.suite import plan as planning
from bench.suite.variants import parse_variants

FAST = Policy(warmup_s=0.0, min_block_s=0.0, min_samples=5, floor_samples=5, max_samples=5, budget_s=1.0)
# Per-call seconds by (workload, variant): bfloat16 halves smoke-linear; smoke-flatten is launch-bound.
TIMES = {"smoke-linear": {"default": 100e-6, "bfloat16": 40e-6, "backward": 300e-6},
         "smoke-conv": {"default": 200e-6, "bfloat16": 199e-6, "backward": 900e-6},
         "smoke-flatten": {"default": 2e-6, "bfloat16": 2e-6, "backward": 5e-6}}
NOISY = ("smoke-conv", "bfloat16")


class ScriptedTimer:
    """Runs fn for real; each call 'takes' a scripted time, alternating x1 and x1.5 for a noisy row."""

    device = "cpu"

    def __init__(self, per_call_s: float, noisy: bool) -> None:
        self.per_call_s, self.noisy, self.clock, self.blocks = per_call_s, noisy, 0.0, 0

    def now(self) -> float:
        return self.clock

    def time_block(self, fn, calls: int) -> Block:
        for _ in range(calls):
            fn()
        self.blocks += 1
        t = self.per_call_s * calls * (1.5 if self.noisy and self.blocks % 2 else 1.0)
        self.clock += t
        return Block(calls=calls, device_s=t, host_s=t, enqueue_s=t)


class Broken(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 4)

    def forward(self, x):
        if x.device.type != "meta":
            raise RuntimeError("kernel exploded")
        return self.linear(x)


def _cpu_run(root: Path) -> Path:
    plans = [p for p in planning.check(config.load_config("smoke").declared) if p.name in TIMES]
    plans.append(planning.plan_one(Workload(name="broken", module=Broken, input_shape=(2, 4)), "test"))
    variants = parse_variants("bfloat16,cuda_graph,backward")
    rows = iter([(p.name, v.name) for p in plans for v in variants])

    def timer_for(device):
        name, variant = next(rows)
        return ScriptedTimer(TIMES.get(name, {}).get(variant, 1e-3), noisy=(name, variant) == NOISY)

    run_dir = root / "cpu-run"
    run_dir.mkdir()
    writer = RunRecorder(run_dir, envmod.capture(devices=["cpu"], argv=["test"], threads=2))
    run_suite(plans, ["cpu"], policy=FAST, timer_for=timer_for, variants=variants, on_record=writer.add)
    writer.finish(complete=True)
    return run_dir


def _gpu_run(cpu_run: Path, root: Path) -> Path:
    """The same rows as if measured on an H100 by a bench from before variants (no variant columns)."""
    run_dir = root / "gpu-run"
    run_dir.mkdir()
    new = ["variant", "pass", "max_rel_diff", "math", "arithmetic_intensity"]
    results = pd.read_csv(cpu_run / "results.csv")
    results = results[results["variant"] == "default"].drop(columns=new)
    results["device"], results["device_name"] = "cuda", "NVIDIA H100 80GB HBM3"
    results["median_s"] = results["median_s"] / 50
    results["launch_bound"] = results["workload"] != "smoke-conv"
    results.to_csv(run_dir / "results.csv", index=False)
    samples = pd.read_csv(cpu_run / "samples.csv")
    samples = samples[samples["variant"] == "default"].drop(columns=["variant"]).assign(device="cuda")
    samples.to_csv(run_dir / "samples.csv", index=False)
    env = json.loads((cpu_run / "env.json").read_text())
    env.update(host="gpu-server", cuda_device="NVIDIA H100 80GB HBM3", devices=["cuda"],
               machine_keys={"cuda": "cuda-nvidia-h100-test"})
    (run_dir / "env.json").write_text(json.dumps(env))
    peaks = {"device": "cuda", "machine_key": "cuda-nvidia-h100-test", "device_name": "NVIDIA H100 80GB HBM3",
             "threads": 0, "flops_per_s": {"float32": 51.6e12, "tf32": 369e12, "bfloat16": 747e12},
             "bytes_per_s": 3.0e12, "source": "probe"}
    (run_dir / "peaks.json").write_text(json.dumps({"schema_version": 1, "peaks": [peaks]}))
    return run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    cpu = _cpu_run(root)
    return cpu, _gpu_run(cpu, root), root


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sections, self.images, self.links, self.tables, self.text = [], [], [], 0, []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.sections.append(a.get("id"))
        if tag == "img":
            self.images.append(a["src"])
        if tag == "table":
            self.tables += 1
        self.links += [v for k, v in attrs if k in ("href", "src") and v and not v.startswith("data:")]

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def written(runs):
    cpu, gpu, root = runs
    report = api.make_report([cpu, gpu], out=root / "out", probe_peaks=True, quick_peaks=True, root=root)
    html_path, md_path = root / "out" / "report.html", root / "out" / "report.md"
    page = Page()
    page.feed(html_path.read_text(encoding="utf-8"))
    return report, page, md_path


def test_the_page_has_every_section_and_embeds_its_images(written):
    report, page, _ = written
    clocks = ["clocks"] if report.frame["cpu_mhz"].notna().any() else []  # the CPU frequency, where Linux shows it
    assert page.sections == ["environment", "suite", "roofline", "best-variants", *clocks, "machine-decided",
                             "launch-bound", "noisy", "failed", "not-applicable"]
    # a roofline per machine and device, the CPU's variant speed-ups (the GPU run has none), the latency
    assert [c.split(":")[0] for c in report.figures] == ["Roofline", "Variants", "Roofline", "Latency per workload and "
                                                         "device (default variant)", "Peak memory"]
    assert len(page.images) == 5
    assert "peak memory (planned)" in page.text
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert page.links == []  # self-contained: nothing to fetch


def test_both_machines_are_merged_side_by_side(written):
    report, page, _ = written
    text = " ".join(page.text)
    assert "NVIDIA H100 80GB HBM3" in text and envmod.cpu_name() in text
    assert set(report.frame["device"]) == {"cpu", "cuda"}
    gpu = report.frame[report.frame["device"] == "cuda"]
    assert set(gpu["variant"]) == {"default"}  # an older run: every row is the default variant
    assert gpu.set_index("workload").loc["smoke-conv", "peak_flops_per_s"] == 51.6e12  # from its peaks.json
    assert set(gpu.set_index("workload").loc[["smoke-linear", "smoke-flatten"], "verdict"]) == {"launch-bound"}


def test_best_variants_callouts_and_skips(written):
    report, page, _ = written
    best = report.best[report.best["device"] == "cpu"].set_index("workload")
    assert best.loc["smoke-linear", "best_variant"] == "bfloat16"
    assert best.loc["smoke-linear", "speedup"] == pytest.approx(2.5)
    assert best.loc["smoke-linear", "backward_over_forward"] == pytest.approx(3.0)
    assert best.loc["smoke-linear", "best_max_rel_diff"] > 1e-4 > best.loc["smoke-linear", "default_max_rel_diff"]
    assert best.loc["smoke-conv", "best_variant"] == "default"  # 0.5% faster is no win
    assert not best.loc["smoke-linear", "noisy"]
    table = speedup_table(report.frame[report.frame["device"] == "cpu"])
    assert list(table.columns) == ["default", "bfloat16"]  # forward variants that ran; backward is not a speed-up
    assert table.loc["smoke-linear", "bfloat16"] == pytest.approx(2.5) and table["default"].eq(1).all()
    cpu = report.frame[report.frame["device"] == "cpu"].set_index(["workload", "variant"])
    assert cpu.loc[("smoke-flatten", "default"), "verdict"] == "no work"  # a view: a CPU row is never launch-bound
    assert bool(cpu.loc[NOISY, "noisy"])
    assert cpu.loc[("broken", "default"), "status"] == "error"
    assert cpu.loc[("smoke-linear", "cuda_graph"), "status"] == "not-applicable"
    text = " ".join(page.text)
    assert "kernel exploded" in text and "CUDA graph replay needs a CUDA device" in text


def test_markdown_beside_the_html_refers_to_written_images(written):
    _, _, md_path = written
    md = md_path.read_text()
    for heading in ("## Environment", "## Suite", "## Roofline and latency", "## Best variants", "## Launch-bound rows",
                    "## Noisy rows"):
        assert heading in md
    images = [line.rsplit("](", 1)[1].rstrip(")") for line in md.splitlines() if line.startswith("![")]
    assert len(images) == 5 and all((md_path.parent / name).is_file() for name in images)
    assert (md_path.parent / "peaks.json").is_file() and (md_path.parent / "roofline.csv").is_file()


def test_best_variant_rule_on_synthetic_rows():
    rows = [dict(machine="m", device="cpu", workload="w", variant=v, status="ok", median_s=t, max_rel_diff=d,
                 **{"pass": p})
            for v, t, d, p in [("default", 1.0, 1e-7, "forward"), ("a", 1 / MIN_SPEEDUP + 1e-3, 1e-3, "forward"),
                               ("backward", 0.1, 1e-7, "forward+backward")]]
    best = best_variants(pd.DataFrame(rows)).iloc[0]
    assert best["best_variant"] == "default" and best["backward_over_forward"] == pytest.approx(0.1)
    assert not best["noisy"]
    rows[1].update(median_s=0.5, noisy=True)
    best = best_variants(pd.DataFrame(rows)).iloc[0]
    assert best["best_variant"] == "a" and best["speedup"] == 2.0 and best["noisy"]


def test_cli_report_writes_into_the_first_run_folder_and_reports_errors_in_one_line(runs, capsys, one_line, tmp_path,
                                                                                      monkeypatch):
    cpu, gpu, _ = runs
    monkeypatch.chdir(tmp_path)  # the peaks cache is results/peaks under the working directory
    out = tmp_path / "out"
    assert main(["report", str(gpu), "--out", str(out)]) == 0
    assert (out / "report.html").is_file() and "report.html" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "missing")]) == 2
    one_line(capsys.readouterr().err, "missing", "run folder")
    assert main(["report", "--latest", "--root", str(tmp_path / "empty")]) == 2
    one_line(capsys.readouterr().err, "--latest", "found none")
    assert main(["report", "--latest", "--root", str(cpu.parent), "--out", str(out)]) == 0


def test_the_memory_figure_places_only_rows_with_both_peaks():
    from bench.report.figures import memory_figure, memory_rows

    rows = pd.DataFrame([dict(device="cpu", workload=w, variant="default", peak_memory_bytes=m, planned_peak_bytes=100)
                         for w, m in (("zero", 0), ("none", None), ("one", 300))])
    assert memory_rows(rows)["workload"].tolist() == ["one"]
    assert memory_rows(rows.iloc[:2]).empty  # nothing to place: report_figures draws no memory figure
    assert memory_rows(rows.drop(columns=["peak_memory_bytes"])).empty  # a run from before the column
    assert memory_figure(rows) is not None
