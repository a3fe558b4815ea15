"""Writing a run folder as the run goes: a fresh folder per run, every file rewritten atomically after each row."""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from bench.errors import BenchError, Problem, WriteError
from bench.schema import RESULT_COLUMNS, SAMPLE_COLUMNS, SCHEMA_VERSION, RowKey
from bench.store.cells import neutralize
from bench.store.files import write_atomic, write_together
from bench.store.folder import Run, is_run_dir


LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def check_label(label: str) -> str:
    """A run label becomes part of a folder name: letters, digits, '.', '_' and '-' (64 at most)."""
    if label and not LABEL.fullmatch(label):
        raise BenchError(Problem(where="run", field="--label", found=repr(label), expected="ASCII letters, digits, "
                                 "'.', '_' or '-' (starting with a letter or digit, 64 at most)"))
    return label


def new_run_dir(root: Path, *, label: str = "") -> Path:
    """Create a fresh run folder <root>/<UTC time>[-label]; never reuses one (mkdir is atomic)."""
    check_label(label)
    if root.exists() and not root.is_dir():
        raise BenchError(Problem(where=str(root), field="--out", expected="a folder", found="a file"))
    if is_run_dir(root):  # a run inside a run would be hidden from every reader of the outer one
        raise BenchError(Problem(where=str(root), field="--out", expected="a folder for run folders",
                                 found="a run folder itself (it has env.json)"))
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BenchError(Problem(where=str(root), field="--out", expected="a folder that can be created or written",
                                 found=exc.strerror or type(exc).__name__)) from None
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    base = f"{stamp}-{label}" if label else stamp
    for i in range(1000):
        path = root / (base if i == 0 else f"{base}-{i}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
        except OSError as exc:
            raise BenchError(Problem(where=str(root), field="--out", expected="a writable folder",
                                     found=exc.strerror or type(exc).__name__)) from None
    raise BenchError(Problem(where=str(root), expected="a free run folder name", found=f"1000 taken for {base}"))


def cannot_write(folder: Path, exc: OSError) -> WriteError:
    return WriteError(Problem(where=str(folder), expected="a folder with free space that bench can write",
                              found=exc.strerror or type(exc).__name__))


class RunWriter:
    """Saves a run as it goes. The folder holds a loadable run from the start (env.json with complete false, and
    header-only results.csv and samples.csv); `update` replaces results.csv and samples.csv together after each
    row, so the two always describe the same rows; `finish` marks the run complete, or not with the reason.
    A write that fails raises WriteError and leaves the previous files whole. Without a folder it only keeps
    the latest frames."""

    def __init__(self, run_dir: Path | None, env: dict) -> None:
        self.run_dir = run_dir
        self.env = {"schema_version": SCHEMA_VERSION, "complete": False, **env}
        self.results = pd.DataFrame(columns=RESULT_COLUMNS)
        self.samples = pd.DataFrame(columns=SAMPLE_COLUMNS)
        self.update(self.results, self.samples)
        self._write_env()

    def _write_env(self) -> None:
        if self.run_dir is not None:
            try:
                write_atomic(self.run_dir / "env.json", json.dumps(self.env, indent=2, default=str) + "\n")
            except OSError as exc:
                raise cannot_write(self.run_dir, exc) from None

    def update(self, results: pd.DataFrame, samples: pd.DataFrame) -> None:
        """The run's frames so far (every row measured until now), saved together when there is a folder."""
        self.results, self.samples = results, samples
        if self.run_dir is not None:
            try:
                # text cells that a spreadsheet would run as a formula get a leading ' (bench.store.cells)
                write_together({self.run_dir / "results.csv": neutralize(results).to_csv(index=False),
                                self.run_dir / "samples.csv": neutralize(samples).to_csv(index=False)})
            except OSError as exc:
                raise cannot_write(self.run_dir, exc) from None

    def save_profile(self, key: RowKey, trace: str, kernels: pd.DataFrame) -> None:
        """--profile: the row's trace as profiles/<row>.json (Chrome trace format: Perfetto and chrome://tracing open
        it) and kernels.csv with the kernels of every row profiled so far."""
        if self.run_dir is None:
            return
        try:
            folder = self.run_dir / "profiles"
            folder.mkdir(exist_ok=True)
            write_atomic(folder / f"{key.stem}.json", trace)
            write_atomic(self.run_dir / "kernels.csv", neutralize(kernels).to_csv(index=False))
        except OSError as exc:
            raise cannot_write(self.run_dir, exc) from None

    def finish(self, *, complete: bool, note: str = "") -> Run:
        """Mark the run complete (or not, with the reason), save it, and return it as a Run. When it is not
        complete the saving is best effort: what cannot be written (a full disk) is left as it was."""
        self.env["complete"] = complete
        self.env["finished_utc"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        if note:
            self.env["incomplete_reason"] = note
        for save in (lambda: self.update(self.results, self.samples), self._write_env):
            try:
                save()
            except WriteError:
                if complete:
                    raise
        dirs = (self.run_dir,) if self.run_dir is not None else ()
        return Run(results=self.results, samples=self.samples, env=dict(self.env), source=self.run_dir, run_dirs=dirs)
