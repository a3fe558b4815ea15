"""The process as the gate's unit: verdicts on per-process medians and on paired processes (bench ab), and the
worker schedules of bench.measure.workers driven with fake workers (no subprocess)."""
from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from test_compare import compare_frames, run_frames
from torch import nn

from bench.gate.compare import compare_runs, paired
from bench.gate.rule import Rule, decide, decide_paired, detectable_paired, median_interval, sign_test_p
from bench.measure.record import Record
from bench.measure.sampling import Policy
from bench.measure.workers.counter import count_instructions
from bench.measure.workers.protocol import Job, Ready, Row, Side, strip
from bench.measure.workers.schedule import run_in_workers, run_pairs
from bench.store.folder import Run
from bench.store.summary import process_medians
from bench.suite.plan import plan_one
from bench.suite.variants import Variant
from bench.suite.workload import Workload


# ---------------------------------------------------------------- per-process medians (unpaired runs)
def biased_processes(rng: np.random.Generator, processes: int, *, effect: float = 1.0, per: int = 20,
                     sigma: float = 0.2) -> np.ndarray:
    """Samples of one side, laid out as run_frames numbers them (sample i from process i % processes): each
    process has its own lifelong bias (lognormal, sigma), samples within it agree within 0.5%."""
    bias = np.exp(rng.normal(0.0, sigma, processes))
    i = np.arange(processes * per)
    return 1e-3 * effect * bias[i % processes] * (1 + 0.005 * rng.standard_normal(processes * per))


def medians_of(xs: np.ndarray, processes: int) -> np.ndarray:
    frame = pd.DataFrame({"device_s": xs, "process": np.arange(len(xs)) % processes})
    return process_medians(frame).to_numpy()


def test_process_bias_without_an_effect_is_never_slower():
    """Per-process medians with a lognormal process bias and no real effect: no 'slower' in 200 trials of 10 vs 10."""
    # At alpha 0.001 (two-sided) about 0.1 false 'slower' is expected in 200 trials; the same samples judged one by
    # one (the old rule) are called slower in about a fifth of them.
    rng = np.random.default_rng(1)
    verdicts, by_sample = Counter(), Counter()
    for _ in range(200):
        base, cand = biased_processes(rng, 10), biased_processes(rng, 10)
        mb, mc = medians_of(base, 10), medians_of(cand, 10)
        assert len(mb) == len(mc) == 10
        verdicts[decide(mb, mc, threshold=0.1)[0]] += 1
        by_sample[decide(base, cand, threshold=0.1)[0]] += 1
    assert verdicts["slower"] == 0, verdicts
    assert verdicts["faster"] == 0, verdicts
    assert by_sample["slower"] >= 20, by_sample  # the premise: correlated samples fool a sample-level test


def test_a_real_2x_effect_through_process_bias_is_slower():
    """A 2x slowdown on top of the same process bias is called slower on per-process medians (200 trials of 10 vs
    10)."""
    rng = np.random.default_rng(2)
    verdicts = Counter()
    for _ in range(200):
        base, cand = biased_processes(rng, 10), biased_processes(rng, 10, effect=2.0)
        verdict, _, figures = decide(medians_of(base, 10), medians_of(cand, 10), threshold=0.1)
        verdicts[verdict] += 1
        assert figures.ratio == pytest.approx(2.0, rel=0.35)
    assert verdicts["slower"] >= 195 and verdicts["slower"] + verdicts["unsure"] == 200, verdicts


def test_compare_runs_judges_processes_not_correlated_samples():
    """Samples correlated within a process: the sample-level test calls A/A runs slower, compare_runs does not and
    counts processes."""
    called_slower_by_samples = 0
    for seed in range(40):
        base = biased_processes(np.random.default_rng(2 * seed), 10)
        cand = biased_processes(np.random.default_rng(2 * seed + 1), 10)
        if decide(base, cand, threshold=0.1)[0] != "slower":  # the old rule: every sample an independent value
            continue
        called_slower_by_samples += 1
        (v,) = compare_frames(run_frames({"a": base}, processes=10), run_frames({"a": cand}, processes=10)).verdicts
        assert v.verdict != "slower", (seed, v.reason)
        assert (v.n_baseline, v.n_candidate) == (10, 10)
        log_ratios = np.subtract.outer(np.log(medians_of(cand, 10)), np.log(medians_of(base, 10)))
        assert v.ratio == pytest.approx(np.exp(np.median(log_ratios)), rel=1e-9)  # Hodges-Lehmann on process medians
    assert called_slower_by_samples >= 3  # the premise: correlated samples fool a sample-level test


