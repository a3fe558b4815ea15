"""`load`: the one way every command and the Python API read a run back, whatever path names it.

A path may be a run folder, a file inside one (results.csv), or a folder holding run folders (the folder
given to `run --out`): one run inside is that run; several are rounds of one suite, pooled (bench.store.rounds).
"""
from __future__ import annotations

from pathlib import Path

from bench.store.folder import Run, read_run_dir, run_dirs_in
from bench.store.rounds import pool


def load(path: Path | str) -> Run:
    """The run a path names (see the module's docstring). BenchError (one line) for anything missing or corrupt."""
    dirs = run_dirs_in(path)
    given = Path(path)
    source = given.parent if given.is_file() else given
    if len(dirs) == 1:
        run = read_run_dir(dirs[0])
        return Run(results=run.results, samples=run.samples, env=run.env, source=source, run_dirs=run.run_dirs)
    return pool(source, [read_run_dir(d) for d in dirs])
