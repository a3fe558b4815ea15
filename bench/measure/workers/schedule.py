"""The order rows are measured in worker processes: `run`'s trials and `ab`'s pairs, two orderings of one crew.

Why processes: on a shared machine one process can run slower than another for its whole life, so samples from
one process are not independent evidence; several processes per row make the process the unit of the gate's
statistics (bench.gate.rule).

Trials (run_in_workers, randomized multiple interleaved trials): `processes` trials; in each, every side gets a
fresh worker that measures all of that side's rows in a random order. Pairs (run_pairs, bench ab): in each pair
both sides get a worker, alive together, and for each row (in a random order) the two alternate short blocks, in
a random order each time, so both sides meet the same moments of a noisy machine.

In `run`, from `min_processes` trials on, a row whose between-process interval is within the target gets no more
trials (bench.measure.workers.enough): up to `processes` trials, each with the rows still undecided.

The crew both share: a worker stays warm across rows (one interpreter start and torch import per trial or pair),
except that `compile` and `cudnn_benchmark` rows get a worker of their own, so that no dynamo or cuDNN cache
leaks between rows, and that a worker whose row failed is replaced (a failed CUDA call can poison its context). A
row whose worker crashed or hung is not measured again by that side (`retries` more times when asked): its status
and reason stand, and a hang costs its time limit once, not once per process.
"""
from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from bench.errors import strict_int
from bench.measure.record import Progress, Record
from bench.measure.sampling import Policy
from bench.measure.workers.cost import Estimate, WorkerCost
from bench.measure.workers.enough import OnStop, Tally, check_stopping
from bench.measure.workers.process import LOST, Worker
from bench.measure.workers.protocol import Job, Row, Side
from bench.measure.workers.rows import FAILED, applies, isolated, rows_for
from bench.suite.plan import Plan

Spawn = Callable[[Side, Job, int], Worker]
OnRecord = Callable[[str, Record], None]


def check_count(where: str, name: str, value: object, *, minimum: int = 1) -> int:
    return strict_int(value, where=where, field=name, minimum=minimum)


@dataclass(eq=False)
class Lane:
    """One side in a schedule: its rows and plans (learnt from its first worker), its live worker, the number its
    next worker gets, what its workers cost, and how often each row's worker crashed or hung."""

    side: Side
    rows: list[Row] = field(default_factory=list)
    plans: dict[str, Plan] = field(default_factory=dict)
    worker: Worker | None = None
    next_number: int = 0
    cost: WorkerCost = field(default_factory=WorkerCost)
    lost: dict[Row, int] = field(default_factory=dict)

    def applies(self, row: Row) -> bool:
        return applies(self.plans[row.workload], row)


