"""The headline number over processes: results' median_s is the median of the per-process medians with an
interval, a row whose processes disagree beyond reason is flagged machine_decided, `run` adds processes to a row
only while its between-process interval is wider than the target (fake workers, no subprocess), and the thread
count `run` picks on a busy machine."""
from __future__ import annotations

import math
import random
import threading
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from torch import nn

from bench.errors import BenchError
from bench.measure.env import choose_threads
from bench.measure.record import Record
from bench.measure.sampling import Measurement, Policy
from bench.measure.workers.enough import Tally
from bench.measure.workers.protocol import Job, Ready, Row, Side, strip
from bench.measure.workers.schedule import run_in_workers
from bench.schema import RESULT_COLUMNS
from bench.stats import MACHINE_DECIDED_FACTOR as MACHINE_FACTOR
from bench.stats import headline_interval, median_interval, min_for_interval, relative_half_width, t_quantile
from bench.store.frames import to_frame
from bench.store.summary import row_summary
from bench.suite.plan import plan_one
from bench.suite.variants import Variant
from bench.suite.workload import Workload


# ---------------------------------------------------------------- bench.stats
def test_order_statistic_interval_needs_six_values_at_95():
    assert min_for_interval(0.95) == 6 and min_for_interval(0.99) == 8
    assert median_interval([3.0, 1.0, 2.0, 5.0, 4.0], confidence=0.95) == (3.0, 0.0, math.inf)
    assert median_interval([6.0, 1.0, 2.0, 5.0, 4.0, 3.0], confidence=0.95) == (3.5, 1.0, 6.0)
    values = list(range(1, 10))  # 9 values: j = 2, the second smallest and the second largest
    assert median_interval(values, confidence=0.95) == (5.0, 2.0, 8.0)


def test_t_quantiles_match_the_tables():
    for df, expected in ((1, 12.706), (2, 4.303), (3, 3.182), (4, 2.776), (10, 2.228)):
        assert t_quantile(0.975, df) == pytest.approx(expected, abs=1e-3)


def test_headline_interval_below_six_values_is_students_t_on_the_logs():
    med, lo, hi = headline_interval([1.0, 1.01, 0.99], confidence=0.95)
    logs = np.log([1.0, 1.01, 0.99])
    half = 4.3027 * logs.std(ddof=1) / math.sqrt(3)
    assert med == 1.0
    assert lo == pytest.approx(math.exp(logs.mean() - half), rel=1e-4)
    assert hi == pytest.approx(math.exp(logs.mean() + half), rel=1e-4)
    assert relative_half_width(med, lo, hi) == pytest.approx(max(1 - lo, hi - 1))
    assert headline_interval([2.0])[0] == 2.0 and math.isnan(headline_interval([2.0])[1])
    assert relative_half_width(*headline_interval([2.0])) == math.inf


# ---------------------------------------------------------------- results.csv from records
PLAN = strip(plan_one(Workload(name="lin", module=lambda: nn.Linear(8, 4), input_shape=(2, 8)), "test"))


def record(samples, process: int, plan=PLAN) -> Record:
    m = Measurement(device_s=tuple(samples), host_s=tuple(samples), enqueue_s=tuple(0.1 * s for s in samples),
                    calls_per_sample=1, warmup_calls=1, first_call_s=samples[0], stop_reason="budget")
    return Record(plan=plan, device="cpu", device_name="fake", threads=1, status="ok", measurement=m,
                  process=process)


def test_median_s_is_the_median_of_process_medians_not_of_pooled_samples():
    """A process that took many more samples (all slow) does not pull the headline number: median_s is the median
    of the three process medians; the pooled samples' median would be the slow process's."""
    fast, slow = [1e-3] * 5, [1.5e-3] * 50
    row = to_frame([record(fast, 0), record([1.02e-3] * 5, 1), record(slow, 2)]).iloc[0]
    assert row["median_s"] == pytest.approx(1.02e-3)
    assert pd.Series(fast + [1.02e-3] * 5 + slow).median() == pytest.approx(1.5e-3)  # what pooling gave
    assert row["host_median_s"] == pytest.approx(1.02e-3) and row["enqueue_median_s"] == pytest.approx(1.02e-4)
    assert row["median_low_s"] < row["median_s"] < row["median_high_s"]
    assert row["n_processes"] == 3 and row["n_samples"] == 60
    assert row["machine_decided"] is False or row["machine_decided"] == False  # noqa: E712 - a numpy bool too
    assert list(RESULT_COLUMNS[-4:]) == ["median_low_s", "median_high_s", "machine_decided", "definition"]


def test_a_single_process_keeps_its_samples_median():
    row = to_frame([record([1e-3, 2e-3, 4e-3], 0)]).iloc[0]
    assert row["median_s"] == 2e-3 and row["n_processes"] == 1
    assert math.isnan(row["median_low_s"]) and not row["machine_decided"]


