"""Evidence for the regression gate: false alarms on A/A pairs and detection of injected slowdowns,
side by side with pytest-benchmark's `--benchmark-compare-fail=median:10%` on the very same runs.

For each pair: a baseline run of the smoke suite, then (in rotating order) a candidate run of the same
code (A/A) and two with one workload doing 10% and 25% more work: every 10th (4th) call makes one
extra call. Every workload is wrapped the same way in every run, so the extra calls are the only
difference. The injected workload rotates through the suite. Runs are in-process, 1 CPU thread (on a
shared 2-core machine two threads let another process stall a small conv by up to 200x).

    .venv/bin/python tests/perf/gate_eval.py [--pairs 24] [--rounds 3] [--budget-s 0.1] [--json FILE]

Our verdicts come from bench.gate.compare.compare_runs with default settings (threshold 10%); pytest-benchmark's from
its own PercentageRegressionCheck on our runs exported by bench.store.export. Takes about 9 s per pair (4 runs x 3 rounds).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.suite import config
from bench.measure import env as envmod
from bench.suite import plan as planning  # noqa: E402
from bench.gate.compare import compare_runs  # noqa: E402
from bench.gate.rule import Rule  # noqa: E402
from bench.store.export import to_pytest_benchmark  # noqa: E402
from bench.measure.sampling import Policy  # noqa: E402
from bench.store.folder import Run  # noqa: E402
from bench.store.frames import to_frame, to_samples  # noqa: E402
from bench.measure.record import Record  # noqa: E402
from bench.measure.runner import run_suite  # noqa: E402


class ExtraWork(nn.Module):
    """The wrapped layer; every `every`-th call (0: never) also makes one extra, complete call of this
    wrapper, so the time per call grows by 1/every of a whole call (10% with every=10, 25% with every=4)."""

    def __init__(self, inner: nn.Module, every: int) -> None:
        super().__init__()
        self.inner, self.period = inner, every or 1 << 62  # the same bookkeeping whether or not it injects
        self.state = {"calls": 0, "nested": False}  # a dict: nn.Module.__setattr__ would cost ~1 us per call

    def forward(self, x):
        state = self.state
        if not state["nested"]:
            state["calls"] += 1
            if state["calls"] % self.period == 0:
                state["nested"] = True
                try:
                    self(x)  # the extra call, through nn.Module.__call__ like the timed one
                finally:
                    state["nested"] = False
        return self.inner(x)


def _build(make, every: int) -> nn.Module:
    return ExtraWork(make(), every)


def suite(every: dict[str, int]) -> list:
    declared = config.load("smoke").declared
    wrapped = [replace(d, workload=replace(d.workload, module=partial(_build, d.workload.module,
                                                                      every.get(d.workload.name, 0))))
               for d in declared]
    return planning.check(wrapped)


def pooled(rounds: list[list[Record]], env: dict):
    """Records of several rounds of the same suite as one run: each row's samples concatenated."""
    merged = []
    for group in zip(*rounds):
        ok = [r for r in group if r.measurement is not None]
        if len(ok) < len(group):
            merged.append(group[0] if group[0].measurement is None else next(r for r in group if r.measurement is None))
            continue
        m = ok[0].measurement
        merged.append(replace(ok[0], measurement=replace(
            m, device_s=sum((r.measurement.device_s for r in ok), ()), host_s=sum((r.measurement.host_s for r in ok), ()),
            enqueue_s=sum((r.measurement.enqueue_s for r in ok), ()))))
    return Run(results=to_frame(merged), samples=to_samples(merged), env=dict(env, complete=True))


