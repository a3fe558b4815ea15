"""One run folder on disk: reading a folder back into a `Run` (bench.store.run_record), and where run folders are."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from bench.errors import BenchError, Problem, not_a_file
from bench.schema import (
    KEY_COLUMNS,
    READABLE_SCHEMA_VERSIONS,
    REQUIRED_RESULT_COLUMNS,
    REQUIRED_SAMPLE_COLUMNS,
    RUN_FILES,
    STATUSES,
    RowKey,
)
from bench.store.cells import FORMULA_STARTS
from bench.store.files import first_row, read_csv, read_json_object
from bench.store.run_record import Run

# A per-call time is a finite number of seconds above 0 and below this (11.6 days): anything else is a corrupt
# file, and a bound keeps sums over many samples finite (1e308 would overflow them).
MAX_CALL_S = 1e6
TIME_COLUMNS = ("device_s", "host_s", "enqueue_s")


def read_env(run_dir: Path) -> dict:
    """env.json of a run folder: a schema_version this bench reads, `complete` true or false, `machine_keys` (when
    given) an object of device -> key strings; BenchError (one line naming the field) otherwise."""
    where = str(run_dir / "env.json")
    env = read_json_object(run_dir / "env.json", what="a run folder's env.json")
    version = env.get("schema_version")
    if isinstance(version, bool) or version not in READABLE_SCHEMA_VERSIONS:
        raise BenchError(Problem(where=where, field="schema_version", found=repr(version)[:80],
                                 expected=f"{' or '.join(map(str, READABLE_SCHEMA_VERSIONS))} (this version of bench)"))
    if "complete" in env and not isinstance(env["complete"], bool):
        raise BenchError(Problem(where=where, field="complete", expected="true or false",
                                 found=repr(env["complete"])[:80]))
    keys = env.get("machine_keys")
    if keys is not None and not (isinstance(keys, dict) and all(isinstance(k, str) and isinstance(v, str)
                                                                for k, v in keys.items())):
        raise BenchError(Problem(where=where, field="machine_keys", found=repr(keys)[:80],
                                 expected='an object of device -> machine key strings, e.g. {"cpu": "cpu-..."}'))
    return env


def _numbers(frame: pd.DataFrame, column: str) -> np.ndarray:
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)


def _refuse(where: str, frame: pd.DataFrame, bad, column: str, expected: str) -> None:
    """BenchError naming the first bad row's line (`where`:line) and its column, when there is one."""
    bad = pd.Series(np.asarray(bad, dtype=bool))
    if bad.any():
        row = first_row(bad)
        value = frame[column].iloc[row]
        found = "an empty cell (or NaN)" if pd.isna(value) else repr(value)
        raise BenchError(Problem(where=f"{where}:{row + 2}", field=column, expected=expected, found=found))


def _keys(frame: pd.DataFrame) -> pd.MultiIndex:
    return pd.MultiIndex.from_frame(frame[list(KEY_COLUMNS)].astype(str))