def test_compare_runs_counts_processes_and_still_finds_a_real_slowdown():
    """compare_runs on 12 vs 9 processes of biased samples: n_baseline/n_candidate count processes, a 2x slowdown is
    slower."""
    rng = np.random.default_rng(5)
    base, cand = biased_processes(rng, 12, per=7), biased_processes(rng, 9, effect=2.0, per=7)
    (v,) = compare_frames(run_frames({"a": base}, processes=12), run_frames({"a": cand}, processes=9)).verdicts
    assert (v.n_baseline, v.n_candidate) == (12, 9)
    assert v.verdict == "slower", v.reason


# ---------------------------------------------------------------- paired processes (bench ab)
def test_sign_test_matches_scipy_binomtest():
    """sign_test_p equals scipy's exact two-sided binomial test on the ratios above and below 1 (ties left out)."""
    stats = pytest.importorskip("scipy.stats")
    for n in range(1, 31):
        for above in range(n + 1):
            ratios = [1.1] * above + [0.9] * (n - above) + [1.0] * 3
            expected = stats.binomtest(above, n, 0.5, alternative="two-sided").pvalue
            assert sign_test_p(ratios) == pytest.approx(expected, rel=1e-9, abs=1e-15), (n, above)
    assert sign_test_p([1.0, 1.0]) == 1.0


def test_median_interval_order_statistics():
    """For 16 ratios at 0.99 the interval is x_(3)..x_(14); j is the largest with P(Bin(n, 1/2) < j) <= 0.005."""
    x = np.random.default_rng(3).permutation(np.arange(1.0, 17.0))
    assert median_interval(x, confidence=0.99) == (8.5, 3.0, 14.0)
    stats = pytest.importorskip("scipy.stats")
    for n in range(1, 41):
        values = np.arange(1.0, n + 1.0)
        j = max([k for k in range(0, n + 1) if k == 0 or stats.binom.cdf(k - 1, n, 0.5) <= 0.005])
        median, lo, hi = median_interval(values[::-1], confidence=0.99)
        assert median == pytest.approx(np.median(values))
        assert (lo, hi) == ((0.0, float("inf")) if j == 0 else (values[j - 1], values[n - j])), n


def test_too_few_pairs_are_unsure():
    """Seven pairs, all 2x slower: unsure (the sign test cannot reach p < 0.01), however large the effect."""
    verdict, reason, figures = decide_paired([2.0] * 7, threshold=0.1)
    assert verdict == "unsure" and "too few pairs (7" in reason
    assert decide_paired([2.0] * 8, threshold=0.1)[0] == "slower"
    assert decide_paired([], threshold=0.1)[0] == "unsure"


def test_fourteen_of_sixteen_pairs_slower_with_two_outliers_is_slower():
    """14 of 16 pairs +10% and 2 pairs at 0.6 (a process far off for its life): slower, the outliers do not drag the
    median."""
    rng = np.random.default_rng(4)
    ratios = np.concatenate([1.10 * (1 + 0.005 * rng.standard_normal(14)), [0.6, 0.6]])
    verdict, reason, figures = decide_paired(rng.permutation(ratios), threshold=0.1)
    assert verdict == "slower", reason
    assert figures.ratio == pytest.approx(1.10, rel=0.01)
    assert figures.ratio_low > 1
    assert figures.p_value == pytest.approx(2 * (1 + 16 + 120) / 2**16)
    assert np.mean(ratios) < 1.05  # a mean would have said "no change"
    # at 0.9999 the interval reaches the outliers (x_(1)): the sign test alone (p=0.004) is not enough for slower
    strict = decide_paired(ratios, threshold=0.1, rule=Rule(confidence=0.9999))
    assert strict[2].ratio_low == 0.6 and strict[0] == "unsure", strict[1]


def test_symmetric_pair_noise_is_never_slower():
    """Pair ratios with symmetric noise (5%) and no effect: no 'slower' in 500 seeded trials of 16 pairs."""
    rng = np.random.default_rng(6)
    verdicts = Counter(decide_paired(np.exp(rng.normal(0.0, 0.05, 16)), threshold=0.1)[0] for _ in range(500))
    assert verdicts["slower"] == 0, verdicts
    assert verdicts["faster"] == 0, verdicts
    assert verdicts["same"] > 0


