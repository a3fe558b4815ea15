"""What workers cost (WorkerCost, written to env.json) and the estimate of the time a run has left (Estimate),
shared by the worker schedules and the in-process runner (bench.measure.runner)."""
from __future__ import annotations

from dataclasses import dataclass, field, replace


def _median(xs: tuple[float, ...]) -> float | None:
    return sorted(xs)[len(xs) // 2] if xs else None


@dataclass(frozen=True, kw_only=True)
class WorkerCost:
    """What the workers of one side cost: how many started, the seconds from spawn to ready of each (the
    interpreter, importing torch and bench, loading the configs and planning), the part of each spent importing
    torch and bench (import_s) and loading the configs (config_s), and the seconds spent measuring rows in them."""

    started: int = 0
    start_s: tuple[float, ...] = ()
    import_s: tuple[float, ...] = ()
    config_s: tuple[float, ...] = ()
    measuring_s: float = 0.0

    def plus(self, worker) -> WorkerCost:
        """This cost with one more worker started (anything with start_s and a Ready)."""
        return replace(self, started=self.started + 1, start_s=self.start_s + (worker.start_s,),
                       import_s=self.import_s + (worker.ready.import_s,),
                       config_s=self.config_s + (worker.ready.config_s,))

    def measured(self, seconds: float) -> WorkerCost:
        """This cost with `seconds` more spent measuring."""
        return replace(self, measuring_s=self.measuring_s + seconds)

    def merged(self, other: WorkerCost) -> WorkerCost:
        """Both costs as one (the pairs of a job's later looks after its first ones)."""
        return WorkerCost(started=self.started + other.started, start_s=self.start_s + other.start_s,
                          import_s=self.import_s + other.import_s, config_s=self.config_s + other.config_s,
                          measuring_s=self.measuring_s + other.measuring_s)

    def as_dict(self) -> dict:
        return dict(started=self.started, start_s_median=_median(self.start_s), import_s_median=_median(self.import_s),
                    config_s_median=_median(self.config_s), start_s_total=sum(self.start_s),
                    measuring_s=self.measuring_s)


@dataclass
class Estimate:
    """Seconds left in a run of `total` units (rows, or blocks of rows): the seconds per timed unit so far (a guess
    until one is done) times the units left, plus the worker starts still expected times the median start so far.
    Units that need no time (a variant that does not apply) count as done but not as timed."""

    total: int
    starts: int = 0  # worker starts expected in all, the first ones included
    done: int = 0
    timed: int = 0
    spent_s: float = 0.0
    start_s: list[float] = field(default_factory=list)

    def started(self, seconds: float) -> None:
        """A worker started in `seconds`."""
        self.start_s.append(seconds)

    def finished(self, seconds: float, *, timed: bool = True) -> None:
        """A unit took `seconds` to measure (timed: it was measured, not merely declared not applicable)."""
        self.done += 1
        if timed:
            self.timed += 1
            self.spent_s += seconds

    def dropped(self, units: int = 1) -> None:
        """Units that will not be measured after all (a row given up after a crash): the total shrinks."""
        self.total -= units

    def left_s(self, guess_s: float) -> float:
        """The estimate before the next unit; guess_s: the seconds of one unit before any was timed."""
        per = self.spent_s / self.timed if self.timed else guess_s
        starts_left = max(0, self.starts - len(self.start_s))
        return per * max(0, self.total - self.done) + starts_left * (_median(tuple(self.start_s)) or 0.0)