def check_run(run: Run, where: str) -> None:
    """The checks every run passes on load (and compare repeats for runs built in memory), so no reader meets
    a value it cannot use. `where` names the run folder; errors name <where>/<file>:<line> and the column.

    results.csv: a status of schema.STATUSES; an ok row's median_s a time (finite, > 0, < MAX_CALL_S); a
    threshold, when given, in (0, 10); one row per identity (workload, device, dtype, variant).
    samples.csv: device_s, host_s and enqueue_s times; calls an integer >= 1; every sample of a row of
    results.csv. And every ok row of results.csv has samples: the two files describe the same rows.
    """
    results, samples = run.results, run.samples
    rw, sw = f"{where}/results.csv", f"{where}/samples.csv"
    time = f"a per-call time in seconds (a finite number > 0 and < {MAX_CALL_S:g})"
    _refuse(rw, results, ~results["status"].isin(STATUSES), "status", "one of " + ", ".join(STATUSES))
    ok = (results["status"] == "ok").to_numpy()
    with np.errstate(invalid="ignore"):
        if "median_s" in results.columns:
            median = _numbers(results, "median_s")
            _refuse(rw, results, ok & ~((median > 0) & (median < MAX_CALL_S)), "median_s", time + " in an ok row")
        if "threshold" in results.columns:
            t = _numbers(results, "threshold")
            _refuse(rw, results, ~np.isnan(t) & ~((t > 0) & (t < 10)), "threshold",
                    "empty or a fraction in (0, 10), such as 0.1 for 10%")
        for column in TIME_COLUMNS:
            if column in samples.columns:
                x = _numbers(samples, column)
                _refuse(sw, samples, ~((x > 0) & (x < MAX_CALL_S)), column, time)
        if "calls" in samples.columns:
            calls = _numbers(samples, "calls")
            _refuse(sw, samples, ~((calls >= 1) & (calls < 2**53) & (np.mod(calls, 1) == 0)), "calls",
                    "an integer >= 1")
        if "process" in samples.columns:  # the unit of the gate's statistics: a number, never a blank
            proc = _numbers(samples, "process")
            _refuse(sw, samples, ~((proc >= 0) & (proc < 2**31) & (np.mod(proc, 1) == 0)), "process", "an integer >= 0")
    with np.errstate(invalid="ignore"):
        for column, least in (("threads", 0), ("n_samples", 1), ("calls_per_sample", 1)):
            if column in results.columns:  # readers use these as integers
                x = _numbers(results, column)
                _refuse(rw, results, ok & ~((x >= least) & (x < 2**31) & (np.mod(x, 1) == 0)), column,
                        f"an integer >= {least} in an ok row")
    for frame, path in ((results, rw), (samples, sw)):  # a spreadsheet would run such a name as a formula
        for column in KEY_COLUMNS:
            if column in frame.columns:
                _refuse(path, frame, frame[column].astype(str).str.startswith(FORMULA_STARTS), column,
                        "a name that does not start with =, +, -, @, a tab or a carriage return")
    _check_shapes(rw, results)
    _check_one_line_per_sample(sw, samples)
    rkeys, skeys = _keys(results), _keys(samples)
    label = lambda keys, i: RowKey(*keys[i]).label  # noqa: E731 - a one-line helper for the messages below
    twice = rkeys.duplicated()
    if twice.any():
        i = first_row(pd.Series(twice))
        raise BenchError(Problem(where=f"{rw}:{i + 2}", field=", ".join(KEY_COLUMNS), expected="one row per "
                                 "workload, device, dtype and variant", found=f"a duplicate row, {label(rkeys, i)}"))
    stray = ~skeys.isin(rkeys)
    if stray.any():
        i = first_row(pd.Series(stray))
        raise BenchError(Problem(where=f"{sw}:{i + 2}", field=", ".join(KEY_COLUMNS), expected="a row of results.csv "
                                 "(the two files describe the same rows)", found=f"samples of {label(skeys, i)}, "
                                 "a row results.csv lacks"))
    bare = ok & ~rkeys.isin(skeys)
    if bare.any():
        i = first_row(pd.Series(bare))
        raise BenchError(Problem(where=f"{rw}:{i + 2}", field="status", expected="samples in samples.csv for an ok row",
                                 found=f"none for {label(rkeys, i)}"))


# A shape as bench writes it: "[16, 3, 224, 224]", "[]" for a scalar output; an empty cell where none is known.
SHAPE = re.compile(r"\[(?:\d+(?:, ?\d+)*)?\]")
SAMPLE_IDENTITY = (*KEY_COLUMNS, "process", "sample")


def _check_shapes(where: str, results: pd.DataFrame) -> None:
    for column in ("input_shape", "output_shape"):
        if column in results.columns:
            text = results[column].fillna("").astype(str)
            _refuse(where, results, (text != "") & ~text.str.fullmatch(SHAPE), column,
                    "a shape such as [16, 64] (sizes >= 0), or an empty cell")


