"""Calibrating from Python: an A/A experiment, the suite measured several times exactly as `run` measures it,
and each row's noise stored beside this machine's baseline (bench.gate.calibrate)."""
from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.api.running import Prepared, SuiteSpec, execute, prepare
from bench.gate.calibrate import DEFAULT_REPEATS, Calibration, save_calibration
from bench.gate.calibrate import calibrate as measure_noise
from bench.measure.record import Record
from bench.measure.sampling import Policy
from bench.schema import RESULTS_DIR
from bench.store.files import writable_folder
from bench.suite.variants import Variant


@dataclass(frozen=True, kw_only=True)
class Calibrated:
    """A calibration done: the medians and noise per row, what was measured, and the store folders written."""

    calibration: Calibration
    prepared: Prepared
    folders: tuple[Path, ...]


def calibrate(suite: SuiteSpec, *, repeats: int = DEFAULT_REPEATS, device: str = "all",
              budget_s: float = Policy.budget_s, warmup_s: float = Policy.warmup_s,
              min_samples: int = Policy.min_samples, threads: int | None = None,
              variants: str | Sequence[Variant | str] = (), filter: str = "", processes: int | None = None,
              seed: int | None = None, root: str | Path = RESULTS_DIR, argv: Sequence[str] = (),
              on_start: Callable[[Prepared], None] | None = None) -> Calibrated:
    """Run the suite `repeats` times (each repeat as bench.execute runs it: in worker processes, or in this
    process with processes=0) and store each row's noise (max/min - 1 of its medians) in <root>/baselines/
    <machine>/noise.csv; where no baseline is there yet, the first repeat becomes it. seed: the schedules'
    random order (None: new ones). on_start: called with the prepared run before anything is measured."""
    root = writable_folder(Path(root), option="--root")  # before minutes of measuring
    prepared = prepare(suite, device=device, budget_s=budget_s, warmup_s=warmup_s, min_samples=min_samples,
                       threads=threads, variants=variants, filter=filter, argv=argv, processes=processes)
    if on_start:
        on_start(prepared)
    rng = random.Random(seed)

    def repeat() -> list[Record]:
        records: list[Record] = []
        execute(prepared, on_record=records.append, seed=rng.randrange(2**32))
        return records

    cal = measure_noise(repeat, repeats=repeats)
    folders = save_calibration(cal, prepared.env.to_dict(), root=root)
    return Calibrated(calibration=cal, prepared=prepared, folders=tuple(folders))