def test_processes_that_disagree_by_the_machine_factor_flag_the_row():
    """The issue's smoke-conv: some processes read about 110 us, others about 30 ms. The row keeps its data and
    status, is flagged, and its note says why after the workload's own note."""
    medians = [108e-6, 114e-6, 121e-6, 1.7e-3, 28.6e-3, 31.9e-3, 32.0e-3]
    records = [record([m] * 4, i) for i, m in enumerate(medians)]
    row = to_frame(records).iloc[0]
    assert row["status"] == "ok" and bool(row["machine_decided"])
    assert "machine-decided: process medians from 108 us to 32 ms (296x)" in row["note"]
    assert row["median_s"] == pytest.approx(1.7e-3)
    # summarizing it again (rounds pooled) replaces the reason rather than repeating it
    again = row_summary(row.to_dict(), pd.DataFrame(dict(device_s=[108e-6, 120e-6], process=[0, 1])))
    assert again["machine_decided"] is False and not again.get("note")
    # just under the factor: not flagged
    near = to_frame([record([1e-3] * 3, 0), record([0.99 * MACHINE_FACTOR * 1e-3] * 3, 1)]).iloc[0]
    assert not near["machine_decided"]


# ---------------------------------------------------------------- run_in_workers with fake workers
PLANS = tuple(strip(plan_one(Workload(name=n, module=m, input_shape=(2, 8)), "test"))
              for n, m in (("quiet", nn.ReLU), ("noisy", nn.Tanh)))
JOB = Job(policy=Policy(budget_s=0.6, warmup_s=0.2), cuda_policy=Policy(), threads=1, devices=("cpu",))


class Spawn:
    """spawn() for run_in_workers: workers whose `quiet` row reads 1 ms +-0.1% in every process and whose `noisy`
    row reads 1 ms times a lifelong factor per process between 0.7 and 1.3."""

    def __init__(self) -> None:
        self.rng = np.random.default_rng(3)
        self.log: list[tuple[int, str]] = []
        self.started = 0
        self.lock = threading.Lock()

    def __call__(self, side: Side, job: Job, number: int):
        self.started += 1
        return Worker(self, number)


class Worker:
    def __init__(self, spawn: Spawn, number: int) -> None:
        self.spawn, self.number, self.measured = spawn, number, 0
        self.start_s = 0.5
        self.ready = Ready(plans=PLANS, variants=(), import_s=0.25, config_s=0.0)

    def measure(self, row: Row, *, process: int, policy=None) -> Record:
        self.measured += 1
        self.spawn.log.append((process, row.workload))
        plan = next(p for p in PLANS if p.workload.name == row.workload)
        bias = 1 + (0.001 if row.workload == "quiet" else 0.3) * self.spawn.rng.uniform(-1, 1)
        return record([1e-3 * bias] * 5, process, plan=plan)

    def close(self) -> None:
        pass

    def kill(self) -> None:
        pass


def test_run_stops_a_quiet_row_at_the_minimum_and_gives_a_noisy_one_the_maximum():
    spawn, stops, progress = Spawn(), {}, []
    run_in_workers([Side()], JOB, processes=7, rng=random.Random(1), on_record=lambda *_: None, spawn=spawn,
                   min_processes=3, precision=0.02, on_progress=progress.append,
                   on_stop=lambda side, row, why: stops.setdefault(row.workload, why))
    count = Counter(name for _, name in spawn.log)
    assert count == {"quiet": 3, "noisy": 7}
    assert stops["quiet"].startswith("precise: ") and "at 3 processes" in stops["quiet"]
    assert stops["noisy"].startswith("maximum: ") and "at 7 processes" in stops["noisy"]
    # a row stopped early is not measured again: the quiet row only in processes 0, 1 and 2
    assert sorted(p for p, name in spawn.log if name == "quiet") == [0, 1, 2]
    assert progress[-1].index == progress[-1].total == len(spawn.log)  # the estimate shrank with the stop


def test_run_stops_every_row_at_the_minimum_on_a_quiet_machine_and_starts_no_more_workers():
    quiet = tuple(p for p in PLANS if p.workload.name == "quiet")

    class QuietSpawn(Spawn):
        def __call__(self, side, job, number):
            worker = super().__call__(side, job, number)
            worker.ready = Ready(plans=quiet, variants=(), import_s=0.25, config_s=0.0)
            return worker

    spawn = QuietSpawn()
    run_in_workers([Side()], JOB, processes=7, rng=random.Random(2), on_record=lambda *_: None, spawn=spawn,
                   min_processes=3, precision=0.02)
    assert spawn.started == 3 and len(spawn.log) == 3


def test_without_a_minimum_every_row_gets_every_process():
    spawn = Spawn()
    run_in_workers([Side()], JOB, processes=4, rng=random.Random(3), on_record=lambda *_: None, spawn=spawn)
    assert Counter(name for _, name in spawn.log) == {"quiet": 4, "noisy": 4}