def test_detectable_paired():
    """16 pairs of 2% noise could detect a change a little above half the 10% threshold; 5 pairs nothing at all."""
    ratios = np.exp(np.random.default_rng(8).normal(0.0, 0.02, 16))
    smallest = detectable_paired(ratios, threshold=0.1)
    assert np.isfinite(smallest) and 1.0 < smallest < 1.2
    assert smallest >= 1.05 - 1e-9  # never below the decision line 1 + T/2
    null = ratios / np.median(ratios)
    assert decide_paired(null * smallest, threshold=0.1)[0] == "slower"
    assert decide_paired(null * (smallest - 0.01), threshold=0.1)[0] != "slower"
    assert detectable_paired(ratios[:5], threshold=0.1) == float("inf")


def ab_runs(*, ids=("x", "x"), sides=("baseline", "candidate"), shuffle: int | None = None, pairs: int = 16):
    """Two sides of a paired job: pair k's two processes share a lifelong bias (sigma 0.3); candidate is 10%
    slower. shuffle: a seed that gives the candidate's biases to other process numbers."""
    rng = np.random.default_rng(21)
    bias = np.exp(rng.normal(0.0, 0.3, pairs))
    per = 5
    i = np.arange(pairs * per)
    cand_bias = bias if shuffle is None else np.random.default_rng(shuffle).permutation(bias)
    base = 1e-3 * bias[i % pairs] * (1 + 0.003 * rng.standard_normal(len(i)))
    cand = 1.1e-3 * cand_bias[i % pairs] * (1 + 0.003 * rng.standard_normal(len(i)))

    def side(xs, ident, name):
        results, samp, env = run_frames({"a": xs}, processes=pairs, env={"ab": {"id": ident, "side": name}})
        return Run(results=results, samples=samp, env=env)

    return side(base, ids[0], sides[0]), side(cand, ids[1], sides[1]), base, cand


def test_paired_runs_are_judged_on_the_ratios_of_matching_processes():
    """Two sides of one ab job: paired, and the verdict is the median of cand_k / base_k (slower); unpaired the same
    data is not."""
    base, cand, xb, xc = ab_runs()
    assert paired(base, cand)
    cmp = compare_runs(base, cand)
    assert cmp.paired is True
    (v,) = cmp.verdicts
    ratios = medians_of(xc, 16) / medians_of(xb, 16)
    assert v.ratio == pytest.approx(float(np.median(ratios)))
    assert v.verdict == "slower", v.reason
    assert "sign test" in v.reason
    assert (v.n_baseline, v.n_candidate) == (16, 16)
    # the same numbers without the pairing: the process bias (sigma 0.3) hides a 10% change
    (u,) = compare_runs(*ab_runs(ids=("x", "y"))[:2]).verdicts
    assert u.verdict != "slower"
    assert u.ratio != pytest.approx(v.ratio, rel=1e-6)


def test_pairing_uses_process_numbers():
    """Paired runs whose candidate biases belong to other process numbers are not slower: the pairing is by number."""
    base, cand, xb, xc = ab_runs(shuffle=3)
    cmp = compare_runs(base, cand)
    assert cmp.paired
    (v,) = cmp.verdicts
    assert v.ratio == pytest.approx(float(np.median(medians_of(xc, 16) / medians_of(xb, 16))))
    assert v.verdict != "slower", v.reason


@pytest.mark.parametrize("ids, sides", [(("x", "y"), ("baseline", "candidate")),
                                        (("", ""), ("baseline", "candidate")),
                                        (("x", "x"), ("candidate", "baseline")),
                                        (("x", "x"), ("baseline", "baseline"))])
def test_not_paired_without_matching_ids_and_sides(ids, sides):
    """Runs whose env.json 'ab' ids differ (or are empty, or sides do not match) are compared unpaired."""
    base, cand, _, _ = ab_runs(ids=ids, sides=sides)
    assert not paired(base, cand)
    assert compare_runs(base, cand).paired is False
    plain = Run(results=base.results, samples=base.samples, env={k: v for k, v in base.env.items() if k != "ab"})
    assert not paired(plain, cand)


# ---------------------------------------------------------------- worker schedules with fake workers
PLANS = tuple(strip(plan_one(Workload(name=n, module=m, input_shape=(2, 8)), "test"))
              for n, m in (("a", nn.ReLU), ("b", nn.Tanh), ("c", nn.Sigmoid)))


