"""Evidence for the history site at scale (docs/site.md): a synthetic store of --runs runs x --rows rows (no
timing: medians with 2% noise, one row 30% slower from the middle run on), appended through Store.append; then
`bench.api.site.history_site` (read, change points, files written) and every page opened in headless Chromium.
Writes docs/evidence/site.txt (the command, the machine, the raw figures). Never part of `make test`.

    python tests/perf/site_eval.py                    # 10,000 runs x 100 rows
    python tests/perf/site_eval.py --runs 500 --rows 20 --evidence ""   # a quick look, nothing written to docs/
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.api.site import history_site  # noqa: E402 - after the sys.path insert
from bench.store.history import HISTORY_COLUMNS, open_store, resolve  # noqa: E402 - after the sys.path insert

CHUNK_RUNS = 500  # runs per append: one transaction each, as a shard of imports would be
STEP_ROW = 7  # the row that is 30% slower from the middle run on


def synthetic_frame(first: int, last: int, rows: int, runs: int, rng) -> pd.DataFrame:
    """Runs first..last-1 of the store, every row of each, as HISTORY_COLUMNS."""
    n = last - first
    run = np.repeat(np.arange(first, last), rows)
    row = np.tile(np.arange(rows), n)
    median_s = 1e-4 * (1 + row % 17) * np.exp(rng.normal(0, 0.02, n * rows))
    median_s = np.where((row == STEP_ROW) & (run >= runs // 2), median_s * 1.3, median_s)
    base = pd.Timestamp("2026-01-01T00:00:00Z")
    times = [(base + pd.Timedelta(minutes=int(i) * 10)).isoformat() for i in range(first, last)]
    frame = pd.DataFrame({c: None for c in HISTORY_COLUMNS}, index=range(n * rows))
    frame = frame.assign(
        run_id=[f"run{i:06d}" for i in run], time_utc=np.repeat(times, rows), git_commit=[f"{i:08x}" for i in run],
        git_branch="main", host="eval-host", config="eval", label=[f"nightly-{i}" for i in run], torch="2.x",
        run_path="", machine_key="cpu-eval", workload=[f"layer{r:03d}" for r in row], device="cpu",
        dtype="float32", variant="default", tags=np.where(row % 10 == 0, "tens", ""), status="ok", reason="",
        median_s=median_s, iqr_s=median_s * 0.02, rel_iqr=0.02, n_samples=50.0, n_processes=7.0,
        rel_iqr_between=0.03)
    return frame[list(HISTORY_COLUMNS)]


def build_store(path: Path, runs: int, rows: int) -> float:
    """The store, made afresh; seconds taken."""
    path.unlink(missing_ok=True)
    store = open_store(resolve(path))
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    for first in range(0, runs, CHUNK_RUNS):
        store.append(synthetic_frame(first, min(first + CHUNK_RUNS, runs), rows, runs, rng))
    return time.perf_counter() - started


def folder_size(folder: Path) -> tuple[int, int, int]:
    """Bytes, files and the largest file's bytes under folder."""
    sizes = [p.stat().st_size for p in folder.rglob("*") if p.is_file()]
    return sum(sizes), len(sizes), max(sizes)


def page_loads(out: Path, chromium: str, step_row_id: str) -> list[tuple[str, float, float, int]]:
    """Each page opened in a fresh headless Chromium tab: (page, seconds until drawn, load event in ms from
    navigation start, console errors and failed requests)."""
    from playwright.sync_api import sync_playwright

    pages = [("index.html", "#overview tbody tr"), ("regressions.html", "#changes tbody tr"),
             ("machines.html", "#machines tbody tr"), (f"row.html#id={step_row_id}", "svg.trend path.value")]
    found = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        for name, ready in pages:
            for attempt in range(2):  # the first open of each page also warms the disk cache; both are kept
                context = browser.new_context(viewport=dict(width=1280, height=900))
                page = context.new_page()
                problems = []
                page.on("console", lambda m, seen=problems: m.type == "error" and seen.append(m.text))
                page.on("requestfailed", lambda r, seen=problems: seen.append(r.url))
                started = time.perf_counter()
                page.goto((out / name.split("#")[0]).as_uri() + ("#" + name.split("#")[1] if "#" in name else ""))
                page.wait_for_selector(ready, state="attached", timeout=60_000)
                drawn_s = time.perf_counter() - started
                load_ms = page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")
                found.append((f"{name.split('#')[0]} ({'first' if attempt == 0 else 'again'})", drawn_s, load_ms,
                              len(problems)))
                context.close()
        browser.close()
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--work", default=str(ROOT / "results" / "site-eval"), help="the store and the site")
    parser.add_argument("--evidence", default=str(ROOT / "docs" / "evidence" / "site.txt"),
                        help="where the figures are written (empty: only printed)")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    lines = [f"command: python tests/perf/site_eval.py --runs {args.runs} --rows {args.rows}",
             f"machine: {platform.platform()}, {os.cpu_count()} CPUs, python {platform.python_version()}, "
             f"load average before {os.getloadavg()[0]:.1f}"]
    store_s = build_store(work / "h.sqlite", args.runs, args.rows)
    lines.append(f"store: {args.runs} runs x {args.rows} rows = {args.runs * args.rows} rows appended in "
                 f"{store_s:.1f} s ({CHUNK_RUNS} runs per append); {(work / 'h.sqlite').stat().st_size / 1e6:.0f} MB")
    shutil.rmtree(work / "site", ignore_errors=True)
    started = time.perf_counter()
    site = history_site(store=work / "h.sqlite", out=work / "site")
    build_s = time.perf_counter() - started
    size, files, largest = folder_size(site.out)
    lines.append(f"site build: {build_s:.1f} s in all (store read {site.read_s:.1f} s, change points "
                 f"{site.judge_s:.1f} s, the rest writing {files} files); {site.trends} trends, {site.runs} runs, "
                 f"{site.changes} change points")
    lines.append(f"site size: {size / 1e6:.1f} MB in {files} files; largest file {largest / 1e6:.2f} MB; "
                 f"data/runs.js {(site.out / 'data' / 'runs.js').stat().st_size / 1e6:.2f} MB, data/index.js "
                 f"{(site.out / 'data' / 'index.js').stat().st_size / 1e6:.2f} MB")
    from bench.report.site import row_id

    step_id = row_id((f"layer{STEP_ROW:03d}", "cpu", "float32", "default", "cpu-eval"))
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium:
        lines.append("page loads in headless Chromium from file:// (seconds from navigation until the page's table "
                     "or chart is in the DOM; load event in ms; console errors and failed requests):")
        for name, drawn_s, load_ms, problems in page_loads(site.out, chromium, step_id):
            lines.append(f"  {name:28s} drawn {drawn_s:.2f} s   load event {load_ms:.0f} ms   problems {problems}")
    else:
        lines.append("page loads: no Chromium found (apt-get install chromium)")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.evidence:
        Path(args.evidence).parent.mkdir(parents=True, exist_ok=True)
        Path(args.evidence).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
