"""Evidence for the regression gate, measured the way CI uses it: the documented CLI, separate processes, from
a clone. Side by side with pytest-benchmark's `--benchmark-compare-fail=median:10%` on the very same runs.

Experiments (each a real `bench` command in a subprocess, from a clone of this repository's HEAD):
- aa:     the gate as CI runs it (`.ci/bench-gate`, as the workflow and `make ci-bench` call it: `bench ab smoke
          --base-ref BASE --device cpu --threads 1`, with instruction counts where valgrind is present) on unchanged
          code (A/A);
- loaded: the same while another process burns one of the cores for the whole job;
- inject: tests/perf/inject.py with every workload (--inject-each: one workload, rotating) doing 5%, 10%, 25% or
          100% more work, committed on top of BASE, gated the same way with CI_CONFIG=tests/perf/inject.py: each
          job is one trial for each row it slowed;
- stored: `bench run smoke --processes 7` once as a stored baseline (or --stored-baseline, a run folder kept from
          an earlier session), then runs compared with it (`bench compare --stored-baseline`);
Every job's folder is kept under --out; results.json holds one row per (job, row) and is rewritten after each job,
so a long evaluation stopped early still reports what it measured. The report is printed at the end (and with
--report-only from an earlier results.json).

    .venv/bin/python tests/perf/gate_eval.py --aa 20 --loaded 6 --inject 6 --stored 10 --out /tmp/gate-eval
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

LEVELS = {"+5%": 20, "+10%": 10, "+25%": 4, "+100%": 1}
FIRST_LOOK = 10  # bench ab's first look; rows with more pairs were still open there
WORKLOADS = ["smoke-linear", "smoke-mlp", "smoke-conv", "smoke-flatten"]


def sh(args: list[str], cwd: Path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, **kw)


def clone(out: Path) -> tuple[Path, str, dict[tuple[str, str], str]]:
    """A clone of HEAD with, on top of it, one commit per (level, workload) injecting that slowdown, and one per
    level injecting it into every workload (workload "")."""
    work = out / "clone"
    if not work.exists():
        sh(["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(work)], out).check_returncode()
    base = sh(["git", "rev-parse", "HEAD"], work).stdout.strip()
    commits = {}
    for level, every in LEVELS.items():
        for name in [*WORKLOADS, ""]:
            sh(["git", "checkout", "--quiet", "--detach", base], work).check_returncode()
            path = work / "tests" / "perf" / "inject.py"
            slowed = {n: every for n in ([name] if name else WORKLOADS)}
            text = path.read_text().replace("EVERY: dict[str, int] = {}", f"EVERY: dict[str, int] = {slowed!r}")
            path.write_text(text)
            sh(["git", "-c", "user.name=eval", "-c", "user.email=eval@localhost", "commit", "--quiet", "-am",
                f"inject {level} into {name}"], work).check_returncode()
            commits[(level, name)] = sh(["git", "rev-parse", "HEAD"], work).stdout.strip()
    sh(["git", "checkout", "--quiet", "--detach", base], work).check_returncode()
    return work, base, commits


def bench(work: Path, *args: str, burn: bool = False) -> tuple[int, float, str]:
    """Run `python -m bench ARGS` in the clone (its own bench package first on sys.path); exit status, seconds,
    the last lines of its output. burn: a process spinning on one core for the whole command."""
    # spins while its parent lives: a killed evaluation leaves no burner behind
    burner = (subprocess.Popen([sys.executable, "-c", f"import os\nwhile os.getppid() == {os.getpid()}: pass"])
              if burn else None)
    started = time.time()
    try:
        p = sh([sys.executable, "-m", "bench", *args], work, timeout=1800)
    finally:
        if burner:
            burner.kill()
    return p.returncode, time.time() - started, (p.stdout + p.stderr)[-3000:]


def gate(work: Path, base: str, config: str, out: Path, *, burn: bool = False) -> tuple[int, float, str]:
    """One CI job: `.ci/bench-gate` in the clone against BASE (the script `make ci-bench` and the workflow run),
    with this interpreter's environment; exit status, seconds, the last lines of its output."""
    env = dict(os.environ, PY=sys.executable, CI_BASE_REF=base, CI_CONFIG=config, CI_BENCH_OUT=str(out),
               CI_DEVICE="cpu")
    burner = (subprocess.Popen([sys.executable, "-c", f"import os\nwhile os.getppid() == {os.getpid()}: pass"])
              if burn else None)
    started = time.time()
    try:
        p = sh(["bash", ".ci/bench-gate"], work, timeout=3600, env=env)
    finally:
        if burner:
            burner.kill()
    return p.returncode, time.time() - started, (p.stdout + p.stderr)[-3000:]


