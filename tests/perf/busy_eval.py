"""A busy machine: `layerbench run` with one core kept busy by another process, once with the thread count it
chooses (no --threads) and once with --threads 2 forced, the smoke suite each time. Prints the thread count and the
note each run recorded, and per row its process medians' spread (largest over smallest), median_s and whether
the row was marked machine-decided.

    .venv/bin/python tests/perf/busy_eval.py [--evidence docs/evidence/busy-threads.txt]
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def one(extra: list[str], out: Path) -> Path:
    cmd = [sys.executable, "-m", "bench", "run", "smoke", "--device", "cpu", "--store", "none", "--out", str(out),
           *extra]
    print("$ layerbench " + " ".join(cmd[3:]), file=sys.stderr, flush=True)
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    print("\n".join(line for line in done.stderr.splitlines() if "[" not in line[:2]), file=sys.stderr, flush=True)
    return max(p for p in out.iterdir() if p.is_dir())


def main() -> int:
    import bench
    from bench.store.summary import process_medians

    # one core spinning for the whole evaluation, as another job on a shared runner
    burner = subprocess.Popen([sys.executable, "-c", f"import os\nwhile os.getppid() == {os.getpid()}: pass"])
    try:
        runs = {label: one(extra, Path(tempfile.mkdtemp(prefix="busy-eval-")))
                for label, extra in (("threads chosen", []), ("--threads 2", ["--threads", "2"]))}
    finally:
        burner.kill()
    for label, folder in runs.items():
        run = bench.load(folder)
        print(f"{label}: threads {run.env.get('threads')}; {run.env.get('threads_note') or 'no note'}")
        for _, row in run.results.iterrows():
            medians = process_medians(run.samples[run.samples["workload"] == row["workload"]])
            spread = float(medians.max() / medians.min()) if len(medians) else float("nan")
            flagged = row.get("machine_decided") in (True, "True", "true")  # a bool, or its text in the file
            print(f"  {row['workload']:14} median {row['median_s'] * 1e6:9.2f} us  processes {len(medians)}  "
                  f"largest/smallest process median {spread:6.2f}x  machine_decided {flagged}")
    return 0


if __name__ == "__main__":
    from evidence import run  # tests/perf/evidence.py: --evidence PATH writes docs/evidence/<name>.txt

    sys.exit(run(main))