class Crew:
    """What both orderings share: starting, stopping and replacing workers (every live one killed by `kill_all`),
    a fresh worker for isolated rows, the rows given up after a crash or a hang, cost accounting and progress."""

    def __init__(self, job: Job, *, spawn: Spawn, on_record: OnRecord,
                 on_progress: Callable[[Progress], None] | None, retries: int) -> None:
        self.job, self.spawn, self.retries = job, spawn, retries
        self.on_record, self.on_progress = on_record, on_progress
        self.live: list[Worker] = []
        self.estimate = Estimate(total=0)

    def open(self, side: Side, number: int) -> Lane:
        """A lane for a side, with its first worker started: its rows are learnt from it, and the workers after it
        get its plans (planning once per side is enough)."""
        lane = Lane(side=side)
        ready = self.start(lane, number).ready
        lane.side = replace(side, plans=ready.plans)
        lane.rows = rows_for(ready, self.job)
        lane.plans = {p.workload.name: p for p in ready.plans}
        return lane

    def start(self, lane: Lane, number: int) -> Worker:
        self.stop(lane)
        return self._took(lane, self.spawn(lane.side, self.job, number), number)

    def _took(self, lane: Lane, worker: Worker, number: int) -> Worker:
        self.live.append(worker)
        lane.worker, lane.next_number, lane.cost = worker, number + 1, lane.cost.plus(worker)
        self.estimate.started(worker.start_s)
        return worker

    def start_together(self, lanes: Sequence[Lane], number: int) -> None:
        """A new worker for each lane, all launched before any is waited for, so that a pair's two interpreters
        import torch side by side, each on a core of its own, while nothing is measured; when one cannot start,
        the others are killed and its error raised. A spawn without `launch` (the tests' fakes) starts them one by
        one."""
        for lane in lanes:
            self.stop(lane)
        launch = getattr(self.spawn, "launch", None)
        if launch is None:
            for lane in lanes:
                self.start(lane, number)
            return
        launched: list[Worker] = []
        try:
            for lane in lanes:
                launched.append(launch(lane.side, self.job, number))
            for worker in launched:
                worker.wait_ready()
        except BaseException:
            for worker in launched:
                worker.kill()
            raise
        for lane, worker in zip(lanes, launched):
            self._took(lane, worker, number)

    def stop(self, lane: Lane, *, kill: bool = False) -> None:
        """Close (or kill) the lane's worker, if any, and forget it."""
        worker, lane.worker = lane.worker, None
        if worker is not None:
            (worker.kill if kill else worker.close)()
            if worker in self.live:
                self.live.remove(worker)

    def kill_all(self) -> None:
        for worker in list(self.live):
            worker.kill()
            self.live.remove(worker)

    def fresh_for(self, lane: Lane, number: int, *, own: bool) -> None:
        """A worker for the lane's next row: a new one when it has none, or when the row needs a worker of its own
        (own) and this one has measured something already."""
        if lane.worker is not None and own and lane.worker.measured:
            self.stop(lane)
        if lane.worker is None:
            self.start(lane, number)

    def given_up(self, lane: Lane, row: Row) -> bool:
        """Whether the row's worker crashed or hung more often than `retries` allows on this side."""
        return lane.lost.get(row, 0) > self.retries

    def measure(self, lane: Lane, row: Row, *, guess_s: float, policy: Policy | None = None) -> Record:
        """The row measured by the lane's worker; the record goes to on_record; a failed row's worker is replaced
        (killed when it crashed or hung) and a crash or hang is counted against the row."""
        if self.on_progress:
            self.on_progress(Progress(index=self.estimate.done + 1, total=self.estimate.total,
                                      workload=row.workload, device=row.device,
                                      left_s=self.estimate.left_s(guess_s), variant=row.variant.name))
        worker = lane.worker
        began = time.perf_counter()
        record = worker.measure(row, process=worker.number, policy=policy)
        spent = time.perf_counter() - began
        lane.cost = lane.cost.measured(spent)
        self.estimate.finished(spent, timed=lane.applies(row))
        self.on_record(lane.side.name, record)
        if record.status in LOST:
            lane.lost[row] = lane.lost.get(row, 0) + 1
        if record.status in FAILED:
            self.stop(lane, kill=record.status in LOST)
        return record