class Fakes:
    """spawn() for run_in_workers / run_pairs: makes FakeWorkers, keeps every one and a log of every measure call."""

    def __init__(self, *, plans=PLANS[:2], status=lambda row, worker: "ok"):
        self.plans, self.status = tuple(plans), status
        self.started: list[FakeWorker] = []
        self.log: list[dict] = []
        self.lock = threading.Lock()

    def __call__(self, side: Side, job: Job, number: int) -> FakeWorker:
        worker = FakeWorker(self, side, job, number)
        with self.lock:
            self.started.append(worker)
        return worker


class FakeWorker:
    """What run_in_workers and run_pairs use of a Worker: number, measured, start_s, ready, measure, close, kill."""

    def __init__(self, fakes: Fakes, side: Side, job: Job, number: int) -> None:
        self.fakes, self.side, self.job, self.number = fakes, side, job, number
        self.measured = 0
        self.start_s = 0.5
        self.ready = Ready(plans=fakes.plans, variants=(), import_s=0.25, config_s=0.0)
        self.closed = self.killed = False
        self.rows: list[Row] = []

    def measure(self, row: Row, *, process: int, policy: Policy | None = None) -> Record:
        assert not (self.closed or self.killed), "measure on a stopped worker"
        self.measured += 1
        self.rows.append(row)
        plan = next(p for p in self.ready.plans if p.workload.name == row.workload)
        status = self.fakes.status(row, self)
        with self.fakes.lock:
            self.fakes.log.append(dict(worker=self, side=self.side.name, row=row, process=process, policy=policy,
                                       status=status))
        return Record(plan=plan, device=row.device, device_name="fake", threads=1, status=status,
                      variant=row.variant, process=process)

    def close(self) -> None:
        self.closed = True

    def kill(self) -> None:
        self.killed = True


JOB = Job(policy=Policy(budget_s=0.6, warmup_s=0.2), cuda_policy=Policy(), threads=1, devices=("cpu",))
COMPILE = Variant(compile=True)


def test_run_pairs_schedule():
    """run_pairs: two workers per pair, pair k's records carry process k on both sides, each side blocks times per
    row, both orders."""
    fakes, records = Fakes(), []
    pairs, blocks = 6, 3
    costs = run_pairs(Side(name="baseline"), Side(name="candidate"), JOB, pairs=pairs, blocks=blocks,
                      rng=random.Random(1), on_record=lambda name, r: records.append((name, r)), spawn=fakes)
    assert len(fakes.started) == 2 * pairs
    assert costs["baseline"].started == costs["candidate"].started == pairs
    for name in ("baseline", "candidate"):
        assert sorted(w.number for w in fakes.started if w.side.name == name) == list(range(pairs))
    assert len(records) == pairs * 2 * blocks * 2  # pairs x rows x blocks x sides
    assert all(e["process"] == e["worker"].number for e in fakes.log)  # pair k is measured by workers number k
    assert [(n, r.process) for n, r in records] == [(e["side"], e["process"]) for e in fakes.log]
    count = Counter((e["side"], e["row"].workload, e["process"]) for e in fakes.log)
    assert set(count.values()) == {blocks}
    assert len(count) == 2 * 2 * pairs  # sides x rows x pairs: every one measured
    firsts = []
    for first, second in zip(fakes.log[0::2], fakes.log[1::2]):  # each block: both sides, one after the other
        assert {first["side"], second["side"]} == {"baseline", "candidate"}
        assert (first["row"], first["process"]) == (second["row"], second["process"])
        firsts.append(first["side"])
    assert set(firsts) == {"baseline", "candidate"}  # the order of the sides varies
    # each block gets its share of the row's budget; only a row's first block warms up fully
    for e in fakes.log:
        assert e["policy"].budget_s == pytest.approx(JOB.policy.budget_s / blocks)
    seen = set()
    for e in fakes.log:
        key = (e["side"], e["row"], e["process"])
        assert e["policy"].warmup_s == (JOB.policy.warmup_s if key not in seen else 0.01)
        seen.add(key)
    assert all(w.closed and not w.killed for w in fakes.started)