def judge(base_dir: Path, cand_dir: Path, *, stored: bool) -> list[dict]:
    """Our verdict per row (bench.comparison, as the CLI judged it) and pytest-benchmark's median:10% on the
    same two runs (its own PercentageRegressionCheck on the runs exported by bench.store.export)."""
    from pytest_benchmark.utils import parse_compare_fail

    import bench
    from bench.store.export import to_pytest_benchmark

    base, cand = bench.load(base_dir), bench.load(cand_dir)
    cmp = bench.comparison(base, cand, stored_baseline=stored)
    check = parse_compare_fail("median:10%")
    b = {x["params"]["workload"]: x["stats"] for x in to_pytest_benchmark(base)["benchmarks"]}
    c = {x["params"]["workload"]: x["stats"] for x in to_pytest_benchmark(cand)["benchmarks"]}
    return [dict(workload=v.workload, ours=v.verdict, ratio=v.ratio, low=v.ratio_low, high=v.ratio_high,
                 detectable=v.detectable_ratio, median_ratio=v.candidate_median_s / v.baseline_median_s,
                 pytest_benchmark=bool(check.fails(c[v.workload], b[v.workload])), paired=cmp.paired,
                 pairs=min(v.n_baseline, v.n_candidate), cause=v.cause, count_ratio=v.count_ratio,
                 machine_differs=cmp.machine_differs) for v in cmp.verdicts]


