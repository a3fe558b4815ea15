"""One run's lifecycle on disk: records in, frames built as they come, a run folder rewritten atomically, a Run out.

Every command that makes a run writes it through a RunRecorder: `run` (bench.api.running.execute), the two sides
of `ab` (bench.api.ab), the repeats of `calibrate` (through execute), `merge` (bench.api.history.merge).
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from bench.errors import WriteError
from bench.measure.record import Record
from bench.schema import KERNEL_COLUMNS, RESULT_COLUMNS, SAMPLE_COLUMNS, RowKey
from bench.store.cells import neutralize
from bench.store.env_record import RunEnv
from bench.store.files import write_atomic, write_together
from bench.store.folder import Run
from bench.store.frames import group_row, to_kernels, to_samples
from bench.store.summary import row_summary, with_summaries
from bench.store.writer import cannot_write


class RowOrder:
    """The order rows first appeared in, shared by recorders that must list their rows alike (the two sides of
    an A/B job: a row's first block may come from either side)."""

    def __init__(self) -> None:
        self._index: dict[RowKey, int] = {}

    def see(self, key: RowKey) -> None:
        self._index.setdefault(key, len(self._index))

    def sorted(self, keys: Sequence[RowKey]) -> list[RowKey]:
        return sorted(keys, key=self._index.__getitem__)


def _concat(parts: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


class RunRecorder:
    """Saves a run as it goes and returns it as a Run when it ends.

    The folder holds a loadable run from the start (env.json with complete false, header-only results.csv and
    samples.csv). `add` takes one Record (one row measured by one process, or one block of a row): the row's
    results line is rebuilt from that row's records only, its samples are appended, and results.csv and
    samples.csv are replaced together (so the two always describe the same rows) at once, or at most every
    `flush_s` seconds of `clock` when flush_s > 0. `finish` marks the run complete, or not with the reason.
    A write that fails raises WriteError and leaves the previous files whole. Without a folder (run_dir None)
    nothing is written and the frames are built only when asked for.

    Rows are listed in the order they first appear; with `order`, in that shared order, each row's samples
    together. The run's metadata is set through the set_* methods, never from outside the record.
    """

    def __init__(self, run_dir: Path | None, env: Mapping[str, Any] | RunEnv, *, order: RowOrder | None = None,
                 flush_s: float = 0.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.run_dir = run_dir
        self._env = env if isinstance(env, RunEnv) else RunEnv.of(env)
        self._order, self._flush_s, self._clock = order, flush_s, clock
        self._rows: dict[RowKey, list[Record]] = {}  # the records of each row, rows in first-appearance order
        # each row's results line and its summary (group_row, row_summary), rebuilt when the row gets a record
        self._lines: dict[RowKey, tuple[dict, dict]] = {}
        self._key_samples: dict[RowKey, list[pd.DataFrame]] = {}
        self._arrived: list[pd.DataFrame] = []  # samples in the order they came (rows listed without `order`)
        self._kernels: list[pd.DataFrame] = []
        self._stale: set[RowKey] = set()
        self._given: tuple[pd.DataFrame, pd.DataFrame] | None = None
        self._built: tuple[pd.DataFrame, pd.DataFrame] | None = None
        self._written_at = clock()
        self._save_frames()
        self._save_env()

    # ------------------------------------------------------------ the run's metadata
    @property
    def env(self) -> dict[str, Any]:
        """env.json as it stands (a copy: the record changes only through the set_* methods and finish)."""
        return self._env.to_dict()

    def set_seed(self, seed: int) -> None:
        """The schedule's seed: the same rows and processes in the same order again."""
        self._env = replace(self._env, seed=seed)

    def set_worker_cost(self, cost: Mapping[str, Any]) -> None:
        """The worker processes' cost: started, seconds to start, seconds measuring (bench.measure.workers)."""
        self._env = replace(self._env, workers=dict(cost))

    def set_versions(self, versions: Mapping[str, Any]) -> None:
        """The python, torch and cuda the worker processes ran."""
        self._env = self._env.with_versions(versions)

    def set_looks(self, *, pairs_per_row: Mapping[str, int], counted: Sequence[str]) -> None:
        """ab: the pairs each row got (the look that decided it, or the last), and the rows still open after the
        last look whose instructions were counted."""
        self._env = self._env.with_looks(pairs_per_row=pairs_per_row, counted=list(counted))

    # ------------------------------------------------------------ records in
    def add(self, record: Record) -> Record:
        """One record into the run (saved now, or at the next flush when throttled); returns it as kept: a row's
        profile trace is kept once (profiles/<row>.json), the row's later traces are let go."""
        key = record.key
        first_profile = record.profile is not None and not any(r.profile is not None for r in self._rows.get(key, ()))
        if record.profile is not None and not first_profile:
            record = replace(record, profile=replace(record.profile, trace=""))
        if self._order is not None:
            self._order.see(key)
        self._rows.setdefault(key, []).append(record)
        part = to_samples([record])
        if len(part):  # numbered on from the row's samples so far, as to_samples numbers all of them
            part["sample"] += sum(len(p) for p in self._key_samples.get(key, ()))
            self._key_samples.setdefault(key, []).append(part)
            self._arrived.append(part)
        self._stale.add(key)
        self._built = None
        if self._flush_s <= 0 or self._clock() - self._written_at >= self._flush_s:
            self.flush()
        if first_profile:
            self._kernels.append(to_kernels([record]))
            self._save_profile(key, record.profile.trace)
        return record

    def add_frames(self, results: pd.DataFrame, samples: pd.DataFrame) -> None:
        """Rows measured elsewhere, their statistics as they stand (the shards of a merged run); a recorder holds
        either these or records."""
        if self._rows:
            raise ValueError("a recorder holds records or given frames, not both")
        self._given = (results.reset_index(drop=True), samples.reset_index(drop=True))
        self._built = None
        self.flush()

    # ------------------------------------------------------------ frames and files out
    def _keys(self) -> list[RowKey]:
        return self._order.sorted(list(self._rows)) if self._order is not None else list(self._rows)

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """results and samples so far: what to_frame and to_samples make of every record added (in `order`
        sorted first, when given)."""
        if self._given is not None:
            return self._given
        if self._built is None:
            for key in self._stale:
                line = group_row(self._rows[key])
                self._lines[key] = (line, row_summary(line, _concat(self._key_samples.get(key, []), SAMPLE_COLUMNS)))
            self._stale.clear()
            keys = self._keys()
            results = pd.DataFrame([self._lines[k][0] for k in keys], columns=RESULT_COLUMNS)
            results = with_summaries(results, [self._lines[k][1] for k in keys])
            if self._order is None:  # the samples so far as one frame, the next ones appended to it
                self._arrived = [_concat(self._arrived, SAMPLE_COLUMNS)]
                samples = self._arrived[0]
            else:
                samples = _concat([p for k in keys for p in self._key_samples.get(k, [])], SAMPLE_COLUMNS)
            self._built = (results, samples)
        return self._built

    def so_far(self) -> Run:
        """The run as recorded so far, in memory."""
        results, samples = self.frames()
        return Run(results=results, samples=samples, env=self.env, source=self.run_dir,
                   run_dirs=(self.run_dir,) if self.run_dir is not None else ())

    def flush(self) -> None:
        """Replace results.csv and samples.csv together with every row added so far."""
        self._written_at = self._clock()
        self._save_frames()

    def _save_frames(self) -> None:
        if self.run_dir is None:
            return
        results, samples = self.frames()
        try:
            # text cells that a spreadsheet would run as a formula get a leading ' (bench.store.cells)
            write_together({self.run_dir / "results.csv": neutralize(results).to_csv(index=False),
                            self.run_dir / "samples.csv": neutralize(samples).to_csv(index=False)})
        except OSError as exc:
            raise cannot_write(self.run_dir, exc) from None

    def _save_env(self) -> None:
        if self.run_dir is not None:
            try:
                write_atomic(self.run_dir / "env.json", json.dumps(self.env, indent=2, default=str) + "\n")
            except OSError as exc:
                raise cannot_write(self.run_dir, exc) from None

    def _save_profile(self, key: RowKey, trace: str) -> None:
        """--profile: the row's trace as profiles/<row>.json (Chrome trace format: Perfetto and chrome://tracing
        open it) and kernels.csv with the kernels of every row profiled so far."""
        if self.run_dir is None:
            return
        try:
            folder = self.run_dir / "profiles"
            folder.mkdir(exist_ok=True)
            write_atomic(folder / f"{key.stem}.json", trace)
            kernels = _concat(self._kernels, KERNEL_COLUMNS)
            write_atomic(self.run_dir / "kernels.csv", neutralize(kernels).to_csv(index=False))
        except OSError as exc:
            raise cannot_write(self.run_dir, exc) from None

    def finish(self, *, complete: bool, reason: str = "") -> Run:
        """Mark the run complete (or not, with the reason), save it, and return it as a Run. When it is not
        complete the saving is best effort: what cannot be written (a full disk) is left as it was."""
        self._env = self._env.finished(complete=complete, reason=reason)
        for save in (self._save_frames, self._save_env):
            try:
                save()
            except WriteError:
                if complete:
                    raise
        return self.so_far()
