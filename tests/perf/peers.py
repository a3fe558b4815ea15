"""Time the seed workloads with this harness and with the peers, in one process, interleaved; print ratios.

Peers: torch.utils.benchmark (Timer.blocked_autorange, same thread count as the harness) everywhere, and
triton.testing.do_bench on a GPU. Each round times every workload with every tool, one after another, so
drifts of a shared machine hit all tools alike; the time per tool is the median over rounds, and each
ratio is the median over rounds of that round's ratio.

Usage: python tests/perf/peers.py [--config seed] [--device cpu|cuda|all] [--rounds 3] [--budget-s 1] [--evidence PATH]
Targets (issue 2): within 5% of torch.utils.benchmark on the CPU; within 1% of do_bench and
torch.utils.benchmark on a GPU for workloads above 100 us.
"""
from __future__ import annotations

import argparse
import functools
import statistics
import sys
from pathlib import Path

import torch
import torch.utils.benchmark as tub

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.measure.clock import default_timer  # after the sys.path insert
from bench.measure.runner import build  # after the sys.path insert
from bench.measure.sampling import Policy, measure  # after the sys.path insert
from bench.stats import summarize  # after the sys.path insert
from bench.suite import (
    config,
    plan,  # after the sys.path insert
)


def harness_s(fn, device: str, budget_s: float) -> float:
    policy = Policy(budget_s=budget_s, warmup_s=0.5 if device == "cuda" else 0.2)
    m = measure(fn, timer=default_timer(device), policy=policy)
    return summarize(m.device_s).median_s


def tub_s(fn, device: str, budget_s: float) -> float:
    # torch.utils.benchmark synchronizes CUDA around its blocks by itself; threads default to 1: match ours.
    timer = tub.Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=budget_s).median


def do_bench_s(fn, device: str, budget_s: float) -> float:
    from triton.testing import do_bench

    return do_bench(fn, warmup=100, rep=int(budget_s * 1000), return_mode="median") / 1e3


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="seed")
    ap.add_argument("--device", default="all", choices=["cpu", "cuda", "all"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--budget-s", type=float, default=1.0)
    ap.add_argument("--filter", default="")
    args = ap.parse_args(argv)
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    devices = [d for d in devices if d == "cpu" or torch.cuda.is_available()]
    plans = [p for p in plan.check(config.load_config(args.config).declared) if args.filter in p.name]
    tools = {"harness": harness_s, "torch.utils.benchmark": tub_s}
    rows = []
    for device in devices:
        tools_here = dict(tools)
        if device == "cuda":
            try:
                import triton.testing  # noqa: F401 - imported only to check that triton is installed

                tools_here["do_bench"] = do_bench_s
            except ImportError:
                print("note: triton not importable; do_bench skipped", file=sys.stderr)
        for p in plans:
            module, x = build(p, device)
            with torch.inference_mode():
                fn = functools.partial(module, x)  # the callable each tool times
                times = {t: [] for t in tools_here}
                for _ in range(args.rounds):
                    for tool, timer in tools_here.items():
                        times[tool].append(timer(fn, device, args.budget_s))
            med = {t: statistics.median(v) for t, v in times.items()}
            # The ratio is the median over rounds of the per-round ratio: the two tools ran back to back in each
            # round, so a machine that drifts between rounds (a shared CI box) moves both sides of each ratio.
            def paired(other: str, times: dict = times) -> float:
                return statistics.median(h / o for h, o in zip(times["harness"], times[other]))

            row = {"workload": p.name, "device": device, "harness_s": med["harness"],
                   "tub_s": med["torch.utils.benchmark"], "harness/tub": paired("torch.utils.benchmark")}
            if "do_bench" in med:
                row["do_bench_s"] = med["do_bench"]
                row["harness/do_bench"] = paired("do_bench")
            rows.append(row)
            print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
                  file=sys.stderr, flush=True)
            del module, x
    import pandas as pd

    frame = pd.DataFrame(rows)
    print(frame.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return 0


if __name__ == "__main__":
    from evidence import run  # tests/perf/evidence.py: --evidence PATH writes docs/evidence/<name>.txt

    sys.exit(run(main))
