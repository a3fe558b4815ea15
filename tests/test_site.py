"""The history site (`layerbench history site`): its data, its command, and its pages opened in a real Chromium
(Debian's package, driven by Playwright) from file://, as a CI artifact or a shared folder is opened."""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.api.site import history_site
from bench.cli.main import main
from bench.report.site import reproduce, row_id
from bench.report.site_pages import PAGES
from bench.store.history import history_rows, open_store, resolve

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "results" / "site-screenshots"  # ignored by git: the test run's artifacts
WORKLOADS = {"conv": ("conv",), "linear": ("mlp",), "flat": ("views",), "attn": ("mlp", "big"), "norm": (),
             "<b>odd$name": ()}
STEP_AT = 20  # conv on machine m1 is 30% slower from this run on
SUITE_AT = 30  # and every row of machine m1 25% slower from this run on (another host: a move of the whole suite)
CREEP = range(10, 15)  # and norm on machine m1 3% slower at each of these runs (five commits, each below the gate)


def synthetic_store(path: Path, *, runs: int = 40, seed: int = 3) -> Path:
    """A store of two machines' runs of six rows (no timing): on cpu-m1 conv steps up 30% at run STEP_AT, norm
    creeps up 3% a run over CREEP, the whole suite 25% at SUITE_AT, flat fails once; cpu-m2 runs half as often,
    every row 1.5x slower."""
    rng = np.random.default_rng(seed)
    frames = []
    for machine, count, minute in (("cpu-m1", runs, 0), ("cpu-m2", runs // 2, 30)):
        for i in range(count):
            rows = []
            for k, (name, tags) in enumerate(WORKLOADS.items()):
                median_s = 1e-4 * (1 + k) * (1.5 if machine == "cpu-m2" else 1.0) * np.exp(rng.normal(0, 0.01))
                if name == "conv" and machine == "cpu-m1" and i >= STEP_AT:
                    median_s *= 1.3
                if name == "norm" and machine == "cpu-m1":
                    median_s *= 1.03 ** sum(i >= c for c in CREEP)
                if machine == "cpu-m1" and i >= SUITE_AT:
                    median_s *= 1.25
                rows.append(dict(workload=name, device="cpu", dtype="float32", variant="default", tags=",".join(tags),
                                 status="ok", reason="", median_s=median_s, iqr_s=median_s * 0.01,
                                 rel_iqr_between=0.02, source="smoke"))
            if machine == "cpu-m1" and i == 7:
                rows[2].update(status="error", reason="RuntimeError: boom", median_s=float("nan"))
            when = pd.Timestamp("2026-01-01T00:00:00Z") + pd.Timedelta(days=i, minutes=minute)  # one run a day
            env = dict(time_utc=when.isoformat(),
                       git_commit=f"{i:03d}abcdef", git_branch="main", label=f"nightly-{i}", host=machine,
                       machine_keys={"cpu": machine})
            frames.append(history_rows(pd.DataFrame(rows), env, rid=f"{machine}-run{i:03d}"))
    open_store(resolve(path)).append(pd.concat(frames, ignore_index=True))
    return path


def data_of(path: Path) -> dict | list:
    """The value a data/*.js file sets (window.NAME = JSON;)."""
    return json.loads(re.sub(r"^window\.\w+ = |;\s*$", "", path.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    store = synthetic_store(root / "h.sqlite")
    return store, root / "site", history_site(store=store, out=root / "site")


# ---------------------------------------------------------------- the data and the command

def test_the_command_writes_the_overview_listing_every_row_and_the_change_at_its_run(tmp_path, capsys):
    store = synthetic_store(tmp_path / "h.sqlite", runs=30)
    assert main(["history", "site", "--store", str(store), "--out", str(tmp_path / "s")]) == 0
    assert "45 runs, 12 trends" in capsys.readouterr().out
    out = tmp_path / "s"
    for name in (*PAGES, "site.css", "site.js"):
        assert (out / name).is_file(), name
    index = data_of(out / "data" / "index.js")
    assert sorted((r["workload"], r["machine"]) for r in index["rows"]) == sorted(
        (w, m) for w in WORKLOADS for m in ("cpu-m1", "cpu-m2"))
    assert index["machines"] == ["cpu-m1", "cpu-m2"] and "mlp" in index["tags"]
    changes = data_of(out / "data" / "changes.js")  # newest first: the step, then the creep within its span
    assert [(c["workload"], c["machine"], c["position"], c["commit"]) for c in changes[:1]] == [
        ("conv", "cpu-m1", STEP_AT, f"{STEP_AT:03d}abcdef")]
    assert [(c["workload"], c["machine"]) for c in changes[1:]] == [("norm", "cpu-m1")]
    assert CREEP[0] <= int(changes[1]["earliest_commit"][:3]) <= changes[1]["position"] <= CREEP[-1] + 1
    assert changes[0]["command"] == (f"git checkout {STEP_AT:03d}abcdef && layerbench ab smoke --filter conv "
                                     f"--device cpu --base-ref {STEP_AT - 1:03d}abcdef")
    conv = next(r for r in index["rows"] if r["workload"] == "conv" and r["machine"] == "cpu-m1")
    assert conv["verdict"] == "slower" and conv["change"]["position"] == STEP_AT
    assert sorted((r["workload"], r["machine"]) for r in index["rows"] if r["verdict"] != "steady") == [
        ("conv", "cpu-m1"), ("norm", "cpu-m1")]
    series = (out / "data" / "rows" / f"{conv['id']}.js").read_text()
    assert series.startswith(f'LBSite.row("{conv["id"]}", ') and len(list((out / "data" / "rows").iterdir())) == 12


def test_the_pages_load_nothing_from_outside_their_folder(site):
    _, out, _ = site
    for path in [*out.glob("*.html"), *out.glob("*.js"), *out.glob("*.css")]:
        text = path.read_text(encoding="utf-8").replace("http://www.w3.org/2000/svg", "")
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text, re.I), path.name
    flat = data_of(out / "data" / "index.js")["rows"]
    odd = next(r for r in flat if r["workload"] == "<b>odd$name")
    assert "</" not in (out / "data" / "rows" / f"{odd['id']}.js").read_text().replace("<\\/", "")


def test_the_failed_run_is_listed_with_its_reason_and_left_out_of_the_trend(site):
    _, out, _ = site
    flat = next(r for r in data_of(out / "data" / "index.js")["rows"]
                if r["workload"] == "flat" and r["machine"] == "cpu-m1")
    text = (out / "data" / "rows" / f"{flat['id']}.js").read_text()
    series = json.loads(text[text.index(", ") + 2:text.rindex(");")])
    assert len(series["value"]) == 39 and series["failed"][0][1:] == ["error", "RuntimeError: boom"]


@pytest.mark.parametrize("args, needle", [
    ([], "--out"),
    (["--out", "x", "--filter", "conv"], "--filter"),
    (["--out", "x", "some-run"], "some-run"),
])
def test_site_refuses_a_missing_out_or_a_selection_in_one_line(tmp_path, capsys, args, needle):
    store = synthetic_store(tmp_path / "h.sqlite", runs=6)
    assert main(["history", "site", "--store", str(store), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err


def test_site_of_a_missing_store_is_one_line(tmp_path, capsys):
    assert main(["history", "site", "--store", str(tmp_path / "none.sqlite"), "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no such file" in err and not (tmp_path / "s").exists()


def test_the_reproduce_command_quotes_names_and_leaves_the_suite_unfiltered():
    row = dict(workload="a b;rm", device="cuda", dtype="float16", variant="default", machine_key="m")
    assert reproduce("cfg.py", row, "abc", "def") == ("git checkout def && layerbench ab cfg.py --filter 'a b;rm' "
                                                      "--device cuda --base-ref abc")
    suite = dict(row, workload="(whole suite)")
    assert reproduce("", suite, "", "", whole_suite=True) == "layerbench ab SUITE --device cuda --base-ref BEFORE"
    assert row_id(("a", "cpu")) == row_id(("a", "cpu")) != row_id(("a", "cuda"))


# ---------------------------------------------------------------- in a real browser

def chromium() -> str | None:
    """Chromium's binary: $LAYERBENCH_CHROMIUM, else Debian's chromium on the PATH."""
    found = os.environ.get("LAYERBENCH_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    return found if found and Path(found).is_file() else None


@pytest.fixture(scope="module")
def browser():
    if chromium() is None:
        pytest.skip("no Chromium found (apt-get install chromium, or set LAYERBENCH_CHROMIUM); .ci/run installs it")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e .[test])")
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox", "--disable-gpu"])
        yield launched
        launched.close()


class Opened:
    """A page of the site in a fresh browser tab, with every console error, page error and failed request."""

    def __init__(self, browser, width: int = 1280, height: int = 900) -> None:
        self.context = browser.new_context(viewport=dict(width=width, height=height))
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.problems.append(f"console: {m.text}"))
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("requestfailed", lambda r: self.problems.append(f"failed request: {r.url}"))

    def open(self, url: str):
        self.page.goto(url)
        self.page.wait_for_load_state("load")
        return self.page

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(browser):
    opened = Opened(browser)
    yield opened
    opened.close()


def row_url(out: Path, workload: str, machine: str) -> str:
    rows = data_of(out / "data" / "index.js")["rows"]
    rid = next(r["id"] for r in rows if r["workload"] == workload and r["machine"] == machine)
    return (out / "row.html").as_uri() + f"#id={rid}"


@pytest.mark.parametrize("width", [1280, 390])
def test_every_page_loads_with_no_error_and_no_failed_request(site, browser, width):
    _, out, _ = site
    SHOTS.mkdir(parents=True, exist_ok=True)
    urls = {name.removesuffix(".html"): (out / name).as_uri() for name in PAGES if name != "row.html"}
    urls["row"] = row_url(out, "conv", "cpu-m1")
    for name, url in urls.items():
        opened = Opened(browser, width=width)
        page = opened.open(url)
        page.wait_for_selector("main h1")
        if name == "row":
            page.wait_for_selector("svg.trend")
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
        assert opened.problems == [], (name, opened.problems)
        assert page.locator("main h1").inner_text() not in ("", "Row not found")
        opened.close()


def test_the_overview_lists_every_row_and_a_filter_changes_what_is_shown_with_a_permalink(site, tab):
    _, out, _ = site
    page = tab.open((out / "index.html").as_uri())
    assert page.locator("#overview tbody tr").count() == 12
    assert page.locator("#overview tbody").inner_text().count("<b>odd$name") == 2
    page.select_option("select[name=machine]", "cpu-m2")
    assert page.locator("#overview tbody tr").count() == 6 and "machine=cpu-m2" in page.url
    page.fill("input[name=q]", "mlp")  # a tag: linear and attn
    assert page.locator("#overview tbody tr").count() == 2
    again = tab.open(page.url.replace("#", "?reload#"))  # the permalink, opened afresh
    assert again.locator("#overview tbody tr").count() == 2
    assert again.locator("select[name=machine]").input_value() == "cpu-m2"
    page = tab.open((out / "index.html").as_uri() + "#verdict=slower")
    assert page.locator("#overview tbody tr td:nth-child(1)").all_inner_texts() == ["conv cpu float32",
                                                                                    "norm cpu float32"]
    assert tab.problems == []


def test_sorting_by_a_column_orders_the_rows(site, tab):
    _, out, _ = site
    page = tab.open((out / "index.html").as_uri() + "#machine=cpu-m1")
    page.click("#overview th[data-key=latest]")
    cells = page.locator("#overview tbody tr td:nth-child(1)").all_inner_texts()
    assert cells[0].startswith("conv") and cells[-1].startswith("<b>odd$name") and "sort=latest" in page.url
    page.click("#overview th[data-key=latest]")
    assert page.locator("#overview tbody tr td:nth-child(1)").first.inner_text().startswith("<b>odd$name")


def test_the_sparklines_and_the_trend_are_drawn(site, tab):
    _, out, _ = site
    page = tab.open((out / "index.html").as_uri())
    points = page.locator("svg.spark polyline").first.get_attribute("points")
    assert len(points.split()) == 40
    page = tab.open(row_url(out, "conv", "cpu-m1"))
    page.wait_for_selector("svg.trend path.value")
    box = page.locator("svg.trend path.value").bounding_box()
    assert box["width"] > 300 and box["height"] > 20  # a line across the chart that moves with the step
    assert page.locator("svg.trend path.value").get_attribute("d").count("L") == 39
    assert page.locator("svg.trend path.band").get_attribute("d").endswith("Z")
    assert page.locator("svg.trend line.change").count() == 1
    assert page.locator("svg.trend line.suite-change").count() == 1  # the whole suite's move, marked apart
    judged = page.locator("svg.trend path.value").get_attribute("d")
    page.select_option("select[name=view]", "raw")  # as measured: the suite's move shows in the line
    assert "view=raw" in page.url and page.locator("svg.trend path.value").get_attribute("d") != judged
    chart = page.locator("svg.trend").bounding_box()
    page.mouse.move(chart["x"] + chart["width"] * 0.6, chart["y"] + chart["height"] / 2)
    tip = page.locator(".tip")
    assert tip.is_visible() and "commit:" in tip.inner_text() and "label: nightly-" in tip.inner_text()
    assert page.locator("#runs tbody tr").count() == 40
    page = tab.open(row_url(out, "conv", "cpu-m1") + "&last=25")  # the newest 25 runs: the step at the 6th
    page.wait_for_selector("svg.trend path.value")
    assert page.locator("svg.trend path.value").get_attribute("d").count("L") == 24
    assert page.locator("svg.trend line.change").get_attribute("data-position") == str(STEP_AT - 15)
    page.click("dl.facts a")  # the same row on the other machine: the page loads that series in place
    page.wait_for_function("document.querySelectorAll('dl.facts dd')[0].textContent === 'cpu-m2'")
    page.wait_for_selector("#runs")
    assert page.locator("svg.trend path.value").get_attribute("d").count("L") == 19
    assert tab.problems == []


def test_a_click_on_a_regression_opens_its_row_with_the_change_marked(site, tab):
    _, out, _ = site
    page = tab.open((out / "regressions.html").as_uri())
    rows = page.locator("#changes tbody tr")
    assert rows.count() == 2 and "conv" in rows.nth(0).inner_text() and "norm" in rows.nth(1).inner_text()
    assert f"{STEP_AT:03d}abcdef" in rows.nth(0).inner_text() and "between 01" in rows.nth(1).inner_text()
    assert "layerbench ab smoke --filter conv" in rows.nth(0).locator("code.cmd").inner_text()
    assert page.locator("#suite-changes tbody tr").count() == 1
    page.select_option("select[name=days]", "7")  # one run a day: every change is older than a week
    assert page.locator("#no-changes").is_visible() and "days=7" in page.url
    page.select_option("select[name=days]", "")
    assert f"{SUITE_AT:03d}abcdef" in page.locator("#suite-changes tbody").inner_text()
    page.click("#changes a.row-link >> text=conv")
    page.wait_for_selector("svg.trend line.change.highlighted", state="attached")  # a vertical line: no width
    assert "row.html" in page.url and f"change={STEP_AT}" in page.url
    assert page.locator("svg.trend line.change.highlighted").get_attribute("data-position") == str(STEP_AT)
    assert page.locator("#runs tbody tr.slower").count() == 1
    assert tab.problems == []


def test_the_machines_page_shows_a_row_on_both_machines(site, tab):
    _, out, _ = site
    page = tab.open((out / "machines.html").as_uri() + "#q=linear")
    assert page.locator("#machines thead th").count() == 3
    cells = page.locator("#machines tbody tr").first.inner_text()
    times = float(re.search(r"\((\d\.\d+)x\)", cells).group(1))  # m2 1.5x slower, m1 1.25x since SUITE_AT
    assert 1.15 < times < 1.25 and page.locator("#machines svg.spark polyline").count() == 2
    assert tab.problems == []


def test_a_run_report_loads_the_same_way_and_it_and_the_site_link_to_each_other(tmp_path, tab, site):
    from bench.api.reporting import make_report as report

    _, out, _ = site
    report([ROOT / "results" / "samples" / "cpu-profile"], out=tmp_path / "report", root=tmp_path, site=out)
    page = tab.open((tmp_path / "report" / "report.html").as_uri())
    page.wait_for_selector("section#suite table")
    page.screenshot(path=str(SHOTS / "report-1280.png"))
    page.set_viewport_size(dict(width=390, height=900))
    page.screenshot(path=str(SHOTS / "report-390.png"))
    assert page.locator("img").count() >= 1
    assert page.evaluate("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
    page.click("text=History of these rows")
    page.wait_for_selector("#overview tbody tr")
    assert page.url == (out / "index.html").as_uri() and page.locator("#overview tbody tr").count() == 12
    store, _, _ = site
    history_site(store=store, out=tmp_path / "site", report=tmp_path / "report")
    page = tab.open((tmp_path / "site" / "index.html").as_uri())
    page.click("text=Latest run report")
    page.wait_for_selector("section#suite table")
    assert page.url.endswith("report/report.html") and tab.problems == []


def test_a_report_refuses_a_site_that_is_not_there_in_one_line(tmp_path, capsys):
    run = str(ROOT / "results" / "samples" / "cpu-profile")
    assert main(["report", run, "--out", str(tmp_path / "r"), "--site", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--site" in err and not (tmp_path / "r").exists()


def test_runs_link_to_their_report_or_folder_relative_to_the_site(tmp_path):
    from bench.report.site import run_link

    run = tmp_path / "results" / "run1"
    run.mkdir(parents=True)
    site = tmp_path / "site"
    assert run_link(str(run), site) == "../results/run1"
    (run / "report.html").write_text("<p>")
    assert run_link(str(run), site) == "../results/run1/report.html"
    assert run_link(str(tmp_path / "gone"), site) == "" and run_link("", site) == ""


def test_a_second_build_replaces_the_series_of_the_first(site, tmp_path):
    store, _, _ = site
    out = tmp_path / "s"
    history_site(store=store, out=out)
    (out / "data" / "rows" / "rstale.js").write_text("")
    history_site(store=store, out=out)
    assert not (out / "data" / "rows" / "rstale.js").exists() and len(list((out / "data" / "rows").iterdir())) == 12
