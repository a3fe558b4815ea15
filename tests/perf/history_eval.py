"""Evidence for the history store, change points and shards, measured the way users run them (docs/history.md).

- trend:  40 `bench run` commands (separate processes, the CLI) of an 8-workload suite in a scratch git repository,
          one commit per run. One workload gets +30% work at run 20 (a step), one +3% per run over runs 25-29
          (creep), six never change. Then `bench history --out`: where the change points are.
- scale:  10,000 runs x 100 rows appended to an SQLite store through bench's Store.append: file size, time per
          append, the query of one row's history and of 10 workloads, change points and a trend figure.
- shards: `bench run smoke --shard 1/2` and `2/2`, `bench merge`, against one unsharded run: the same rows.

    .venv/bin/python tests/perf/history_eval.py [--runs 40] [--scale-runs 10000] [--out /tmp/history-eval]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

CONFIG = '''"""History evidence: REPS gives each workload its Linear's width and how many times it repeats it \
(its work)."""
import functools

from torch import nn

from bench import Workload

REPS = {reps!r}


class Repeat(nn.Module):
    def __init__(self, width: int, n: int) -> None:
        super().__init__()
        self.n, self.layer = n, nn.Linear(width, width)

    def forward(self, x):
        for _ in range(self.n):
            x = self.layer(x)
        return x


WORKLOADS = [Workload(name=name, module=functools.partial(Repeat, width, n), input_shape=(16, width))
             for name, (width, n) in REPS.items()]