def latest(folder: Path) -> Path:
    return max((p for p in folder.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--aa", type=int, default=20)
    ap.add_argument("--loaded", type=int, default=6)
    ap.add_argument("--inject", type=int, default=6, help="jobs per level (+10%%, +25%%, +100%%)")
    ap.add_argument("--levels", default=",".join(LEVELS), help="the injection levels to run, comma-separated")
    ap.add_argument("--stored", type=int, default=10)
    ap.add_argument("--stored-baseline", default="", help="a run folder measured earlier, used as the stored baseline")
    ap.add_argument("--inject-each", action="store_true",
                    help="slow one workload per job, rotating (default: every workload at once)")
    ap.add_argument("--out", default="/tmp/gate-eval")
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--burn-inject", action="store_true", help="injection jobs too with a core burned")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.json"
    rows: list[dict] = json.loads(results.read_text()) if results.exists() else []
    if args.report_only:
        print(report(rows))
        return 0
    work, base, commits = clone(out)
    plan = ([("aa", i) for i in range(args.aa)] + [("loaded", i) for i in range(args.loaded)]
            + [(level, i) for i in range(args.inject) for level in LEVELS if level in args.levels.split(",")])
    # interleave the kinds so that a change in the machine over the evaluation touches them alike
    plan.sort(key=lambda item: (item[1], list(LEVELS).index(item[0]) + 2 if item[0] in LEVELS else
                                ["aa", "loaded"].index(item[0])))
    done = {r["job"] for r in rows}
    for kind, i in plan:
        job = f"{kind}-{i}".replace("%", "pct").replace("+", "")
        if job in done:  # measured by an earlier, interrupted evaluation into the same --out
            continue
        target = (WORKLOADS[i % len(WORKLOADS)] if args.inject_each else "") if kind in LEVELS else None
        sh(["git", "checkout", "--quiet", "--detach", commits[(kind, target)] if target is not None else base], work)
        config = "tests/perf/inject.py" if target is not None else "smoke"
        load0 = os.getloadavg()[0]
        burn = kind == "loaded" or (args.burn_inject and kind in LEVELS)
        status, seconds, tail = gate(work, base, config, out / "jobs" / job, burn=burn)
        sh(["git", "checkout", "--quiet", "--detach", base], work)
        if status not in (0, 1):
            print(f"{job}: exit {status}\n{tail}", file=sys.stderr)
            if not (out / "jobs" / job).is_dir():
                continue
        folder = latest(out / "jobs" / job)
        for row in judge(folder / "baseline", folder / "candidate", stored=False):
            slowed = target is not None and (target == "" or row["workload"] == target)
            rows.append(dict(row, job=job, kind=kind, case=kind if slowed else "A/A",
                             exit=status, seconds=seconds, load=load0))
        results.write_text(json.dumps(rows, indent=1))
        print(f"{job}: exit {status} in {seconds:.0f} s (load {load0:.1f}): " + ", ".join(
            f"{r['workload'].removeprefix('smoke-')}={r['ours']}{'*' if r['pytest_benchmark'] else ''}"
            for r in rows if r["job"] == job), file=sys.stderr, flush=True)
    if args.stored:
        stored = out / "stored"
        run = ["run", "smoke", "--device", "cpu", "--threads", "1", "--processes", "7"]
        if args.stored_baseline:  # kept from an earlier session: its age is part of the evidence
            base_dir, kind = Path(args.stored_baseline).resolve(), "stored-earlier"
        else:
            bench(work, *run, "--out", str(stored / "baseline"))
            base_dir, kind = latest(stored / "baseline"), "stored"
        age_h = (time.time() - (base_dir / "results.csv").stat().st_mtime) / 3600
        for i in range(args.stored):
            job = f"{kind}-{i}"
            if job in done:
                continue
            status, seconds, tail = bench(work, *run, "--out", str(stored / f"cand-{kind}-{i}"))
            cand_dir = latest(stored / f"cand-{kind}-{i}")
            cstatus, _, _ = bench(work, "compare", str(base_dir), str(cand_dir), "--stored-baseline")
            for row in judge(base_dir, cand_dir, stored=True):
                rows.append(dict(row, job=job, kind=kind, case="A/A", exit=cstatus, seconds=seconds,
                                 load=os.getloadavg()[0], baseline_age_h=age_h))
            results.write_text(json.dumps(rows, indent=1))
            print(f"{job}: compare exit {cstatus} (baseline {age_h:.1f} h old)", file=sys.stderr, flush=True)
    print(report(rows))
    return 0


def report(rows: list[dict]) -> str:
    import pandas as pd

    if not rows:
        return "no results"
    f = pd.DataFrame(rows)
    table = []
    for kind, fk in f.groupby("kind", sort=False):
        for case, fc in fk.groupby("case", sort=False):
            jobs = fc["job"].nunique()
            table.append({"jobs": kind, "rows judged": case, "jobs n": jobs, "rows n": len(fc),
                          "ours slower": int((fc["ours"] == "slower").sum()),
                          "ours same": int((fc["ours"] == "same").sum()),
                          "ours unsure": int((fc["ours"] == "unsure").sum()),
                          "rows counted": (int(fc["count_ratio"].notna().sum()) if "count_ratio" in fc else "-"),
                          # an injection job fails because of its injected row: only A/A jobs count here
                          "A/A jobs failed (exit 1)": (int(fc.groupby("job")["exit"].first().eq(1).sum())
                                                       if kind in ("aa", "loaded", "stored", "stored-earlier")
                                                       else "-"),
                          "jobs exit 2 (not a verdict)": int(fc.groupby("job")["exit"].first().eq(2).sum()),
                          "pytest-benchmark fails": int(fc["pytest_benchmark"].sum()),
                          # rows still open at the first look, given more pairs
                          "rows past the first look": (int((fc["pairs"] > FIRST_LOOK).sum()) if "pairs" in fc
                                                       else "-"),
                          "median detectable":
                              f"{fc['detectable'].replace(float('inf'), float('nan')).median() - 1:+.1%}",
                          "measured change (median)": f"{fc['median_ratio'].median() - 1:+.1%}",
                          "minutes per job": round(fc.groupby("job")["seconds"].first().mean() / 60, 1)})
    lines = [pd.DataFrame(table).to_string(index=False), "", "per row (rows the job slowed, and A/A rows):"]
    per_row = []
    for (kind, case, workload), fr in f.groupby(["kind", "case", "workload"], sort=False):
        per_row.append({"jobs": kind, "case": case, "row": workload, "n": len(fr),
                        "slower": int((fr["ours"] == "slower").sum()), "same": int((fr["ours"] == "same").sum()),
                        "unsure": int((fr["ours"] == "unsure").sum()),
                        "median detectable":
                            f"{fr['detectable'].replace(float('inf'), float('nan')).median() - 1:+.1%}",
                        "median pairs": fr["pairs"].median() if "pairs" in fr else "-",
                        "counted": int(fr["count_ratio"].notna().sum()) if "count_ratio" in fr else "-"})
    lines.append(pd.DataFrame(per_row).to_string(index=False))
    differs = f[f["kind"].str.startswith("stored")].groupby("job")["machine_differs"].first()
    if len(differs):
        lines.append(f"stored baseline: 'machine differs' in {int((differs != '').sum())} of {len(differs)} jobs")
    return "\n".join(lines)


if __name__ == "__main__":
    from evidence import run  # tests/perf/evidence.py: --evidence PATH writes docs/evidence/<name>.txt

    sys.exit(run(main))
