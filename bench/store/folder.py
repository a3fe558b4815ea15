"""One run folder on disk: the frozen `Run` record, reading a folder back, and where run folders are."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from bench.errors import BenchError, Problem
from bench.schema import (DEFAULT_VARIANT, REQUIRED_RESULT_COLUMNS, REQUIRED_SAMPLE_COLUMNS, RUN_FILES,
                          SCHEMA_VERSION, RowKey)
from bench.store.files import read_csv, read_json_object


def _with_variant(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame from before variants has no variant column: every row is the default variant."""
    if "variant" not in frame.columns:
        return frame.assign(variant=DEFAULT_VARIANT)
    if frame["variant"].isna().any() or (frame["variant"] == "").any():
        return frame.assign(variant=frame["variant"].fillna(DEFAULT_VARIANT).replace("", DEFAULT_VARIANT))
    return frame


@dataclass(frozen=True, kw_only=True, eq=False)
class Run:
    """A measured run: its results (one tidy row per workload x device x dtype x variant, the columns of
    results.csv), its raw samples (long format), its environment (env.json), and where it came from.

    source: the path it was read from or written to (None for a run kept in memory only); run_dirs: the
    run folders behind it (several when rounds were pooled). Never mutated: build a new Run instead.
    """

    results: pd.DataFrame
    samples: pd.DataFrame
    env: Mapping[str, Any]
    source: Path | None = None
    run_dirs: tuple[Path, ...] = field(default=())

    def __post_init__(self) -> None:
        # A frame from before variants (or built by hand) gets the variant column: every row the default.
        for name in ("results", "samples"):
            object.__setattr__(self, name, _with_variant(getattr(self, name)))

    @property
    def frame(self) -> pd.DataFrame:
        """The tidy results frame (results.csv's columns)."""
        return self.results

    @property
    def name(self) -> str:
        """A short name for messages and tables: the source folder's name, or "(in memory)"."""
        return self.source.name if self.source is not None else "(in memory)"

    @property
    def complete(self) -> bool:
        return self.env.get("complete") is True

    def keys(self) -> list[RowKey]:
        """The identity of every results row, in order."""
        return [RowKey.of(row) for row in self.results.to_dict("records")]


def read_env(run_dir: Path) -> dict:
    env = read_json_object(run_dir / "env.json", what="a run folder's env.json")
    version = env.get("schema_version")
    if isinstance(version, bool) or version != SCHEMA_VERSION:
        raise BenchError(Problem(where=str(run_dir / "env.json"), field="schema_version",
                                 expected=f"{SCHEMA_VERSION} (this version of bench)", found=repr(version)))
    return env


def read_run_dir(run_dir: Path) -> Run:
    """One run folder (results.csv, samples.csv, env.json) as a Run; BenchError for anything missing or corrupt."""
    env = read_env(run_dir)
    results = read_csv(run_dir / "results.csv", REQUIRED_RESULT_COLUMNS)
    samples = read_csv(run_dir / "samples.csv", REQUIRED_SAMPLE_COLUMNS)
    return Run(results=results, samples=samples, env=env, source=run_dir, run_dirs=(run_dir,))


def is_run_dir(path: Path) -> bool:
    return (path / "env.json").is_file()


def run_dirs_in(path: Path | str) -> list[Path]:
    """The run folders a path names: the folder itself when it is one (or a file inside one), else the run
    folders directly inside it (what `run --out X` makes: X/<time>/), oldest name first."""
    path = Path(path)
    if path.is_file():
        if path.name not in RUN_FILES:
            raise BenchError(Problem(where=str(path), expected="a run folder, a folder of runs, or a run's "
                                     "results.csv", found="another file"))
        path = path.parent
    if not path.is_dir():
        raise BenchError(Problem(where=str(path), expected="a run folder (results/<run>) or a folder of runs",
                                 found="no such folder"))
    if is_run_dir(path):
        return [path]
    if any((path / name).is_file() for name in RUN_FILES):  # a run folder that lost its env.json
        raise BenchError(Problem(where=str(path / "env.json"), expected="a run folder's env.json", found="no such file"))
    try:
        runs = sorted(p for p in path.iterdir() if p.is_dir() and is_run_dir(p))
    except OSError as exc:
        raise BenchError(Problem(where=str(path), expected="a readable folder", found=exc.strerror or "")) from None
    if not runs:
        raise BenchError(Problem(where=str(path), expected="a run folder (with env.json) or a folder holding run folders",
                                 found="neither"))
    return runs


def latest_run_dir(root: Path) -> Path:
    """The most recently written run folder anywhere under root (a folder with env.json), for `--latest`."""
    runs = [p.parent for p in Path(root).rglob("env.json") if "baselines" not in p.parts]
    if not runs:
        raise BenchError(Problem(where=str(root), field="--latest", expected="a run folder (with env.json) under it",
                                 found="none"))
    return max(runs, key=lambda p: (p / "env.json").stat().st_mtime)
