"""The history site from Python: every row of the store over commits and machines, as static pages.

    from bench.api import history_site
    site = history_site(out="site")      # site/index.html, regressions.html, row.html, machines.html

The pages need no server and no network (open site/index.html, or publish the folder); docs/site.md.
"""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from bench.errors import BenchError, Problem
from bench.gate.changes import STATISTICS, SUITE, judge, open_store
from bench.report.site import site_data
from bench.report.site_pages import site_pages
from bench.store.files import writable_folder, write_together
from bench.store.writer import cannot_write


@dataclass(frozen=True)
class Site:
    """What `history_site` wrote: the folder, its number of files and bytes, the trends (row x machine), runs and
    change points it shows, and how long reading the store and judging took."""

    out: Path
    files: int
    size_bytes: int
    trends: int
    runs: int
    changes: int
    store: str
    read_s: float
    judge_s: float


def history_site(*, store: str | Path | None = None, out: str | Path, statistic: str = "fastest",
                 relative: bool = True, report: str | Path | None = None) -> Site:
    """Write the history site of a store into out: index.html (every row x machine), regressions.html (the change
    points, newest first), row.html (one trend, its series loaded on demand) and machines.html, with their data
    under out/data and the script and stylesheet beside them. statistic, relative: as bench.api.history.history.
    report: a run's report.html the pages link to. A data/rows folder left by an earlier build is replaced."""
    opened = open_store(store, statistic=statistic, where="history site")
    started = time.perf_counter()
    frame = opened.read()
    read_s = time.perf_counter() - started
    if frame.empty:
        raise BenchError(Problem(where=opened.where, field="store", expected="stored rows", found="none"))
    values, changes = judge(frame, statistic=statistic, relative=relative)
    judge_s = time.perf_counter() - started - read_s
    folder = writable_folder(Path(out), option="--out")
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    files = site_data(frame, values, changes, store=opened.where, out=folder, column=STATISTICS[statistic], suite=SUITE,
                      generated_utc=now)
    files.update(site_pages(report_link=_link(report, folder)))
    try:
        shutil.rmtree(folder / "data" / "rows", ignore_errors=True)
        (folder / "data" / "rows").mkdir(parents=True, exist_ok=True)
        write_together({folder / name: text for name, text in files.items()})
    except OSError as exc:
        raise cannot_write(folder, exc) from None
    return Site(out=folder, files=len(files), size_bytes=sum(len(t.encode()) for t in files.values()),
                trends=frame.groupby(["workload", "device", "dtype", "variant", "machine_key"]).ngroups,
                runs=int(frame["run_id"].nunique()), changes=len(changes), store=opened.where, read_s=read_s,
                judge_s=judge_s)


def _link(report: str | Path | None, folder: Path) -> str:
    if report is None:
        return ""
    path = Path(report)
    path = path / "report.html" if path.is_dir() else path
    if not path.is_file():
        raise BenchError(Problem(where="history site", field="--report", expected="a report.html (layerbench report)",
                                 found=f"{path}: no such file"))
    return Path(os.path.relpath(path.resolve(), folder.resolve())).as_posix()