'''
BASE = 100


# Six rows that never change, of different widths (they feel a busy machine differently), beside the two that do.
STEADY = {"steady-32": (32, 150), "steady-64": (64, 100), "steady-96": (96, 60), "steady-128": (128, 40),
          "steady-192": (192, 20), "steady-256": (256, 12)}


def reps_at(run: int) -> dict[str, tuple[int, int]]:
    """Each workload's (width, repeats) at a run: steady; step +30% from run 20; creep +3% per run over runs
    25-29."""
    creep = round(BASE * 1.03 ** min(max(run - 24, 0), 5))
    return {**STEADY, "step": (64, BASE * 13 // 10 if run >= 20 else BASE), "creep": (64, creep)}


def sh(args, cwd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, **kw)


def bench(cwd: Path, *args) -> subprocess.CompletedProcess:
    return sh([sys.executable, "-m", "bench", *args], cwd, env=dict(__import__("os").environ, PYTHONPATH=str(REPO)))


def trend(out: Path, runs: int, processes: int = 7) -> dict:
    project = out / "project"
    project.mkdir(parents=True, exist_ok=True)
    if not (project / ".git").exists():
        sh(["git", "init", "-q"], project).check_returncode()
    store = out / "trend.sqlite"
    done = int((out / "trend-done").read_text()) if (out / "trend-done").exists() else 0
    for i in range(done, runs):
        (project / "cfg.py").write_text(CONFIG.format(reps=reps_at(i)))
        sh(["git", "add", "cfg.py"], project)
        sh(["git", "-c", "user.name=e", "-c", "user.email=e@e", "commit", "-qm", f"run {i}: {reps_at(i)}",
            "--allow-empty"], project)
        started = time.time()
        p = bench(project, "run", "cfg.py", "--device", "cpu", "--threads", "1", "--processes", str(processes),
                  "--budget-s", "0.3", "--out", out / "runs", "--store", store)
        print(f"trend run {i}: exit {p.returncode} in {time.time() - started:.0f} s", file=sys.stderr, flush=True)
        if p.returncode != 0:
            print(p.stderr[-2000:], file=sys.stderr)
        (out / "trend-done").write_text(str(i + 1))
    # the runs' folders imported into a fresh store (the store each run appended to may predate a schema
    # change), then `bench history` with each statistic
    fresh = out / "trend-import.sqlite"
    if fresh.exists():
        fresh.unlink()
    bench(project, "history", "import", out / "runs", "--store", fresh)
    import pandas as pd

    result = {}
    for statistic in ("fastest", "trimmed", "median"):
        for relative in (True, False):
            name = f"{statistic}-{'relative' if relative else 'alone'}"
            folder = out / f"trend-history-{name}"
            p = bench(project, "history", "--store", fresh, "--out", folder, "--statistic", statistic,
                      "--relative" if relative else "--no-relative")
            print(p.stdout, file=sys.stderr)
            changes = pd.read_csv(folder / "changes.csv", keep_default_na=False)
            history = pd.read_csv(folder / "history.csv")
            order = {rid: i for i, rid in
                     enumerate(dict.fromkeys(history.sort_values(["time_utc", "run_id"])["run_id"]))}
            found = {w: [(order[r], order[e], round(float(x), 3)) for r, e, x in
                         zip(g["run_id"], g["earliest_run_id"], g["ratio"])] for w, g in changes.groupby("workload")}
            result[name] = dict(runs=len(order), changes=found,
                                step_ok=[q for q, _, _ in found.get("step", [])] == [20],
                                creep_ok=bool(found.get("creep")) and all(24 <= q <= 31 for q, _, _ in found["creep"]),
                                steady_false=sum(len(v) for w, v in found.items() if w.startswith("steady")),
                                suite_changes=found.get("(whole suite)", []))
    # the history site of the same store (docs/site.md): its regressions page lists the changes found above
    site = out / "trend-site"
    p = bench(project, "history", "site", "--store", fresh, "--out", site)
    listed = json.loads((site / "data" / "changes.js").read_text().split(" = ", 1)[1].rstrip().rstrip(";")) \
        if p.returncode == 0 else []
    result["site"] = dict(exit=p.returncode, regressions=[(c["workload"], c["position"], c["earliest_commit"])
                                                          for c in listed])
    return result


def scale(out: Path, runs: int, rows: int = 100) -> dict:
    import numpy as np
    import pandas as pd

    from bench.api.history import history as read_history
    from bench.store.history import history_rows, open_store, resolve

    db = out / "scale.sqlite"
    if db.exists():
        db.unlink()
    store = open_store(resolve(db))
    rng = np.random.default_rng(0)
    base = pd.DataFrame(dict(workload=[f"w{i:03d}" for i in range(rows)], device="cpu", dtype="float32",
                             variant="default", status="ok", reason="", tags="", iqr_s=1e-6, n_samples=10,
                             n_processes=7, threads=1))
    append_s = []
    for r in range(runs):
        results = base.assign(median_s=1e-4 * np.exp(rng.normal(0, 0.02, rows)))
        env = dict(time_utc=f"2026-{1 + r // 2500:02d}-{1 + r % 2500 // 100:02d}"
                            f"T{r % 100 // 60:02d}:{r % 60:02d}:00+00:00",
                   git_commit=f"{r:012x}", machine_keys={"cpu": "cpu-scale"}, host="h", torch="2.13.0")
        frame = history_rows(results, env, rid=f"{r:016x}")
        started = time.perf_counter()
        store.append(frame)
        append_s.append(time.perf_counter() - started)
    t0 = time.perf_counter()
    one = store.read(workloads=["w042"])
    one_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ten = store.read(workloads=[f"w{i:03d}" for i in range(10)])
    ten_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    h = read_history(store=db, filter="w042", out=out / "scale-history")
    history_s = time.perf_counter() - t0
    return dict(runs=runs, rows=runs * rows, size_mb=round(db.stat().st_size / 1e6, 1),
                append_ms_median=round(1e3 * float(np.median(append_s)), 1),
                append_ms_p95=round(1e3 * float(np.percentile(append_s, 95)), 1),
                query_one_row_s=round(one_s, 3), query_one_row_n=len(one), query_ten_rows_s=round(ten_s, 3),
                query_ten_rows_n=len(ten), history_one_row_with_plot_s=round(history_s, 2),
                history_query_s=round(h.query_s, 3), false_changes_in_one_row=len(h.changes))


def shards(out: Path) -> dict:
    common = ["smoke", "--device", "cpu", "--threads", "1", "--processes", "2", "--store", "none"]
    p = [bench(REPO, "run", *common, "--out", out / "whole")]
    for k in (1, 2):
        p.append(bench(REPO, "run", *common, "--shard", f"{k}/2", "--out", out / f"shard{k}"))
    shard_dirs = [next((out / f"shard{k}").iterdir()) for k in (1, 2)]
    p.append(bench(REPO, "merge", *shard_dirs, "--out", out / "merged"))
    import bench as api

    whole, merged = api.load(out / "whole"), api.load(out / "merged")
    key = ["workload", "device", "dtype", "variant", "status", "flops", "bytes", "output_shape"]
    rows = lambda run: sorted(map(tuple, run.results[key].astype(str).values.tolist()))  # noqa: E731 - workers write rows as they finish
    return dict(exits=[x.returncode for x in p], shard_rows=[len(api.load(d).results) for d in shard_dirs],
                same_rows=rows(whole) == rows(merged), merged_rows=len(merged.results),
                merged_in_suite_order=merged.results["workload"].tolist())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--scale-runs", type=int, default=10000)
    ap.add_argument("--out", default="/tmp/history-eval")
    ap.add_argument("--only", choices=["trend", "scale", "shards"], default=None)
    ap.add_argument("--processes", type=int, default=7,
                    help="worker processes per row of each trend run (run's default)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else {}
    for name, fn in (("shards", lambda: shards(out)), ("scale", lambda: scale(out, args.scale_runs)),
                     ("trend", lambda: trend(out, args.runs, args.processes))):
        if args.only in (None, name):
            report[name] = fn()
            (out / "report.json").write_text(json.dumps(report, indent=1))
            print(f"{name}: {json.dumps(report[name])}", flush=True)
    return 0


if __name__ == "__main__":
    from evidence import run  # tests/perf/evidence.py: --evidence PATH writes docs/evidence/<name>.txt

    sys.exit(run(main))