def test_run_pairs_compile_rows_and_failures_get_fresh_workers():
    """run_pairs: a compile row is measured in workers of its own, and a crashed side gets a new worker for the next
    row."""
    crash = lambda row, worker: "crashed" if row.workload == "b" and not row.variant.compile else "ok"  # noqa: E731 - a one-line fake outcome
    fakes, records = Fakes(status=crash), []
    job = replace(JOB, variants=(Variant(), COMPILE))
    run_pairs(Side(name="baseline"), Side(name="candidate"), job, pairs=3, blocks=2, rng=random.Random(2),
              on_record=lambda name, r: records.append(r), spawn=fakes)
    for w in fakes.started:
        if any(r.variant.compile for r in w.rows):
            assert len(set(w.rows)) == 1, w.rows  # a compile row alone in its worker
    assert sum(1 for w in fakes.started if any(r.variant.compile for r in w.rows)) == 2 * 3 * 2  # sides x pairs x rows
    crashed = [w for w in fakes.started if any(e["status"] == "crashed" for e in fakes.log if e["worker"] is w)]
    assert crashed and all(w.killed for w in crashed)
    for w in crashed:  # the crashed row was its last: measured once (its other blocks are skipped), nothing after it
        assert w.rows[-1].workload == "b" and w.rows.count(w.rows[-1]) == 1
    assert Counter(r.status for r in records)["crashed"] == 2  # once per side: a crashed row is not measured again


def test_run_pairs_exception_in_on_record_kills_every_worker():
    """An exception from on_record (Ctrl-C, a full disk) in the second pair propagates and kills that pair's live
    workers."""
    fakes = Fakes()
    calls = []
    first_of_pair_1 = 2 * 2 * 2 + 1  # rows x blocks x sides of pair 0, then one more

    def on_record(name, record):
        calls.append(record.process)
        if len(calls) == first_of_pair_1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_pairs(Side(name="baseline"), Side(name="candidate"), JOB, pairs=4, blocks=2, rng=random.Random(3),
                  on_record=on_record, spawn=fakes)
    assert calls[-1] == 1 and len(fakes.log) == first_of_pair_1  # nothing measured after the exception
    state = [(w.side.name, w.number, w.closed, w.killed) for w in fakes.started]
    assert all(w.closed for w in fakes.started if w.number == 0), state  # pair 0 finished normally
    live = [w for w in fakes.started if w.number == 1]
    assert len(live) == 2 and all(w.killed for w in live), state


def test_run_in_workers_schedule():
    """run_in_workers: one fresh worker per trial measures every row once; records carry that worker's number."""
    fakes, records = Fakes(plans=PLANS), []
    cost = run_in_workers([Side()], JOB, processes=4, rng=random.Random(4), on_record=lambda _, r: records.append(r),
                          spawn=fakes)
    assert len(fakes.started) == 4 and cost[""].started == 4
    assert [w.number for w in fakes.started] == [0, 1, 2, 3]
    for w in fakes.started:
        assert sorted(r.workload for r in w.rows) == ["a", "b", "c"]
        assert w.closed and not w.killed
    assert [r.process for r in records] == [e["worker"].number for e in fakes.log]
    orders = {tuple(r.workload for r in w.rows) for w in fakes.started}
    assert len(orders) > 1  # rows in a random order per trial


def test_run_in_workers_compile_row_gets_its_own_worker():
    """run_in_workers: a compile row is measured alone in a worker, never after another row in the same one."""
    fakes = Fakes()
    job = replace(JOB, variants=(Variant(), COMPILE))
    run_in_workers([Side()], job, processes=3, rng=random.Random(5), on_record=lambda *_: None, spawn=fakes)
    own = [w for w in fakes.started if any(r.variant.compile for r in w.rows)]
    assert len(own) == 2 * 3  # two compile rows in each of three trials
    assert all(w.rows == [w.rows[0]] for w in own)
    assert all(not r.variant.compile for w in fakes.started if w not in own for r in w.rows)
    assert Counter((e["row"].workload, e["row"].variant.name) for e in fakes.log) == {
        ("a", "default"): 3, ("b", "default"): 3, ("a", "compile"): 3, ("b", "compile"): 3}


@pytest.mark.parametrize("retries", [0, 2])
def test_run_in_workers_replaces_a_failed_worker(retries):
    """run_in_workers: after a failed record the next row uses a new worker (a crashed one killed; an error one
    closed); a crashed row is measured again only `retries` times, a row in error in every process."""
    status = {"a": "crashed", "b": "error"}
    fakes = Fakes(plans=PLANS, status=lambda row, worker: status.get(row.workload, "ok"))
    run_in_workers([Side()], JOB, processes=5, rng=random.Random(6), on_record=lambda *_: None, spawn=fakes,
                   retries=retries)
    followed = 0
    for before, after in zip(fakes.log, fakes.log[1:]):
        if before["status"] in ("crashed", "error"):
            assert after["worker"] is not before["worker"]
            followed += 1
    assert followed >= 3  # not vacuous: failures that were not the last row of their trial
    for w in fakes.started:
        statuses = [e["status"] for e in fakes.log if e["worker"] is w]
        assert all(s == "ok" for s in statuses[:-1])  # a failure is the last row its worker measured
        assert w.killed == ("crashed" in statuses)
        assert w.closed == ("crashed" not in statuses)
    assert Counter(e["row"].workload for e in fakes.log) == {"a": 1 + retries, "b": 5, "c": 5}