def run_in_workers(sides: Sequence[Side], job: Job, *, processes: int, rng: random.Random, on_record: OnRecord,
                   on_progress: Callable[[Progress], None] | None = None, spawn: Spawn = Worker,
                   retries: int = 0, min_processes: int | None = None, precision: float = 0.0,
                   on_stop: OnStop | None = None) -> dict[str, WorkerCost]:
    """`run`'s schedule: every row of every side in up to `processes` trials, as the module says. on_record(side
    name, record) sees each record as soon as it exists. Returns the workers' cost per side. A side whose first
    worker cannot start or load its suite raises BenchError before anything is measured; Ctrl-C kills the live
    workers and propagates. retries: how often a row whose worker crashed or hung is measured again (0: never).
    min_processes and precision (bench.measure.workers.enough): after `min_processes` trials (None: `processes`),
    a row whose between-process interval is within `precision` gets no more processes; on_stop(side name, row,
    why) hears once per timed row why its processes ended."""
    check_count("run", "processes", processes)
    check_count("run", "retries", retries, minimum=0)
    least = processes if min_processes is None else min(check_count("run", "min_processes", min_processes), processes)
    check_stopping(processes=processes, min_processes=least, precision=precision)
    tally = Tally(min_processes=least, precision=precision, processes=processes)
    crew = Crew(job, spawn=spawn, on_record=on_record, on_progress=on_progress, retries=retries)
    try:
        lanes = [crew.open(side, 0) for side in sides]
        timed = {id(lane): [r for r in lane.rows if lane.applies(r)] for lane in lanes}
        crew.estimate.total = sum(len(lane.rows) + (processes - 1) * len(timed[id(lane)]) for lane in lanes)
        crew.estimate.starts = processes * sum(1 + sum(map(isolated, timed[id(lane)])) for lane in lanes)
        for trial in range(processes):
            for lane in rng.sample(lanes, len(lanes)):
                rows = [r for r in lane.rows if (trial == 0 or lane.applies(r)) and tally.active(lane.side.name, r)]
                for row in rng.sample(rows, len(rows)):  # not-applicable rows: once
                    if crew.given_up(lane, row):
                        crew.estimate.dropped()
                        continue
                    own = isolated(row) and lane.applies(row)
                    crew.fresh_for(lane, lane.next_number, own=own)
                    policy = job.policy_for(row.device)
                    tally.add(lane.side.name, row, crew.measure(lane, row, guess_s=policy.warmup_s + policy.budget_s))
                    if own:
                        crew.stop(lane)
                crew.stop(lane)
            if not _settle(crew, tally, lanes, timed, done=trial + 1):
                break
        for lane in lanes:
            for row in timed[id(lane)] if on_stop else ():
                on_stop(lane.side.name, row, tally.reason(lane.side.name, row))
        return {lane.side.name: lane.cost for lane in lanes}
    finally:
        crew.kill_all()


def _settle(crew: Crew, tally: Tally, lanes: list[Lane], timed: dict[int, list[Row]], *, done: int) -> bool:
    """After `done` trials: the rows whose interval is now within the target stop (their trials left leave the
    estimate, as do the worker starts no row needs any more). Whether any timed row is left to measure."""
    left = max(0, tally.processes - done)
    starts = 0
    for lane in lanes:
        for _row in tally.settle(lane.side.name, timed[id(lane)], done=done):
            crew.estimate.dropped(left)
        active = [r for r in timed[id(lane)] if tally.active(lane.side.name, r)]
        starts += left * (1 + sum(map(isolated, active))) if active else 0
    crew.estimate.starts = len(crew.estimate.start_s) + starts
    return left > 0 and starts > 0


