"""Calibration, an A/A experiment: run the suite several times and store how much each row's median moves.

`bench compare` widens a row's threshold to Rule.noise_factor x that noise when it exceeds the threshold the
row would otherwise use.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench.errors import Problem, WriteError, strict_int
from bench.gate.baseline import CALIBRATION_FILE, NOISE_FILE, has_baseline, promote, store_dir
from bench.measure.record import Record
from bench.schema import FAILED, KEY_COLUMNS, OK, RESULTS_DIR
from bench.store.cells import neutralize
from bench.store.env_record import RunEnv
from bench.store.files import writable_folder, write_together
from bench.store.folder import Run
from bench.store.frames import to_frame, to_samples

DEFAULT_REPEATS = 5  # A/A runs of `calibrate` unless told


@dataclass(frozen=True, kw_only=True)
class Calibration:
    """Per-row medians of every repeat (long frame: the key columns, repeat, median_s) and the noise per
    row: max median / min median - 1 over the repeats, the largest A/A difference seen."""

    medians: pd.DataFrame
    noise: pd.DataFrame
    records: tuple[Record, ...]  # the first repeat's records, to seed a baseline when there is none


def noise_of(medians: pd.DataFrame) -> pd.DataFrame:
    """noise = max/min - 1 of each row's medians over the repeats it ran in. A row with a median from fewer
    than 2 repeats (it failed in the others) gets no noise value: one median shows no spread, and 0 would
    claim a quiet row. `compare` then uses the row's threshold unwidened."""
    key = [c for c in KEY_COLUMNS if c in medians.columns]
    grouped = medians.dropna(subset=["median_s"]).groupby(key)["median_s"]
    frame = pd.DataFrame({"noise": grouped.max() / grouped.min() - 1, "repeats": grouped.count()}).reset_index()
    return frame[frame["repeats"] >= 2].dropna(subset=["noise"]).reset_index(drop=True)


def calibrate(repeat: Callable[[], list[Record]], *, repeats: int = 5) -> Calibration:
    """Measure the suite `repeats` times (an A/A experiment: `repeat` measures it once, as `run` does) and how much
    each row's median moves."""
    strict_int(repeats, where="calibrate", field="--repeats", minimum=2, expected="at least 2")
    frames, first = [], ()
    for i in range(repeats):
        records = repeat()
        first = first or tuple(records)
        frame = to_frame(records)
        frame = frame[frame["status"] == OK][[*KEY_COLUMNS, "median_s"]].assign(repeat=i)
        frames.append(frame)
    medians = pd.concat(frames, ignore_index=True)
    return Calibration(medians=medians, noise=noise_of(medians), records=first)


def save_calibration(cal: Calibration, env: dict, *, root: Path = RESULTS_DIR) -> list[Path]:
    """Write noise.csv and calibration.csv into each device's store folder; where a folder has no
    baseline yet, the first repeat becomes it. Returns the folders written."""
    written = []
    keys = env.get("machine_keys") or {}
    for device in sorted(set(cal.noise["device"])):
        folder = writable_folder(store_dir(device, root=root, key=keys.get(device)), option="--root")
        if not has_baseline(folder) and not any(r.status in FAILED for r in cal.records):
            first = Run(results=to_frame(list(cal.records)), samples=to_samples(list(cal.records)),
                        env=RunEnv.of(env).finished(complete=True).to_dict())
            promote(first, root=root, source="bench calibrate (its first repeat)")
        try:
            write_together({
                folder / NOISE_FILE: neutralize(cal.noise[cal.noise["device"] == device]).to_csv(index=False),
                folder / CALIBRATION_FILE:
                    neutralize(cal.medians[cal.medians["device"] == device]).to_csv(index=False)})
        except OSError as exc:
            raise WriteError(Problem(where=str(folder), field="--root", expected="a store folder bench can write",
                                     found=exc.strerror or type(exc).__name__)) from None
        written.append(folder)
    return written
