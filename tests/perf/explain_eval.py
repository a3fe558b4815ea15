"""Evidence that the numbers say what ran (docs/numbers.md), through the CLI in separate processes, on the CPU:

- compile: a 12-module suite with `--variants compile` (real inductor): graphs and compile_s per row;
- grouped conv backward: Conv2d(144, 144, 3, groups=144) on [32, 144, 56, 56], forward and backward FLOPs;
- memory: the seed suite's peak_memory_bytes against the plan (seed-conv11 against a hand computation);
- cache: the seed suite warm and cold (`--cache cold`), runs alternated: the cold / warm ratio of each
          workload's median.

    .venv/bin/python tests/perf/explain_eval.py [--out /tmp/explain-eval] [--only compile|flops|seed]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

COMPILE_CONFIG = '''import functools
from torch import nn
from bench import Workload

WORKLOADS = [Workload(name=f"m{i:02d}", module=functools.partial(nn.Linear, 16 + 8 * i, 32), \
input_shape=(8, 16 + 8 * i))
             for i in range(12)]
'''
DEPTHWISE_CONFIG = '''import functools
from torch import nn
from bench import Workload

WORKLOADS = [Workload(name="dw3x3", module=functools.partial(nn.Conv2d, 144, 144, 3, padding=1, groups=144),
                      input_shape=(32, 144, 56, 56))]
'''


def bench(*args) -> subprocess.CompletedProcess:
    p = subprocess.run([sys.executable, "-m", "bench", *map(str, args)], cwd=REPO, capture_output=True, text=True,
                       env=dict(os.environ, BENCH_STORE="none"))
    if p.returncode not in (0, 1):
        print(p.stderr[-2000:], file=sys.stderr)
    return p


def compile_rows(out: Path) -> dict:
    import bench as api

    cfg = out / "compile_cfg.py"
    cfg.write_text(COMPILE_CONFIG)
    p = bench("run", cfg, "--device", "cpu", "--variants", "compile", "--processes", "1", "--budget-s", "0.2",
              "--out", out / "compile")
    rows = api.load(out / "compile").results
    rows = rows[rows["variant"] == "compile"]
    return dict(exit=p.returncode, rows=len(rows), ok=int((rows["status"] == "ok").sum()),
                graphs=rows["graphs"].tolist(), compile_s=[round(x, 2) for x in rows["compile_s"]])


def flops(out: Path) -> dict:
    import bench as api

    cfg = out / "dw_cfg.py"
    cfg.write_text(DEPTHWISE_CONFIG)
    p = bench("run", cfg, "--device", "cpu", "--variants", "backward", "--processes", "1", "--budget-s", "0.2",
              "--out", out / "dw")
    rows = api.load(out / "dw").results.set_index("variant")
    return dict(exit=p.returncode, forward_flops=int(rows.at["default", "flops"]),
                backward_flops=int(rows.at["backward", "flops"]),
                ratio=round(rows.at["backward", "flops"] / rows.at["default", "flops"], 3))


def seed(out: Path, rounds: int = 3) -> dict:
    """Warm and cold runs alternated (warm, cold, warm, ...), so a change in the machine's load touches both; the
    ratio of each workload's median over the cold runs to its median over the warm ones."""
    import pandas as pd

    import bench as api

    runs: dict[str, list] = {"warm": [], "cold": []}
    for i in range(rounds):
        for cache in ("warm", "cold"):
            target = out / f"seed-{cache}-{i}"
            bench("run", "seed", "--device", "cpu", "--cache", cache, "--processes", "3", "--budget-s", "0.6",
                  "--out", target)
            runs[cache].append(api.load(target).results.set_index("workload"))
    med = {c: pd.concat([r["median_s"] for r in rs], axis=1).median(axis=1) for c, rs in runs.items()}
    warm = runs["warm"][0]
    return dict(
        cold_over_warm={w: round(med["cold"][w] / med["warm"][w], 3) for w in warm.index},
        warm_spread={w: round(float(pd.concat([r["median_s"] for r in runs["warm"]], axis=1).loc[w].max()
                                    / pd.concat([r["median_s"] for r in runs["warm"]], axis=1).loc[w].min()), 2)
                     for w in warm.index},
        peak_memory_mb={w: round(warm.at[w, "peak_memory_bytes"] / 1e6, 1) for w in warm.index},
        planned_peak_mb={w: round(warm.at[w, "planned_peak_bytes"] / 1e6, 1) for w in warm.index},
        cache_column=sorted({c for rs in runs.values() for r in rs for c in r["cache"]}))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="/tmp/explain-eval")
    ap.add_argument("--only", choices=["compile", "flops", "seed"], default=None)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else {}
    for name, fn in (("flops", flops), ("compile", compile_rows), ("seed", seed)):
        if args.only in (None, name):
            report[name] = fn(out)
            (out / "report.json").write_text(json.dumps(report, indent=1))
            print(f"{name}: {json.dumps(report[name])}", flush=True)
    return 0


if __name__ == "__main__":
    from evidence import run  # tests/perf/evidence.py: --evidence PATH writes docs/evidence/<name>.txt

    sys.exit(run(main))