def block_policy(policy: Policy, blocks: int, *, first: bool) -> Policy:
    """One block of a row measured in `blocks`: its share of the budget and samples; only the first warms up
    for the job's warm-up, the later ones (the row is kept built in its worker) briefly."""
    return replace(policy, budget_s=policy.budget_s / blocks,
                   warmup_s=policy.warmup_s if first else min(policy.warmup_s, 0.01),
                   min_samples=min(policy.min_samples, policy.floor_samples + 2),
                   max_samples=max(policy.floor_samples, policy.max_samples // blocks))


def run_pairs(base: Side, cand: Side, job: Job, *, pairs: int, blocks: int, rng: random.Random,
              on_record: OnRecord, on_progress: Callable[[Progress], None] | None = None, spawn: Spawn = Worker,
              versions: Callable[[str, dict], None] | None = None, first_pair: int = 0,
              only: Callable[[Row], bool] | None = None, retries: int = 0) -> dict[str, WorkerCost]:
    """`bench ab`'s schedule: `pairs` pairs of workers, one per side, alive together, each row alternated in
    `blocks` blocks as the module says (duet benchmarking, alternated rather than simultaneous: the processes
    never compete for a core). Each pair's two workers start together after the previous pair is done, never
    while a pair measures: an interpreter importing torch beside a measuring one widens the spread of the pairs'
    ratios.
    Records carry the pair's number as their process on both sides: bench.gate pairs them. Rows only one side has
    are measured alone. versions(side name, {python, torch, cuda}) hears what each side's first worker runs.
    The pairs of a later look (bench.api.ab): first_pair numbers the pairs from there on, only(row) picks the rows
    they measure. retries: as run_in_workers, per side."""
    for name, value in (("processes", pairs), ("blocks", blocks)):
        check_count("ab", name, value)
    check_count("ab", "retries", retries, minimum=0)
    crew = Crew(job, spawn=spawn, on_record=on_record, on_progress=on_progress, retries=retries)
    try:
        lanes = {}
        for side in rng.sample([base, cand], 2):  # the first pair: started now, to learn each side's rows
            lanes[side.name] = crew.open(side, first_pair)
            if versions:
                versions(side.name, lanes[side.name].worker.ready.versions)
        both = [lanes[base.name], lanes[cand.name]]
        union = [r for r in dict.fromkeys(both[0].rows + both[1].rows) if only is None or only(r)]
        crew.estimate.total = sum(len(names) * per_lane for p in range(pairs) for row in union
                                  for names, per_lane in [_units(both, row, blocks, first=p == 0)])
        own = [r for r in union if isolated(r) and any(lane.applies(r) for lane in both if r in lane.rows)]
        crew.estimate.starts = pairs * 2 * (1 + len(own))
        for pair in range(first_pair, first_pair + pairs):
            if pair != first_pair:
                crew.start_together(rng.sample(both, 2), pair)
            for row in rng.sample(union, len(union)):
                _pair_row(crew, both, row, pair=pair, blocks=blocks, rng=rng, first=pair == first_pair)
            for lane in both:
                crew.stop(lane)
        return {lane.side.name: lane.cost for lane in both}
    finally:
        crew.kill_all()


def _units(lanes: list[Lane], row: Row, blocks: int, *, first: bool = False) -> tuple[list[Lane], int]:
    """For one row of one pair: the lanes that measure it (in the first pair also where it does not apply, to
    record so once), and the blocks each measures (one where it applies on neither side)."""
    names = [lane for lane in lanes if row in lane.rows and (first or lane.applies(row))]
    return names, blocks if any(lane.applies(row) for lane in names) else 1


def _pair_row(crew: Crew, lanes: list[Lane], row: Row, *, pair: int, blocks: int, rng: random.Random,
              first: bool) -> None:
    """One row of one pair: each side's worker (a fresh one for an isolated row) measures it in `blocks` blocks,
    the sides in a random order in each block; a side whose block failed measures no more of it in this pair."""
    names, per_lane = _units(lanes, row, blocks, first=first)
    kept = [lane for lane in names if not crew.given_up(lane, row)]
    crew.estimate.dropped(per_lane * (len(names) - len(kept)))
    own = isolated(row) and any(lane.applies(row) for lane in names)
    for lane in kept:  # compile and cudnn_benchmark rows: a fresh worker of their own on each side
        crew.fresh_for(lane, pair, own=own)
    policy = crew.job.policy_for(row.device)
    guess_s = (policy.warmup_s + policy.budget_s) / blocks
    failed: list[Lane] = []
    for b in range(per_lane):
        for lane in rng.sample(kept, len(kept)):
            if lane in failed:
                crew.estimate.dropped()
                continue
            record = crew.measure(lane, row, guess_s=guess_s, policy=block_policy(policy, blocks, first=b == 0))
            if record.status in FAILED:  # this side's row is done for this pair; a fresh worker next
                failed.append(lane)
    if own:
        for lane in kept:
            crew.stop(lane)
