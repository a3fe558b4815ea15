"""The `Report` record: everything a report shows, as data (bench.report.build makes it, render writes it)."""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from bench.measure.roofs import Peaks
from bench.store.run_record import Run


@dataclass(frozen=True, kw_only=True)
class ModelSection:
    """One model on one machine and device, as the report shows it (bench.report.attribution makes it).

    summary: the model against the sum of its layers, a row per dtype and variant; top: its largest layers in
    one variant (named in top_title); figures: caption -> PNG (the layers' shares, the model on the roofline)."""

    anchor: str  # the HTML section's id, also the stem of its figures' file names
    title: str
    summary_headers: tuple[str, ...]
    summary: tuple[tuple[str, ...], ...]
    top_title: str
    top_headers: tuple[str, ...]
    top: tuple[tuple[str, ...], ...]
    notes: tuple[str, ...]
    figures: dict[str, bytes]


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
    # models (bench.layers): the attribution table (bench.store.attribution) and a section per model and device
    attribution: pd.DataFrame = field(default_factory=pd.DataFrame)
    models: tuple[ModelSection, ...] = ()