@pytest.mark.parametrize("lost", ["timeout", "crashed"])
def test_run_in_workers_does_not_measure_a_hung_row_again(lost):
    """A row whose worker hung (or crashed) is measured once in the run, not once per process: its record stands,
    the later trials skip it, and the progress total shrinks so the last row is reported as the last."""
    fakes = Fakes(plans=PLANS, status=lambda row, worker: lost if row.workload == "b" else "ok")
    records, progress = [], []
    run_in_workers([Side()], JOB, processes=7, rng=random.Random(8), on_record=lambda _, r: records.append(r),
                   on_progress=progress.append, spawn=fakes)
    assert Counter(r.plan.name for r in records) == {"a": 7, "b": 1, "c": 7}
    assert [r.status for r in records if r.plan.name == "b"] == [lost]
    assert progress[-1].index == progress[-1].total == len(records)
    assert sum(w.killed for w in fakes.started) == 1


def test_run_pairs_does_not_measure_a_crashed_side_again():
    """ab: a row that crashed on the baseline side is not measured again on that side; the candidate measures it
    in every pair, and the other rows go on in both."""
    def crash(row, worker):
        return "crashed" if row.workload == "b" and worker.side.name == "baseline" else "ok"

    fakes, progress = Fakes(status=crash), []
    run_pairs(Side(name="baseline"), Side(name="candidate"), JOB, pairs=4, blocks=2, rng=random.Random(9),
              on_record=lambda *_: None, on_progress=progress.append, spawn=fakes)
    measured = Counter((e["side"], e["row"].workload) for e in fakes.log)
    assert measured == {("baseline", "a"): 4 * 2, ("baseline", "b"): 1, ("candidate", "a"): 4 * 2,
                        ("candidate", "b"): 4 * 2}
    assert progress[-1].index == progress[-1].total == len(fakes.log)


def test_the_grace_after_a_rows_limit_is_seconds():
    """The parent waits for a row's record its limit and a grace of seconds (not half a minute) past it."""
    from bench.measure.workers.process import GRACE_S, Worker

    worker = Worker.__new__(Worker)  # no process: only the limit is asked for
    worker.side, worker.job = Side(), JOB
    row = Row("a", "cpu", Variant())
    assert worker.limit_s(row) == pytest.approx(JOB.policy.row_limit_s + GRACE_S)
    assert 1.0 <= GRACE_S <= 10.0


def test_run_in_workers_exception_in_on_record_kills_every_live_worker():
    """An exception from on_record kills every live worker, the other side's first worker included, and propagates."""
    fakes = Fakes()

    def on_record(name, record):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        run_in_workers([Side(name="x"), Side(name="y")], JOB, processes=2, rng=random.Random(7), on_record=on_record,
                       spawn=fakes)
    assert len(fakes.started) == 2  # both sides' first workers were live
    assert all(w.killed for w in fakes.started)
    assert len(fakes.log) == 1


# ---------------------------------------------------------------- --metric instructions: one worker per layout
@pytest.fixture
def no_valgrind_needed(monkeypatch, tmp_path):
    """count_instructions with its library build and launcher faked: the schedule, not callgrind, is under test."""
    from bench.measure import instructions

    monkeypatch.setattr(instructions, "build_library", lambda folder: tmp_path / "lib.so")
    monkeypatch.setattr(instructions, "launcher", lambda out: ("valgrind", f"--out={out}"))