def _check_one_line_per_sample(where: str, samples: pd.DataFrame) -> None:
    """A sample is one line: a line repeated (a file concatenated or edited) would count twice in every
    statistic. A sample's identity is its row's, its worker process and its number in that process."""
    if "sample" not in samples.columns:
        return
    twice = samples.duplicated(list(SAMPLE_IDENTITY)).to_numpy()
    if twice.any():
        i = first_row(pd.Series(twice))
        key = RowKey(*(str(samples[c].iloc[i]) for c in KEY_COLUMNS)).label
        raise BenchError(Problem(where=f"{where}:{i + 2}", field=", ".join(SAMPLE_IDENTITY),
                                 expected="one line per sample", found=f"a duplicate of an earlier line, a sample of "
                                 f"{key} (process {samples['process'].iloc[i]}, sample {samples['sample'].iloc[i]})"))


def read_run_dir(run_dir: Path) -> Run:
    """One run folder (results.csv, samples.csv, env.json) as a Run; BenchError for anything missing, corrupt or
    inconsistent (check_run: the results and samples always agree, as a pair, once loaded)."""
    env = read_env(run_dir)
    results = read_csv(run_dir / "results.csv", REQUIRED_RESULT_COLUMNS)
    samples = read_csv(run_dir / "samples.csv", REQUIRED_SAMPLE_COLUMNS)
    if "n_processes" in results.columns and "process" not in samples.columns:  # both or neither (before workers)
        raise BenchError(Problem(where=str(run_dir / "samples.csv"), field="process", expected="a process column, "
                                 "as results.csv has n_processes (the gate's unit is the process)",
                                 found="none"))
    run = Run(results=results, samples=samples, env=env, source=run_dir, run_dirs=(run_dir,))
    check_run(run, str(run_dir))
    return run


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
    if (path / "ab.json").is_file():  # two versions of the code, never rounds of one run
        raise BenchError(Problem(where=str(path), expected="one run: an A/B folder's baseline/ or candidate/ "
                                 f"(bench compare {path}/baseline {path}/candidate judges them)",
                                 found="an A/B folder"))
    if any((path / name).is_file() for name in RUN_FILES):  # a run folder that lost its env.json
        raise BenchError(Problem(where=str(path / "env.json"), expected="a run folder's env.json",
                                 found=not_a_file(path / "env.json")))
    try:
        runs = sorted(p for p in path.iterdir() if p.is_dir() and is_run_dir(p))
    except OSError as exc:
        raise BenchError(Problem(where=str(path), expected="a readable folder", found=exc.strerror or "")) from None
    if not runs:
        raise BenchError(Problem(where=str(path),
                                 expected="a run folder (with env.json) or a folder holding run folders",
                                 found="neither"))
    return runs


def latest_run_dir(root: Path) -> Path:
    """The most recently written run folder anywhere under root (a folder with env.json), for `--latest`."""
    runs = [p.parent for p in Path(root).rglob("env.json") if p.relative_to(root).parts[0] != "baselines"]
    if not runs:
        raise BenchError(Problem(where=str(root), field="--latest", expected="a run folder (with env.json) under it",
                                 found="none"))
    return max(runs, key=lambda p: (p / "env.json").stat().st_mtime)


def require_rows(run: Run, *, purpose: str) -> Run:
    """The run, when it has rows: a header-only run folder (a run stopped before its first row, or a file emptied)
    has nothing to report, plot, export or keep in the history store. BenchError in one line otherwise."""
    if run.results.empty:
        where = run.run_dirs[0] / "results.csv" if len(run.run_dirs) == 1 else run.name
        raise BenchError(Problem(where=str(where), field="rows", expected=f"at least one row {purpose}",
                                 found="no rows (a header only)"))
    return run


def incomplete_reason(run: Run) -> str | None:
    """Why a run is incomplete (env.json's incomplete_reason, or "not marked complete"), None when complete."""
    if run.complete:
        return None
    return str(run.env.get("incomplete_reason") or "not marked complete")