def test_a_failed_row_is_never_stopped_for_precision():
    tally = Tally(min_processes=2, precision=0.5, processes=5)
    row = Row("lin", "cpu", Variant())
    tally.add("", row, record([1e-3] * 3, 0))
    tally.add("", row, Record(plan=PLAN, device="cpu", device_name="fake", threads=1, status="error", process=1))
    assert tally.settle("", [row], done=2) == []
    assert tally.reason("", row).startswith("failed")


# ---------------------------------------------------------------- the thread count on a busy machine
@pytest.mark.parametrize("cores, busy, requested, default, threads, says", [
    (2, 0.1, None, 2, 2, ""),  # quiet: torch's count
    (2, 0.4, None, 2, 2, ""),  # a core counts as taken when others keep it more than half busy
    (2, 1.0, None, 2, 1, "1 thread instead of 2"),  # one core burnt by another process: the one left
    (2, 1.9, None, 2, 1, "1 thread instead of 2"),  # both busy: at least 1
    (16, 6.3, None, 16, 10, "10 threads instead of 16"),
    (16, 6.3, None, 8, 8, ""),  # torch's count fits in the cores left
    (2, 1.0, 2, 2, 2, "--threads 2"),  # given: kept, with a warning
    (2, 0.0, 2, 2, 2, ""),
])
def test_choose_threads(cores, busy, requested, default, threads, says):
    chosen, why = choose_threads(cores=cores, busy_cores=busy, requested=requested, default=default)
    assert chosen == threads
    assert (says in why) if says else why == ""


def test_choose_threads_without_a_reading_keeps_the_default():
    assert choose_threads(cores=4, busy_cores=None, requested=None, default=4) == (4, "")
    assert choose_threads(cores=4, busy_cores=None, requested=3, default=4) == (3, "")


def test_prepare_takes_the_cores_a_busy_machine_leaves_and_says_so(monkeypatch):
    """Threads not given: the cores the others leave, in the prepared run, its env.json and its note; given: kept."""
    from bench.api import running

    monkeypatch.setattr(running.torch, "get_num_threads", lambda: 4)
    monkeypatch.setattr(running.os, "cpu_count", lambda: 4)
    monkeypatch.setenv(running.BUSY_ENV, "2.2")
    prepared = running.prepare([Workload(name="lin", module=lambda: nn.Linear(8, 4), input_shape=(2, 8))],
                               device="cpu", processes=0)
    assert prepared.threads == 2 and prepared.env["threads"] == 2
    assert prepared.threads_note == prepared.env["threads_note"]
    assert "2 threads instead of 4" in prepared.threads_note
    given = running.prepare([Workload(name="lin", module=lambda: nn.Linear(8, 4), input_shape=(2, 8))],
                            device="cpu", processes=0, threads=4)
    assert given.threads == 4 and "--threads 4 kept" in given.threads_note
    monkeypatch.setenv(running.BUSY_ENV, "lots")
    with pytest.raises(BenchError, match="BENCH_BUSY_CORES"):
        running.prepare([Workload(name="lin", module=lambda: nn.Linear(8, 4), input_shape=(2, 8))], device="cpu",
                        processes=0)


@pytest.mark.parametrize("options, field", [
    (dict(min_processes=0), "min_processes"), (dict(precision=-0.1), "precision"),
    (dict(precision=float("nan")), "precision"),
])
def test_prepare_refuses_bad_stopping_options(options, field):
    from bench.api.running import prepare

    with pytest.raises(BenchError) as caught:
        prepare([Workload(name="lin", module=lambda: nn.Linear(8, 4), input_shape=(2, 8))], device="cpu",
                processes=3, **options)
    assert caught.value.problems[0].field == field


def test_console_and_report_mark_machine_decided_rows():
    from bench.cli.run import summary
    from bench.report.render import _machine_note, machine_decided

    medians = [108e-6, 114e-6, 32e-3]
    frame = to_frame([record([m] * 4, i) for i, m in enumerate(medians)])
    table = summary(frame)
    assert "MACHINE-DECIDED" in table and "+-" in table
    row = frame.iloc[0]
    assert machine_decided(row) and _machine_note(row).startswith("machine-decided: process medians from 108 us")
    quiet = to_frame([record([1e-3] * 4, i) for i in range(3)])
    assert "MACHINE-DECIDED" not in summary(quiet) and not machine_decided(quiet.iloc[0])
    assert not machine_decided(pd.Series(dict(status="ok")))  # a run from before the column


def test_headline_interval_of_zero_times_is_the_median_alone():
    med, lo, hi = headline_interval([0.0, 0.0, 1e-6])
    assert med == 0.0 and math.isnan(lo) and math.isnan(hi)
    assert math.isnan(headline_interval([])[0])
