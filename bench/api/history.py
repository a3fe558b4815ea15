"""History from Python: add runs to the store, read trends and change points, and merge a suite's shards.

    import bench
    bench.add_to_history(run)                           # done by bench.run(out=...) already
    bench.import_runs(["results"])                      # run folders measured before the store existed
    h = bench.history(filter="conv", out="history")     # h.frame, h.changes; history/index.html
    merged = bench.merge(["shard1", "shard2"], out="results")
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from bench.errors import BenchError, Problem
from bench.gate.changes import IDENTITY, SUITE, judge, open_store
from bench.report.plots import save_plots
from bench.report.trends import render_page, suite_figure, trend_figures
from bench.schema import RowKey
from bench.store.files import writable_folder, write_atomic
from bench.store.folder import Run, incomplete_reason, read_run_dir, require_rows, run_dirs_in
from bench.store.history import Store, open_for, rows_of_folder, rows_of_run
from bench.store.merge import merge_shards, missing_shards
from bench.store.recorder import RunRecorder
from bench.store.writer import cannot_write, new_run_dir
from bench.suite.config import matches
from bench.suite.workload import Workload


def add_to_history(run: Run, store: str | Path | Store | None = None) -> int:
    """Add a run's rows to the history store (once; `store` as bench.store.history.resolve takes it); the number
    of rows added."""
    if not isinstance(store, Store):
        store = open_for(store)
    return store.append(rows_of_run(run)) if store is not None else 0


@dataclass(frozen=True)
class Imported:
    """What `import_runs` did: run folders added, those already in the store, rows added."""

    added: tuple[Path, ...]
    already: tuple[Path, ...]
    rows: int
    store: str
    incomplete: tuple[Path, ...] = ()


def import_runs(paths: Sequence[str | Path], *, store: str | Path | None = None,
                allow_incomplete: bool = False) -> Imported:
    """Load run folders (each path a run folder or a folder of them, as `run --out` makes) into the store, each
    run once whatever how often it is imported. Rounds are kept as the runs they are, not pooled. Every folder
    is read before anything is written: a corrupt one, or one without rows, is a BenchError and adds nothing.

    An incomplete run (interrupted) is refused unless allow_incomplete: its rows are whole, but the rows it lacks
    change the suite a relative trend divides by, and a trend should not move because a run was cut short. With
    allow_incomplete it is stored marked (bench_runs.complete "false"): `history` shows its rows and judges no
    change point on them."""
    folders = [d for p in paths for d in run_dirs_in(p)]
    if not folders:
        raise BenchError(Problem(where="history import", field="RUN", expected="run folders", found="none"))
    frames = []
    incomplete = []
    for d in folders:
        run = require_rows(read_run_dir(d), purpose="to keep in the history store")
        if not run.complete:
            if not allow_incomplete:
                raise BenchError(Problem(where=str(d / "env.json"), field="complete", found=f"false "
                                         f"({incomplete_reason(run)})", expected="a run that finished "
                                         "(--allow-incomplete imports it marked: shown by `history`, never judged)"))
            incomplete.append(d)
        frames.append(rows_of_folder(d, run.results, dict(run.env, complete=run.complete), run.samples))
    opened = open_for(store)
    if opened is None:
        raise BenchError(Problem(where="history import", field="--store", expected="a store", found="none"))
    before = opened.run_ids()
    rows = pd.concat(frames, ignore_index=True)
    added_rows = opened.append(rows)
    ids = [f["run_id"].iloc[0] if len(f) else "" for f in frames]
    return Imported(added=tuple(d for d, i in zip(folders, ids) if i not in before),
                    already=tuple(d for d, i in zip(folders, ids) if i in before), rows=added_rows, store=opened.where,
                    incomplete=tuple(incomplete))


@dataclass(frozen=True)
class History:
    """Rows of the store (frame: bench.store.history's columns, oldest first), their change points (changes:
    bench.gate.changes' columns), the ok rows as judged (values: with `value`, `suite_factor`, `relative_value`,
    `suite_rows` and `relative`) and the files written."""

    frame: pd.DataFrame
    changes: pd.DataFrame
    store: str
    values: pd.DataFrame = field(default_factory=pd.DataFrame)
    written: tuple[Path, ...] = field(default=())
    query_s: float = 0.0

    @property
    def incomplete_runs(self) -> int:
        """How many of the runs read were stored as incomplete (shown, not judged)."""
        return int(self.frame.loc[self.frame["complete"] == "false", "run_id"].nunique())

    @property
    def relative(self) -> bool:
        """Whether any run had enough rows to be judged relative to its suite (bench.gate.changes)."""
        return bool(len(self.values)) and bool(self.values["relative"].any())


def history(*, store: str | Path | None = None, filter: str = "", device: str = "", machine: str = "",
            out: str | Path | None = None, statistic: str = "fastest", relative: bool = True) -> History:
    """Trends and change points of the stored rows. filter: name parts or tags as `run --filter`; device,
    machine: narrow to one device or machine key; statistic: the per-run value the change points follow,
    "fastest" (the fastest worker process's median), "trimmed" (the trimmed mean of the process medians) or
    "median" (bench.gate.changes.STATISTICS); relative: judge
    each row relative to the other rows of its run (runs of at least MIN_SUITE_ROWS rows read), so that a run on
    a busy machine is not a change, and report moves of the whole suite apart. With `out`, writes changes.csv,
    history.csv (the rows read, with the suite factor of the ok ones), one PNG per row identity and index.html
    there."""
    opened = open_store(store, statistic=statistic, where="history")
    started = time.perf_counter()
    names = None
    if filter:
        names = [w for w, tags in opened.workloads().items()
                 if matches(Workload(name=w, module=object, input_shape=(), tags=tags), filter)]
    frame = opened.read(workloads=names, device=device, machine_key=machine)
    query_s = time.perf_counter() - started
    if frame.empty:
        raise BenchError(Problem(where=opened.where, field="--filter" if filter else "store",
                                 expected="stored rows" + (f" matching {filter!r}" if filter else ""),
                                 found="none" if not filter else f"none of {len(opened.workloads())} workloads"))
    # Rows of runs stored as incomplete are shown (frame, history.csv) but never judged: see import_runs.
    values, changes = judge(frame[frame["complete"] != "false"], statistic=statistic, relative=relative)
    written: list[Path] = []
    if out is not None:
        folder = writable_folder(Path(out), option="--out")
        figures = {}
        try:
            suite = suite_figure(values, changes[changes["workload"] == SUITE])
            if suite is not None:
                written.append(write_atomic(folder / "trend-whole-suite.png", suite))
                figures[RowKey(SUITE, "", "")] = "trend-whole-suite.png"
            for key, data in trend_figures(values, changes).items():
                name = f"trend-{key.stem}.png"
                written.append(write_atomic(folder / name, data))
                figures[key] = name
            written.append(write_atomic(folder / "changes.csv", changes.to_csv(index=False)))
            judged = values[["run_id", *IDENTITY, "suite_factor", "relative_value", "suite_rows", "relative"]]
            written.append(write_atomic(folder / "history.csv", frame.merge(judged, how="left").to_csv(index=False)))
            written.append(write_atomic(folder / "index.html", render_page(frame, changes, figures,
                                                                           store=opened.where)))
        except OSError as exc:
            raise cannot_write(folder, exc) from None
    return History(frame=frame, changes=changes, store=opened.where, values=values, written=tuple(written),
                   query_s=query_s)


def merge(runs: Sequence[str | Path | Run], *, out: str | Path, label: str = "", allow_missing: bool = False) -> Run:
    """Join the shards of one suite (`run(shard="K/N")` on N machines of one type) into one run folder under out,
    as one unsharded run would have written it; BenchError (one line) for shards that do not belong together
    (bench.store.merge). allow_missing: merge a set that lacks some shards into a run marked incomplete."""
    loaded = [r if isinstance(r, Run) else read_run_dir(_one_run(r)) for r in runs]
    results, samples, env = merge_shards(loaded, allow_missing=allow_missing)
    lacking = missing_shards(loaded)
    recorder = RunRecorder(new_run_dir(Path(out), label=label), replace(env, label=label) if label else env)
    recorder.add_frames(results, samples)
    run = recorder.finish(complete=not lacking, reason=f"shard(s) {', '.join(lacking)} missing" if lacking else "")
    try:
        save_plots(run.source, run.results, run.samples)
    except OSError as exc:
        raise cannot_write(run.source, exc) from None
    return run


def _one_run(path: str | Path) -> Path:
    dirs = run_dirs_in(path)
    if len(dirs) != 1:
        raise BenchError(Problem(where=str(path), field="RUN", expected="one shard's run folder",
                                 found=f"{len(dirs)} run folders"))
    return dirs[0]
