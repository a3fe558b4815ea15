"""What `run` pays for its precision: a run that adds processes only while a row's interval is wide, against the
committed sample measured with 7 processes for every row (results/samples/cpu-seed).

Runs `layerbench run seed --device cpu --store none` (or reads --run FOLDER, such a run made earlier) and prints,
per row: the processes each used, and the half-width of the 95% interval of the median of process medians relative
to it (bench.stats.headline_interval, computed the same way for both from their samples.csv); then each run's
seconds spent measuring (env.json workers.measuring_s) and its worker processes.

    .venv/bin/python tests/perf/cost_eval.py [--run FOLDER] [--evidence docs/evidence/run-cost.txt]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
SAMPLE = ROOT / "results" / "samples" / "cpu-seed"


def precision(folder: Path) -> tuple[dict, dict]:
    """{workload: (processes, relative half-width of the headline interval)} and env.json's workers."""
    import bench
    from bench.stats import headline_interval
    from bench.store.summary import process_medians

    run = bench.load(folder)
    rows = {}
    for name, samples in run.samples.groupby("workload"):
        medians = process_medians(samples).to_numpy()
        mid, low, high = headline_interval(medians)
        rows[name] = (len(medians), max(mid - low, high - mid) / mid if low == low else float("nan"))
    return rows, dict(run.env.get("workers") or {})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="", help="a run folder of `layerbench run seed` made earlier")
    args = ap.parse_args()
    folder = Path(args.run) if args.run else None
    if folder is None:
        out = Path(tempfile.mkdtemp(prefix="cost-eval-"))
        cmd = [sys.executable, "-m", "bench", "run", "seed", "--device", "cpu", "--store", "none", "--out", str(out)]
        print("$ " + " ".join(cmd[1:]), file=sys.stderr)
        subprocess.run(cmd, cwd=ROOT, check=True)
        folder = max(p for p in out.iterdir() if p.is_dir())
    new, new_workers = precision(folder)
    old, old_workers = precision(SAMPLE)
    print(f"{'row':28} {'processes (sample)':>18} {'processes (now)':>15} {'half-width (sample)':>19} "
          f"{'half-width (now)':>16}")
    for name in old:
        n_old, w_old = old[name]
        n_new, w_new = new.get(name, (0, float("nan")))
        print(f"{name:28} {n_old:>18} {n_new:>15} {w_old:>18.2%} {w_new:>16.2%}")
    for label, workers in (("sample", old_workers), ("now", new_workers)):
        print(f"{label}: {workers.get('measuring_s', float('nan')):.1f} s measuring, {workers.get('started')} worker "
              f"processes, {workers.get('start_s_median', float('nan')):.1f} s each to start (median)")
    return 0


if __name__ == "__main__":
    from evidence import run  # tests/perf/evidence.py: --evidence PATH writes docs/evidence/<name>.txt

    sys.exit(run(main))
