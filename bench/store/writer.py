"""Writing a run folder as the run goes: a fresh folder per run, every file rewritten atomically after each row."""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from bench.errors import BenchError, Problem
from bench.schema import RESULT_COLUMNS, SAMPLE_COLUMNS, SCHEMA_VERSION
from bench.store.files import write_atomic
from bench.store.folder import Run

LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def check_label(label: str) -> str:
    """A run label becomes part of a folder name: letters, digits, '.', '_' and '-' (64 at most)."""
    if label and not LABEL.fullmatch(label):
        raise BenchError(Problem(where="run", field="--label", found=repr(label),
                                 expected="letters, digits, '.', '_' or '-' (starting with a letter or digit, 64 at most)"))
    return label


def new_run_dir(root: Path, *, label: str = "") -> Path:
    """Create a fresh run folder <root>/<UTC time>[-label]; never reuses one (mkdir is atomic)."""
    check_label(label)
    if root.exists() and not root.is_dir():
        raise BenchError(Problem(where=str(root), field="--out", expected="a folder", found="a file"))
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


class RunWriter:
    """Saves a run as it goes: `update` rewrites results.csv and samples.csv atomically; `finish` marks the
    run complete (or not, with the reason). Without a folder it only keeps the latest frames."""

    def __init__(self, run_dir: Path | None, env: dict) -> None:
        self.run_dir = run_dir
        self.env = {"schema_version": SCHEMA_VERSION, "complete": False, **env}
        self.results = pd.DataFrame(columns=RESULT_COLUMNS)
        self.samples = pd.DataFrame(columns=SAMPLE_COLUMNS)
        self._write_env()

    def _write_env(self) -> None:
        if self.run_dir is not None:
            write_atomic(self.run_dir / "env.json", json.dumps(self.env, indent=2, default=str) + "\n")

    def update(self, results: pd.DataFrame, samples: pd.DataFrame) -> None:
        """The run's frames so far (every row measured until now), saved when there is a folder."""
        self.results, self.samples = results, samples
        if self.run_dir is not None:
            write_atomic(self.run_dir / "results.csv", results.to_csv(index=False))
            write_atomic(self.run_dir / "samples.csv", samples.to_csv(index=False))

    def finish(self, *, complete: bool, note: str = "") -> Run:
        """Mark the run complete (or not, with the reason), save it, and return it as a Run."""
        self.env["complete"] = complete
        self.env["finished_utc"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        if note:
            self.env["incomplete_reason"] = note
        self.update(self.results, self.samples)
        self._write_env()
        dirs = (self.run_dir,) if self.run_dir is not None else ()
        return Run(results=self.results, samples=self.samples, env=dict(self.env), source=self.run_dir, run_dirs=dirs)
