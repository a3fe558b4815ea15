"""Evidence for `--metric instructions`, through the CLI in separate processes (docs/gate.md).

- A/A: `--aa` runs of the smoke suite, each its own `bench run --metric instructions`; per row, how far apart the
  runs' counts are (max / min - 1), and the spread between memory layouts inside each run (instructions_spread).
- Injected: each smoke workload in turn doing 10% more work (tests/perf/inject.py), one run each, gated with
  `bench compare FIRST_AA INJECTED --metric instructions`: the injected row's count ratio and verdict, and the
  verdicts of the untouched rows.

    .venv/bin/python tests/perf/instructions_eval.py --aa 3 --out /tmp/instructions-eval

Long (a minute or two per run: torch imported under valgrind); never part of `make test`.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import bench  # noqa: E402 - after the sys.path insert

RUN_ARGS = ["--device", "cpu", "--processes", "1", "--metric", "instructions", "--budget-s", "0.05", "--threads", "1"]


def bench_cli(*args) -> subprocess.CompletedProcess:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "bench", *map(str, args)], cwd=ROOT, capture_output=True, text=True)
    done.seconds = time.perf_counter() - started
    return done


def injected_config(folder: Path, workload: str, every: int) -> Path:
    """tests/perf/inject.py with EVERY = {workload: every}, written into folder."""
    text = (ROOT / "tests" / "perf" / "inject.py").read_text()
    text = text.replace("EVERY: dict[str, int] = {}", f"EVERY: dict[str, int] = {{{workload!r}: {every}}}")
    text = text.replace('Path(__file__).resolve().parents[2] / "configs" / "smoke.py"',
                        repr(str(ROOT / "configs" / "smoke.py")))
    path = folder / f"inject_{workload.replace('-', '_')}.py"
    path.write_text(text)
    return path


def counts(run_dir: Path) -> pd.DataFrame:
    return bench.load(run_dir).results.set_index("workload")[["instructions", "instructions_spread"]]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--aa", type=int, default=3)
    ap.add_argument("--every", type=int, default=10, help="the injected workload makes 1/EVERY more calls")
    ap.add_argument("--out", type=Path, default=Path("/tmp/instructions-eval"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    aa, workloads = [], []
    for i in range(args.aa):
        out = args.out / f"aa{i}"
        done = bench_cli("run", "tests/perf/inject.py", *RUN_ARGS, "--out", out)
        if done.returncode != 0:
            print(done.stderr[-2000:])
            return 2
        aa.append(counts(out))
        workloads = list(aa[-1].index)
        print(f"A/A run {i} ({done.seconds:.0f} s): "
              + ", ".join(f"{w} {aa[-1].loc[w, 'instructions']:,.0f}" for w in workloads), flush=True)
    table = pd.concat([a["instructions"] for a in aa], axis=1)
    spread = pd.concat([a["instructions_spread"] for a in aa], axis=1)
    print("\nA/A: row, runs apart (max/min - 1), largest layout spread inside a run")
    for w in workloads:
        print(f"  {w}: {table.loc[w].max() / table.loc[w].min() - 1:.4%}, {spread.loc[w].max():.2%}")
    print(f"\nInjected: every {args.every}th call makes one extra (+{1 / args.every:.0%} work)")
    for w in workloads:
        out = args.out / f"inject-{w}"
        done = bench_cli("run", injected_config(args.out, w, args.every), *RUN_ARGS, "--out", out)
        if done.returncode != 0:
            print(done.stderr[-2000:])
            return 2
        judged = bench_cli("compare", args.out / "aa0", out, "--metric", "instructions")
        verdicts = {v.workload: v.verdict for v in bench.comparison(args.out / "aa0", out,
                                                                    metric="instructions").verdicts}
        ratio = counts(out).loc[w, "instructions"] / table.loc[w].median()
        others = ", ".join(f"{name} {v}" for name, v in verdicts.items() if name != w)
        mine = verdicts.get(w, "missing")
        print(f"  {w} ({done.seconds:.0f} s): count x{ratio:.4f}, verdict {mine}, compare exit {judged.returncode}; "
              f"others: {others}",
              flush=True)
    return 0


if __name__ == "__main__":
    from evidence import run  # tests/perf/evidence.py: --evidence PATH writes docs/evidence/<name>.txt

    sys.exit(run(main))
