"""The `Report` record: everything a report shows, as data (bench.report.build makes it, render writes it)."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from bench.measure.roofs import Peaks
from bench.store.folder import Run


@dataclass(frozen=True, kw_only=True)
class Report:
    """Everything a report shows. frame: every row of every run, with run, machine and roofline columns."""

    runs: tuple[Run, ...]
    envs: tuple[dict, ...]
    frame: pd.DataFrame
    best: pd.DataFrame
    peaks: tuple[Peaks, ...]
    figures: dict[str, bytes]  # caption -> PNG
    notes: tuple[str, ...]
