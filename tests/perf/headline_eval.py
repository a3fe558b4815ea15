"""The headline number against torch.utils.benchmark: `layerbench run` (median of per-process medians, and the
pooled median it replaced) beside torch's Timer.blocked_autorange in fresh processes, rounds alternated.

Each round runs, in an order that alternates between rounds, (1) `python -m bench run CONFIG` through the CLI
(its own worker processes; results.csv's median_s, and the median of samples.csv pooled), and (2) N fresh Python
processes that each build every workload of the config (bench.measure.runner.build) and time it under
torch.inference_mode with tests/perf/peers.py's tub_s (Timer.blocked_autorange), with the thread count the run
used; torch's figure for a row is the median of those processes' medians. Per row the script prints the median
over rounds of each figure and of each round's ratio (both tools ran back to back in a round, so a machine that
drifts between rounds moves both sides of a ratio alike).

Usage: python tests/perf/headline_eval.py [--configs seed,smoke] [--device cpu] [--rounds 3] [--processes 7]
       [--min-processes 3] [--torch-processes 7] [--budget-s 1] [--torch-budget-s 0.2] [--out PATH]
--out PATH (or --evidence PATH) writes the evidence file (tests/perf/evidence.py), such as
docs/evidence/headline-vs-torch.txt. Target (issue 20): ours within 5% of torch's on the seed and smoke rows.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def torch_worker(config: str, device: str, budget_s: float, threads: int, seed: int) -> int:
    """One fresh process of torch's side: every workload of the config timed with peers.tub_s, in a random order;
    prints {workload: median seconds} as JSON."""
    import torch
    from peers import tub_s  # tests/perf/peers.py: Timer.blocked_autorange, threads as torch's

    from bench.measure.runner import build
    from bench.suite import config as configs
    from bench.suite import plan

    torch.set_num_threads(threads)
    plans = plan.check(configs.load_config(config).declared)
    random.Random(seed).shuffle(plans)
    out = {}
    for p in plans:
        module, x = build(p, device)
        with torch.inference_mode():
            out[p.name] = tub_s(lambda module=module, x=x: module(x), device, budget_s)
        del module, x
    print(json.dumps(out))
    return 0


def ours(config: str, args, out: Path) -> tuple[dict, dict, int]:
    """One `bench run` through the CLI: {workload: median_s}, {workload: pooled median of its samples}, threads."""
    from bench.store.folder import read_run_dir

    cmd = [sys.executable, "-m", "bench", "run", config, "--device", args.device, "--out", str(out), "--store",
           "none", "--processes", str(args.processes), "--min-processes", str(args.min_processes),
           "--budget-s", str(args.budget_s)] + (["--threads", str(args.threads)] if args.threads else [])
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise SystemExit(f"bench run failed ({done.returncode}): {done.stderr[-2000:]}")
    run = read_run_dir(max(p for p in out.iterdir() if p.is_dir()))
    ok = run.results[run.results["status"] == "ok"]
    headline = dict(zip(ok["workload"], ok["median_s"].astype(float)))
    pooled = run.samples.groupby("workload")["device_s"].median().to_dict()
    flagged = set(ok.loc[ok["machine_decided"] == True, "workload"]) if "machine_decided" in ok else set()  # noqa: E712 - True, False, None
    for name in flagged:
        print(f"note: {config}/{name} machine-decided in this round", file=sys.stderr)
    return headline, {k: float(v) for k, v in pooled.items() if k in headline}, int(run.env.get("threads") or 1)


def torch_side(config: str, args, threads: int) -> dict:
    """torch's figure per workload: the median over `torch_processes` fresh processes of their medians."""
    per: dict[str, list[float]] = {}
    for _ in range(args.torch_processes):
        cmd = [sys.executable, __file__, "--torch-worker", config, args.device, str(args.torch_budget_s),
               str(threads), str(random.randrange(2**31))]
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"torch worker failed: {done.stderr[-2000:]}")
        for name, value in json.loads(done.stdout.strip().splitlines()[-1]).items():
            per.setdefault(name, []).append(float(value))
    return {name: statistics.median(values) for name, values in per.items()}


def one_round(config: str, args, r: int, work: Path, threads: int | None) -> tuple[dict, int | None]:
    """One round of one config, the tools in an order that alternates with the round (the first round runs ours
    first, so that torch's side learns the thread count ours chose): ({workload: figures}, the threads used)."""
    order = ["ours", "torch"] if r % 2 == 0 else ["torch", "ours"]
    got: dict = {}
    for tool in order:
        if tool == "ours":
            headline, pooled, used = ours(config, args, work / f"{config}-{r}")
            got.update(headline=headline, pooled=pooled)
            threads = used
        else:
            got["torch"] = torch_side(config, args, threads or 1)
    print(f"round {r + 1} of {config}: {' then '.join(order)}, {threads} thread(s)", file=sys.stderr, flush=True)
    return got, threads


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default="seed,smoke")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--processes", type=int, default=7)
    ap.add_argument("--min-processes", type=int, default=3)
    ap.add_argument("--torch-processes", type=int, default=7)
    ap.add_argument("--budget-s", type=float, default=1.0, help="ours: sampling seconds per row (split over its "
                    "processes)")
    ap.add_argument("--torch-budget-s", type=float, default=0.2, help="torch: min_run_time per row per process")
    ap.add_argument("--threads", type=int, default=None, help="both tools' threads (default: the count `run` "
                    "chooses, which a busy machine lowers; torch's side then uses the count of ours just before)")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for config in args.configs.split(","):
            rounds, threads = [], args.threads
            for r in range(args.rounds):
                got, threads = one_round(config, args, r, Path(tmp), threads)
                rounds.append(got)
            for name in rounds[0]["headline"]:
                if not all(name in rd["headline"] and name in rd["torch"] for rd in rounds):
                    continue
                row = {"config": config, "workload": name}
                for figure in ("headline", "pooled", "torch"):
                    row[f"{figure}_s"] = statistics.median(rd[figure][name] for rd in rounds)
                row["ours/torch"] = statistics.median(rd["headline"][name] / rd["torch"][name] for rd in rounds)
                row["pooled/torch"] = statistics.median(rd["pooled"][name] / rd["torch"][name] for rd in rounds)
                rows.append(row)
                print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
                      file=sys.stderr, flush=True)
    import pandas as pd

    frame = pd.DataFrame(rows)
    print(frame.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if len(frame):
        within = (frame["ours/torch"] - 1).abs() <= 0.05
        print(f"\n{int(within.sum())} of {len(frame)} rows within 5% of torch.utils.benchmark "
              f"(ours: median of per-process medians; pooled: the median of all samples, for comparison)")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--torch-worker":
        _, _, config, device, budget, threads, seed = sys.argv
        sys.exit(torch_worker(config, device, float(budget), int(threads), int(seed)))
    from evidence import run  # tests/perf/evidence.py: --evidence PATH writes the evidence file

    sys.argv[1:] = ["--evidence" if a == "--out" else a for a in sys.argv[1:]]
    sys.exit(run(main))
