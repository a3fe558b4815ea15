"""The baseline store: <root>/baselines/<machine_key>/, one folder per kind of machine and device.

A store folder is a run folder (results.csv, samples.csv, env.json: `bench compare` reads it as such)
holding one device's rows, plus baseline.json (where it came from) and, after `bench calibrate`,
noise.csv (per row: the relative spread of medians between A/A runs) and calibration.csv (the
medians behind it). Each CI machine type compares against its own folder.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from bench.errors import BenchError, Problem, WriteError
from bench.measure.env import machine_key
from bench.schema import FAILED, KEY_COLUMNS, RESULTS_DIR
from bench.store.cells import neutralize
from bench.store.files import first_row, read_csv, writable_folder, write_together
from bench.store.folder import Run

NOISE_FILE = "noise.csv"
CALIBRATION_FILE = "calibration.csv"


def baselines_dir(root: Path = RESULTS_DIR) -> Path:
    """Where the store lives under a results root (--root): <root>/baselines."""
    return Path(root) / "baselines"


def store_dir(device: str, *, root: Path = RESULTS_DIR, key: str | None = None) -> Path:
    """This machine's store folder for `device` (key: a run's recorded machine key, else this machine's)."""
    return baselines_dir(root) / (key or machine_key(device))


def has_baseline(folder: Path) -> bool:
    return all((Path(folder) / name).is_file() for name in ("results.csv", "samples.csv", "env.json"))


def promote(run: Run, *, root: Path = RESULTS_DIR, source: str = "") -> list[Path]:
    """Copy a run's rows into the store, one folder per device under the machine key the run recorded.

    A run of several pooled rounds gives a baseline of their pooled samples. Replaces an older baseline
    of that folder but keeps its noise.csv (calibration is of the machine, not of one run). Refuses
    incomplete runs, runs without rows and runs with failed rows; rows not-applicable (a variant that cannot run
    on that device) are not failures and are kept. Returns the folders written.
    """
    where = str((run.source or Path("run")) / "env.json")
    if not run.complete:
        raise BenchError(Problem(where=where, field="complete", expected="a finished run to promote",
                                 found=f"an incomplete run ({run.env.get('incomplete_reason', 'unfinished')})"))
    results, samples = run.results, run.samples
    if results.empty:
        raise BenchError(Problem(where=str((run.source or Path("run")) / "results.csv"), field="rows",
                                 expected="at least one row to promote", found="none (a header only)"))
    failed = results[results["status"].isin(FAILED)]  # skipped included: a baseline has every row
    if len(failed):
        raise BenchError(Problem(where=str((run.source or Path("run")) / "results.csv"), field="status",
                                 expected="ok on every row", found=f"{len(failed)} failed row(s), e.g. "
                                 f"{failed.iloc[0]['workload']}: {failed.iloc[0]['status']}"))
    written = []
    keys = run.env.get("machine_keys") or {}
    keys = keys if isinstance(keys, dict) else {}  # checked on load; a Run built in memory may hold anything
    for device in sorted(set(results["device"])):
        folder = writable_folder(store_dir(device, root=root, key=keys.get(device)), option="--root")
        mine = results["device"] == device
        try:  # the four files change together: never a results.csv of one run beside the samples of another
            write_together({
                folder / "results.csv": neutralize(results[mine]).to_csv(index=False),
                folder / "samples.csv": neutralize(samples[samples["device"] == device]).to_csv(index=False),
                folder / "env.json": json.dumps(dict(run.env), indent=2, default=str) + "\n",
                folder / "baseline.json": json.dumps({
                    "source": source or str(run.source), "device": device,
                    "promoted_utc": datetime.now(timezone.utc).isoformat(timespec="seconds")}, indent=2) + "\n"})
        except OSError as exc:
            raise WriteError(Problem(where=str(folder), field="--root", expected="a store folder bench can write",
                                     found=exc.strerror or type(exc).__name__)) from None
        written.append(folder)
    return written


def load_noise(folder: Path) -> dict[tuple[str, ...], float]:
    """noise.csv of a store folder as {identity: relative noise}; empty when the folder was never calibrated.
    An identity is (workload, device, dtype, variant), or (workload, device, dtype) in files without variant.
    BenchError (one line naming the file, its line and column) for an unreadable file, a missing column, or a
    noise that is not a finite fraction >= 0 (NaN, inf, negative, text)."""
    path = Path(folder) / NOISE_FILE
    if not path.is_file():
        return {}
    frame = read_csv(path, (*KEY_COLUMNS[:3], "noise"))  # key columns stay strings; "noise" is read as text
    key = [c for c in KEY_COLUMNS if c in frame.columns]
    text = frame["noise"].fillna("")
    noise = pd.to_numeric(text.replace("", None), errors="coerce").astype(float)
    bad = ~(np.isfinite(noise) & (noise >= 0))  # NaN (an empty cell, "nan", text), inf, negative
    if bad.any():
        row = first_row(bad)
        raise BenchError(Problem(where=f"{path}:{row + 2}", field="noise", expected="a finite fraction >= 0",
                                 found=repr(text.iloc[row])))
    return {tuple(str(v) for v in row[key]): float(n) for (_, row), n in zip(frame.iterrows(), noise)}