def test_count_instructions_counts_every_cpu_row_in_each_layout(no_valgrind_needed):
    """One worker per memory layout, each padded differently but with the same hash seed and its own dump folder;
    every CPU row counted in each; records carry -1 - layout and reach on_record in the caller's thread."""
    fakes, seen = Fakes(plans=PLANS), []
    job = replace(JOB, devices=("cpu", "cuda"))
    count_instructions(Side(name="x"), job, spawn=fakes, layouts=3,
                            on_record=lambda name, r: seen.append((name, r.process, threading.current_thread())))
    assert sorted(w.number for w in fakes.started) == [-3, -2, -1]
    pads = {w.number: dict(w.side.environ)["BENCH_LAYOUT_PAD"] for w in fakes.started}
    assert len({len(p) for p in pads.values()}) == 3 and pads[-1] == ""
    assert {dict(w.side.environ)["PYTHONHASHSEED"] for w in fakes.started} == {"0"}
    assert len({w.side.launcher for w in fakes.started}) == len({w.job.counter_out for w in fakes.started}) == 3
    for w in fakes.started:
        assert sorted(r.workload for r in w.rows) == ["a", "b", "c"] and {r.device for r in w.rows} == {"cpu"}
        assert w.closed and w.job.policy.budget_s == 0.0
    assert sorted(p for _, p, _ in seen) == sorted([-1, -2, -3] * 3)
    assert {name for name, _, _ in seen} == {"x"} and {t for _, _, t in seen} == {threading.main_thread()}


def test_count_instructions_a_layout_that_cannot_start_stops_the_count(no_valgrind_needed):
    """A counting worker that cannot start (BenchError from spawn) is raised in the caller; the others are stopped."""
    from bench.errors import BenchError, Problem

    fakes = Fakes(plans=PLANS)

    def spawn(side, job, number):
        if number == -2:
            raise BenchError(Problem(where="worker", field="start", expected="a worker", found="no valgrind"))
        return fakes(side, job, number)

    with pytest.raises(BenchError, match="no valgrind"):
        count_instructions(Side(), JOB, spawn=spawn, layouts=3, on_record=lambda *_: None)
    assert len(fakes.started) == 2 and all(w.closed or w.killed for w in fakes.started)


def test_a_rows_count_is_the_lowest_layouts_with_the_spread():
    """to_frame: the row's instructions are the lowest of its layouts' counts (collisions only add instructions),
    instructions_spread how far the highest was above it."""
    from bench.store.frames import to_frame

    base = Record(plan=PLANS[0], device="cpu", device_name="", threads=1, status="ok")
    counted = [replace(base, process=-1 - i, instructions=c) for i, c in enumerate((16_227.0, 15_411.0, 15_431.0))]
    (row,) = to_frame(counted).to_dict("records")
    assert row["instructions"] == 15_411.0
    assert row["instructions_spread"] == pytest.approx(16_227 / 15_411 - 1)


# ---------------------------------------------------------------- bench ab: extra pairs for rows that could be slower
def test_run_pairs_extra_pairs_number_on_and_measure_only_the_rows_asked():
    """run_pairs(first_pair=16, only=...): pairs numbered 16.. on both sides, and only the rows `only` picks."""
    fakes, records = Fakes(plans=PLANS), []
    run_pairs(Side(name="baseline"), Side(name="candidate"), JOB, pairs=3, blocks=2, rng=random.Random(3),
              on_record=lambda name, r: records.append((name, r)), spawn=fakes, first_pair=16,
              only=lambda row: row.workload == "b")
    assert sorted(w.number for w in fakes.started) == [16, 16, 17, 17, 18, 18]
    assert {r.plan.workload.name for _, r in records} == {"b"}
    assert Counter((name, r.process) for name, r in records) == {
        (side, k): 2 for side in ("baseline", "candidate") for k in (16, 17, 18)}


def test_open_after_picks_the_unsure_rows_a_slowdown_is_not_ruled_out_for():
    """More pairs go to rows whose interval still reaches 1 + threshold: not to a row judged same, nor to one that
    is unsure only because a speedup is not ruled out, nor to a failed row."""
    from bench.api.ab import open_after

    rng = np.random.default_rng(5)
    pairs, per = 16, 5
    bias = np.exp(rng.normal(0.0, 0.1, pairs))  # each pair's lifelong bias, shared by its two processes
    i = np.arange(pairs * per)
    spread = {"tight": 0.005, "wide": 0.3, "lower": 0.08}  # sigma of each pair's log ratio
    centre = {"tight": 1.0, "wide": 1.0, "lower": 0.95}
    base_rows, cand_rows = {}, {}
    for name in spread:
        ratio = centre[name] * np.exp(rng.normal(0.0, spread[name], pairs))
        base_rows[name] = 1e-3 * bias[i % pairs]
        cand_rows[name] = 1e-3 * bias[i % pairs] * ratio[i % pairs]
    base_rows["failed"] = cand_rows["failed"] = np.array([])

    def side(rows, name):
        results, samples, env = run_frames(rows, processes=pairs, status={"failed": "crashed"},
                                           env={"ab": {"id": "j", "side": name}})
        return Run(results=results, samples=samples, env=env)

    base, cand = side(base_rows, "baseline"), side(cand_rows, "candidate")
    verdicts = {v.workload: v for v in compare_runs(base, cand, rule=Rule(threshold=0.05), allow_failed=True).verdicts}
    assert verdicts["tight"].verdict == "same"
    assert verdicts["lower"].verdict == "unsure" and verdicts["lower"].ratio_high < 1.05  # a speedup not ruled out
    assert verdicts["wide"].verdict == "unsure" and verdicts["wide"].ratio_high >= 1.05
    assert verdicts["wide"].cause == "noise"  # processes apart, not so far apart that the machine decided
    assert [k.workload for k in open_after(base, cand, threshold=0.05, looks=())] == ["wide"]
    assert open_after(base, cand, threshold=2.0, looks=()) == []  # at a 200% threshold the wide row is same


