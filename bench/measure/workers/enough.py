"""When `run` has measured a row in enough worker processes: its between-process interval is within a target.

`run` gives every row `min_processes` processes first, then after each trial stops giving processes to a row whose
interval of the median of its process medians (bench.stats.headline_interval, at `confidence`) is within
`precision` of that median on either side; the other rows go on, up to the maximum (`processes`). A quiet machine
pays the minimum; a noisy one spends its processes on the rows that need them.

This is a precision target for reporting a number, not a test of a hypothesis: no verdict rests on the stop, so
looking after each trial needs no alpha spending. What it can bias is the interval's coverage (a row stops when
its processes happen to agree), which stays close to nominal because the target is reached mostly by rows whose
processes agree closely; the gate, which does test, reasons on the processes a row has, with its own rule.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from bench.errors import BenchError, Problem, strict_int
from bench.schema import OK
from bench.stats import headline_interval, relative_half_width

if TYPE_CHECKING:  # annotations only: this module imports leaves alone, so it adds no step to an import chain
    from bench.measure.record import Record
    from bench.measure.workers.protocol import Row

# The default target, relative half-width of the 95% interval of the median of process medians: 2%. Two numbers
# each known to +-2% agree within about 4% when they measure the same thing, and 2% is below half of the gate's 10%
# threshold, so a row that stopped is precise enough for both. A tighter target sends rows on a shared machine to
# the maximum for precision its processes cannot give; a looser one (5%) would let three processes 10% apart stop.
DEFAULT_PRECISION = 0.02
# The default minimum: 3, the fewest processes with a between-process interval at all (Student's t on the log
# process medians with 2 degrees of freedom; 2 processes give df 1, whose t quantile of 12.7 makes any interval
# useless). Order statistics would need 6 (bench.stats.min_for_interval), which would save at most one of 7.
DEFAULT_MIN_PROCESSES = 3
CONFIDENCE = 0.95

OnStop = Callable[[str, "Row", str], None]


def check_stopping(*, processes: int, min_processes: int, precision: float) -> None:
    """min_processes an integer >= 1 (more than `processes` means all of them); precision a number >= 0
    (0: never stop early)."""
    strict_int(min_processes, where="run", field="min_processes", minimum=1)
    if isinstance(precision, bool) or not isinstance(precision, (int, float)) or not precision >= 0 \
            or not np.isfinite(precision):
        raise BenchError(Problem(where="run", field="precision", expected="a number >= 0 such as 0.02 for 2% "
                                 "(0: every row gets --processes)", found=repr(precision)))
    strict_int(processes, where="run", field="processes", minimum=1)


@dataclass(eq=False)
class Tally:
    """Each row's process medians on each side, the rows stopped, and why each row's processes ended."""

    min_processes: int
    precision: float
    processes: int
    medians: dict[tuple[str, Row], list[float]] = field(default_factory=dict)
    failed: set[tuple[str, Row]] = field(default_factory=set)
    stopped: dict[tuple[str, Row], str] = field(default_factory=dict)

    def add(self, side: str, row: Row, record: Record) -> None:
        """One process's record of the row: its median per-call time kept (a failed record marks the row)."""
        m = record.measurement
        if record.status == OK and m is not None and len(m.device_s):
            self.medians.setdefault((side, row), []).append(float(np.median(m.device_s)))
        elif record.status != OK:
            self.failed.add((side, row))

    def active(self, side: str, row: Row) -> bool:
        return (side, row) not in self.stopped

    def width(self, side: str, row: Row) -> float:
        """The relative half-width of the row's interval now (inf without one)."""
        return relative_half_width(*headline_interval(self.medians.get((side, row), []), confidence=CONFIDENCE))

    def settle(self, side: str, rows: list[Row], *, done: int) -> list[Row]:
        """After `done` trials: the rows of the side that stop now (their interval within the target, every
        process so far measured them, none failed), marked stopped with the reason."""
        if done < self.min_processes or done >= self.processes or self.precision <= 0:
            return []
        out = []
        for row in rows:
            key = (side, row)
            if not self.active(side, row) or key in self.failed or len(self.medians.get(key, [])) < done:
                continue
            width = self.width(side, row)
            if width <= self.precision:
                self.stopped[key] = f"precise: +-{width:.1%} at {done} processes (target {self.precision:.1%})"
                out.append(row)
        return out

    def reason(self, side: str, row: Row) -> str:
        """Why the row's processes ended: stopped at its target, or the maximum reached (with its width then)."""
        key = (side, row)
        if key in self.stopped:
            return self.stopped[key]
        if key in self.failed:
            return "failed in a process: measured in every trial"
        n = len(self.medians.get(key, []))
        width = self.width(side, row)
        shown = "no interval" if not np.isfinite(width) else f"+-{width:.1%}"
        return f"maximum: {shown} at {n} processes (target {self.precision:.1%})"


def row_label(row: Row) -> str:
    """"seed-conv11 / cpu" or "seed-conv11 / bfloat16 / cpu": a row as env.json names it."""
    name = row.variant.name
    return " / ".join(p for p in (row.workload, "" if name == "default" else name, row.device) if p)
