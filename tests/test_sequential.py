"""`bench ab`'s sequential looks: the error rates spent over the looks, and rows left alone once decided."""
from __future__ import annotations

import random

import numpy as np
import pytest
from test_gate_processes import JOB, PLANS, Fakes, FakeWorker

from bench.api.ab import _looked, _looks
from bench.gate.rule import Rule, decide_paired
from bench.measure.record import Measurement, Record
from bench.measure.workers.protocol import Side
from bench.store.recorder import RunRecorder
from bench.store.writer import new_run_dir

LOOKS = (10, 16, 24)


def test_each_look_spends_its_share_and_the_shares_add_up_to_the_rule():
    rule = Rule(looks=LOOKS)
    shares = [rule.look_share(i) for i in range(len(LOOKS))]
    assert shares == [0.25, 0.25, 0.5] and sum(shares) == 1.0
    assert rule.at_pairs(10).paired_alpha == pytest.approx(0.0025)
    assert rule.at_pairs(24).confidence == pytest.approx(1 - 0.01 * 0.5)
    assert rule.at_pairs(9).paired_alpha == rule.at_pairs(10).paired_alpha  # a row that lost a pair: its look's
    assert Rule().at_pairs(10) == Rule()  # no looks: the rule itself


def test_looks_must_increase():
    from bench.errors import BenchError

    with pytest.raises(BenchError, match="looks"):
        Rule(looks=(16, 10))


def test_the_last_look_is_the_most_pairs():
    assert _looks((10, 16), 24) == (10, 16, 24)
    assert _looks((10, 16, 30), 12) == (10, 12)  # looks at or past --processes fall away
    assert _looks((), 5) == (5,)


def _sequential(ratios: np.ndarray, rule: Rule) -> str:
    """The verdict of a row judged at each look on its first n pair ratios, stopped once decided."""
    verdict = "unsure"
    for look in rule.looks:
        verdict = decide_paired(ratios[:look], threshold=0.10, rule=rule)[0]
        if verdict != "unsure":
            return verdict
    return verdict


def test_looking_three_times_keeps_the_false_alarm_rate_of_one_look():
    """A/A rows (true ratio 1, pairs 5-10% apart): with the error rates spent over the looks, no more are called
    slower than the one-look rule at 1% allows; judging every look at the full 1% calls more of them slower."""
    rng = np.random.default_rng(20)
    rows, spent, naive = 4000, 0, 0
    for _ in range(rows):
        ratios = np.exp(rng.normal(0.0, rng.uniform(0.05, 0.10), max(LOOKS)))
        spent += _sequential(ratios, Rule(looks=LOOKS)) == "slower"
        naive += any(decide_paired(ratios[:n], threshold=0.10)[0] == "slower" for n in LOOKS)
    assert spent <= 0.01 * rows  # the union bound's promise, with the sign test one-sided here: well within
    assert naive > spent


def test_a_clear_slowdown_is_decided_at_the_first_look_and_a_quiet_aa_row_is_same_there():
    rng = np.random.default_rng(3)
    slow = 1.10 * np.exp(rng.normal(0.0, 0.01, 10))
    same = np.exp(rng.normal(0.0, 0.01, 10))
    assert decide_paired(slow, threshold=0.10, rule=Rule(looks=LOOKS))[0] == "slower"
    assert decide_paired(same, threshold=0.10, rule=Rule(looks=LOOKS))[0] == "same"


class TimedWorker(FakeWorker):
    """A fake worker whose records carry samples: row "a" the same on both sides (1% between pairs), row "b" 40%
    apart from pair to pair, so that only more pairs could decide it."""

    def measure(self, row, *, process, policy=None) -> Record:
        record = super().measure(row, process=process, policy=policy)
        rng = random.Random(hash((row.workload, self.side.name, process)) & 0xFFFF)
        spread = 0.01 if row.workload == "a" else 0.4
        level = 1e-3 * np.exp(rng.gauss(0.0, spread))
        times = tuple(level * (1 + 0.001 * k) for k in range(5))
        m = Measurement(device_s=times, host_s=times, enqueue_s=(1e-5,) * 5, calls_per_sample=1, warmup_calls=1,
                        first_call_s=level, stop_reason="budget")
        return Record(plan=record.plan, device=record.device, device_name="fake", threads=1, status="ok",
                      measurement=m, variant=row.variant, process=process)


class TimedFakes(Fakes):
    def __call__(self, side, job, number):
        worker = TimedWorker(self, side, job, number)
        self.started.append(worker)
        return worker


def test_a_row_decided_at_a_look_gets_no_more_pairs_and_an_open_one_gets_them_all(tmp_path):
    fakes = TimedFakes(plans=PLANS[:2])
    recorders = {name: RunRecorder(new_run_dir(tmp_path / name), {"ab": {"id": "j", "side": name}})
                 for name in ("baseline", "candidate")}
    _, pairs_per_row, open_rows = _looked(
        Side(name="baseline"), Side(name="candidate"), JOB, looks=LOOKS, blocks=1, rng=random.Random(1),
        record=lambda side, r: recorders[side].add(r), recorders=recorders, threshold=0.10, on_progress=None,
        retries=0, spawn=fakes)
    assert pairs_per_row == {"a / cpu / float32": 10, "b / cpu / float32": 24}
    assert [k.workload for k in open_rows] == ["b"]
    measured = {(entry["row"].workload, entry["process"]) for entry in fakes.log}
    assert max(p for w, p in measured if w == "a") == 9 and max(p for w, p in measured if w == "b") == 23


def test_a_pair_whose_worker_cannot_start_kills_its_partner_and_says_why():
    """The two workers of a pair start together; when one cannot start, the other is killed, and the one-line
    error of the first is what the caller sees."""
    from bench.errors import BenchError, Problem
    from bench.measure.workers.schedule import run_pairs

    fakes = Fakes(plans=PLANS[:1])

    def spawn(side, job, number):
        if side.name == "candidate" and number == 1:
            raise BenchError(Problem(where="candidate worker", field="start", expected="a worker", found="boom"))
        return fakes(side, job, number)

    with pytest.raises(BenchError, match="boom"):
        run_pairs(Side(name="baseline"), Side(name="candidate"), JOB, pairs=3, blocks=1, rng=random.Random(2),
                  on_record=lambda *_: None, spawn=spawn)
    assert all(w.killed or w.closed for w in fakes.started)
    assert max(w.number for w in fakes.started) <= 1  # nothing measured after the failed start


def test_a_pairs_workers_are_both_launched_before_either_is_waited_for():
    """With a spawn that can launch (the real Worker), both workers of a pair are launched before either is made
    ready, from the calling thread; the first pair's are started one by one (each side's rows are learnt)."""
    from bench.measure.workers.schedule import run_pairs

    fakes, events = Fakes(plans=PLANS[:1]), []

    class Launching:
        def __call__(self, side, job, number):
            return fakes(side, job, number)

        def launch(self, side, job, number):
            worker = fakes(side, job, number)
            events.append(("launch", side.name, number))
            worker.wait_ready = lambda: events.append(("ready", side.name, number))
            return worker

    run_pairs(Side(name="baseline"), Side(name="candidate"), JOB, pairs=3, blocks=1, rng=random.Random(2),
              on_record=lambda *_: None, spawn=Launching())
    for pair in (1, 2):
        steps = [e[0] for e in events if e[2] == pair]
        assert steps == ["launch", "launch", "ready", "ready"]
    assert len(fakes.started) == 6