@pytest.mark.parametrize("lo, hi, says", [
    (0.84, 1.04, "rules out a 10% slowdown, not a 10% speedup"),
    (0.95, 1.30, "rules out a 10% speedup, not a 10% slowdown"),
    (0.80, 1.30, "cannot rule out a 10% change"),
])
def test_an_unsure_row_says_which_side_is_left_open(lo, hi, says):
    """unsure with the interval wide on one side only: the reason says whether a slowdown is ruled out."""
    from bench.gate.rule import Figures, _judge

    verdict, reason, _ = _judge(Figures(ratio=1.0, ratio_low=lo, ratio_high=hi, p_value=0.5), threshold=0.1, alpha=0.01,
                                test="p")
    assert verdict == "unsure" and says in reason


@pytest.mark.parametrize("kw, field", [(dict(looks=(-1,)), "--looks"),
                                       (dict(looks=(True,)), "--looks"),
                                       (dict(processes=0), "--processes"),
                                       (dict(threshold=0.0), "threshold")])
def test_ab_refuses_bad_looks_and_threshold_before_measuring(kw, field):
    """One-line BenchError naming the field, before any worktree or worker exists."""
    import bench
    from bench.errors import BenchError

    with pytest.raises(BenchError, match=field):
        bench.ab(["smoke"], base_ref="HEAD", **kw)


def test_the_first_estimate_counts_the_worker_starts_to_come():
    """Before any row is timed, the time left is each row's warm-up and budget in each process plus the workers
    still to start (one per trial here) times the first worker's start: a slow config shows in the estimate."""
    fakes, progress = Fakes(plans=PLANS), []
    run_in_workers([Side()], JOB, processes=3, rng=random.Random(10), on_record=lambda *_: None,
                   on_progress=progress.append, spawn=fakes)
    per_row = JOB.policy.warmup_s + JOB.policy.budget_s
    assert progress[0].total == 3 * 3
    assert progress[0].left_s == pytest.approx(3 * 3 * per_row + 2 * 0.5)  # two more workers of 0.5 s each


def test_the_workers_cost_counts_loading_the_configs():
    """Ready.config_s (the side's configs imported and planned) reaches the cost env.json records, apart from the
    imports of torch and bench."""
    from bench.measure.workers.cost import WorkerCost

    worker = FakeWorker(Fakes(), Side(), JOB, 0)
    worker.ready = replace(worker.ready, import_s=2.0, config_s=60.0)
    worker.start_s = 63.0
    cost = WorkerCost().plus(worker).plus(worker).measured(4.0)
    assert cost.as_dict() == dict(started=2, start_s_median=63.0, import_s_median=2.0, config_s_median=60.0,
                                  start_s_total=126.0, measuring_s=4.0)
    assert cost.merged(cost).config_s == (60.0,) * 4


@pytest.mark.parametrize("retries", [-1, True, 1.5])
def test_retries_must_be_a_count(retries):
    """retries is an integer >= 0 for both schedules: refused in one line before any worker starts."""
    from bench.errors import BenchError

    fakes = Fakes()
    with pytest.raises(BenchError, match="retries: expected an integer >= 0"):
        run_in_workers([Side()], JOB, processes=1, rng=random.Random(0), on_record=lambda *_: None, spawn=fakes,
                       retries=retries)
    with pytest.raises(BenchError, match="retries: expected an integer >= 0"):
        run_pairs(Side(name="baseline"), Side(name="candidate"), JOB, pairs=1, blocks=1, rng=random.Random(0),
                  on_record=lambda *_: None, spawn=fakes, retries=retries)
    assert fakes.started == []