def pytest_benchmark_slower(base, cand) -> dict[str, bool]:
    """pytest-benchmark's own rule, `median:10%`, per workload (its code, on our exported stats)."""
    from pytest_benchmark.utils import parse_compare_fail

    check = parse_compare_fail("median:10%")
    b = {x["params"]["workload"]: x["stats"] for x in to_pytest_benchmark(base)["benchmarks"]}
    c = {x["params"]["workload"]: x["stats"] for x in to_pytest_benchmark(cand)["benchmarks"]}
    return {k: bool(check.fails(c[k], b[k])) for k in b if k in c}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=24)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds per run (at least 2)")
    ap.add_argument("--budget-s", type=float, default=0.1, help="sampling seconds per row and round")
    ap.add_argument("--warmup-s", type=float, default=0.05)
    ap.add_argument("--min-samples", type=int, default=10)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    torch.set_num_threads(1)
    policy = Policy(warmup_s=args.warmup_s, budget_s=args.budget_s, min_samples=args.min_samples)
    env = envmod.capture(devices=["cpu"], argv=["gate_eval"], threads=1)
    names = [d.workload.name for d in config.load("smoke").declared]
    kinds = {"base": 0, "A/A": 0, "+10%": 10, "+25%": 4}
    rows = []  # one per (pair, mode, candidate run, workload)
    started, load_start = time.time(), os.getloadavg()
    for i in range(args.pairs):
        target = names[i % len(names)]
        plans = {kind: suite({target: every} if every else {}) for kind, every in kinds.items()}
        rounds: dict[str, list] = {kind: [] for kind in kinds}
        for r in range(args.rounds):  # base, A/A, +10%, +25% in turn, the order rotating each round
            shift = (i + r) % len(kinds)
            for kind in (list(kinds)[shift:] + list(kinds)[:shift]):
                rounds[kind].append(run_suite(plans[kind], ["cpu"], policy=policy))
        modes = {"one round": lambda k: pooled(rounds[k][:1], env),
                 "second round": lambda k: pooled(rounds[k][1:2], env),
                 f"{args.rounds} rounds pooled": lambda k: pooled(rounds[k], env)}
        for mode, run_of in modes.items():
            base = run_of("base")
            for kind in ("A/A", "+10%", "+25%"):
                cand = run_of(kind)
                ours = {v.workload: v for v in compare_runs(base, cand, rule=Rule()).verdicts}
                theirs = pytest_benchmark_slower(base, cand)
                for name in names:
                    v = ours[name]
                    rows.append(dict(pair=i, mode=mode, run=kind, workload=name,
                                     kind=kind if (kinds[kind] and name == target) else "A/A",
                                     ours=v.verdict, pytest_benchmark=theirs[name], ratio=v.ratio,
                                     median_ratio=v.candidate_median_s / v.baseline_median_s))
        done = [r for r in rows if r["pair"] == i and r["mode"] == "one round" and r["ours"] != "same"]
        print(f"pair {i + 1}/{args.pairs} ({target} injected, load {os.getloadavg()[0]:.1f}): "
              + ", ".join(f"{r['run']}:{r['workload'].removeprefix('smoke-')}={r['ours']}" for r in done),
              file=sys.stderr)
    elapsed, load_end = time.time() - started, os.getloadavg()
    print(report(rows, args, elapsed, load_start, load_end))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


def report(rows: list[dict], args, elapsed: float, load_start, load_end) -> str:
    import pandas as pd

    f = pd.DataFrame(rows)
    # "confirmed": a row counts as slower only when the first and the second round both say so, as a CI
    # job that re-measures once before failing would do
    first = f[f["mode"] == "one round"].reset_index(drop=True)
    second = f[f["mode"] == "second round"].reset_index(drop=True)
    confirmed = first.assign(mode="one round, confirmed by a second",
                             ours=first["ours"].where((first["ours"] != "slower") | (second["ours"] == "slower"),
                                                      "unsure"),
                             pytest_benchmark=first["pytest_benchmark"] & second["pytest_benchmark"])
    f = pd.concat([f[f["mode"] != "second round"], confirmed], ignore_index=True)
    lines = [f"{args.pairs} pairs of smoke-suite runs, 1 thread, {args.rounds} interleaved rounds of "
             f"{args.budget_s:g} s per row, {elapsed:.0f} s; load average {load_start[0]:.1f} at the start, "
             f"{load_end[0]:.1f} at the end (2 cores)", ""]
    table = []
    for mode, fm in f.groupby("mode", sort=False):
        cases = [("A/A: same code", fm[fm["run"] == "A/A"]),
                 ("A/A: untouched rows of all runs", fm[fm["kind"] == "A/A"]),
                 ("+10% work: detected", fm[fm["kind"] == "+10%"]), ("+25% work: detected", fm[fm["kind"] == "+25%"])]
        for label, sub in cases:
            table.append({"runs": mode, "case": label, "rows": len(sub),
                          "ours slower": int((sub["ours"] == "slower").sum()),
                          "ours unsure": int((sub["ours"] == "unsure").sum()),
                          "pytest-benchmark median:10% fails": int(sub["pytest_benchmark"].sum())})
    lines.append(pd.DataFrame(table).to_string(index=False))
    inj = f[f["kind"] != "A/A"].groupby(["mode", "kind"], sort=False)["median_ratio"].median()
    lines += ["", "measured slowdown of the injected row (median over pairs of candidate/baseline medians):",
              inj.map(lambda x: f"{x - 1:+.1%}").to_string()]
    aa = f[f["kind"] == "A/A"].groupby(["mode", "workload"], sort=False)["median_ratio"]
    lines += ["", "A/A candidate/baseline medians, 5th and 95th percentile over rows:",
              pd.DataFrame({"p5": aa.quantile(0.05), "p95": aa.quantile(0.95)}).map(
                  lambda x: f"{x - 1:+.1%}").to_string()]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
