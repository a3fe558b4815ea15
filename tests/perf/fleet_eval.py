"""Evidence for issue 22: concurrent writers on one PostgreSQL server, and a suite's shards merged (the local
executor, and a one-node SLURM cluster on localhost where one can be started). Never part of `make test`.

    python tests/perf/fleet_eval.py --evidence docs/evidence/fleet.txt
    python tests/perf/fleet_eval.py --only writers            # one part, printed only

Writers: N processes (fork) each open the store, wait for a common start, then append RUNS runs of ROWS rows each
plus SHARED runs that every writer appends (stored once); the wall time is from the start to the last process's
end; lost = runs expected but absent, duplicated = runs or rows stored more than once.
Shards: `layerbench run smoke --shards 4 --executor local|slurm` against `layerbench run smoke`, both with
--budget-s 0.05 --processes 1: the merged run must hold the same rows (identity and status), not the same times.
SLURM: Debian's slurmctld, slurmd and munge (apt-get install slurmctld slurmd munge slurm-client), configured for
this host alone under the work folder; what failed is printed when it cannot be started.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "perf"))

import evidence  # noqa: E402 - after the path is set
import pandas as pd  # noqa: E402 - after the path is set

from bench.schema import KEY_COLUMNS  # noqa: E402 - after the path is set

PYTHON = sys.executable
ENV = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
RUN = ["--device", "cpu", "--budget-s", "0.05", "--processes", "1", "--store", "none"]


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- concurrent writers
def _writer(url: str, worker: int, runs: int, rows: int, shared: int, ready, go) -> None:
    from test_postgres import synthetic_run

    from bench.store.history import open_store

    store = open_store(url)
    frames = [synthetic_run(f"w{worker:03d}-{i:03d}", rows) for i in range(runs)]
    frames += [synthetic_run(f"shared-{i:03d}", rows) for i in range(shared)]
    ready.release()
    go.wait()
    for frame in frames:
        store.append(frame)


def writers(server, count: int, runs: int, rows: int, shared: int) -> str:
    url = server.new_database(f"writers_{count}")
    context = multiprocessing.get_context("fork")
    ready, go = context.Semaphore(0), context.Event()
    procs = [context.Process(target=_writer, args=(url, w, runs, rows, shared, ready, go)) for w in range(count)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.acquire()
    started = time.perf_counter()
    go.set()
    for p in procs:
        p.join()
    wall_s = time.perf_counter() - started
    db = url.rsplit("/", 1)[1]
    expected = count * runs + shared
    stored = server.sql("SELECT count(*), count(DISTINCT run_id) FROM bench_runs", db=db)[0]
    per_run = server.sql("SELECT run_id, count(*) FROM bench_rows GROUP BY run_id", db=db)
    ids = {r for r, _ in per_run}
    wanted = ({f"w{w:03d}-{i:03d}" for w in range(count) for i in range(runs)}
              | {f"shared-{i:03d}" for i in range(shared)})
    lost = len(wanted - ids)
    duplicated = (stored[0] - stored[1]) + sum(1 for _, n in per_run if n != rows)
    appends = count * (runs + shared)
    failed = sum(p.exitcode != 0 for p in procs)
    return (f"{count:3d} writers: {appends} appends ({expected} distinct runs x {rows} rows, {shared} runs appended "
            f"by every writer) in {wall_s:.2f} s wall = {expected / wall_s:.1f} runs stored/s, "
            f"{appends / wall_s:.1f} appends/s; stored {stored[1]} runs; lost {lost}, duplicated {duplicated}, "
            f"writer processes failed {failed}")


def writers_part(args) -> list[str]:
    import pg_server

    why = pg_server.why_not()
    if why:
        return [f"writers: skipped: {why}"]
    server = pg_server.start_server()
    try:
        version = server.sql("SHOW server_version")[0][0]
        lines = [f"PostgreSQL {version} (Debian's, throwaway cluster on 127.0.0.1, fsync off), one server"]
        for count in (8, 32):
            lines.append(writers(server, count, args.runs, args.rows, args.shared))
            say(lines[-1])
        return lines
    finally:
        server.remove()


# ---------------------------------------------------------------- shards
def bench_cli(*argv: str, timeout: int = 900) -> subprocess.CompletedProcess:
    done = subprocess.run([PYTHON, "-m", "bench", *argv], cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=timeout)
    say(f"$ layerbench {' '.join(argv)}  -> exit {done.returncode}\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return done


def rows_of(out: Path) -> pd.DataFrame:
    (run,) = [p for p in out.iterdir() if (p / "env.json").is_file()]
    frame = pd.read_csv(run / "results.csv")
    return frame[[*KEY_COLUMNS, "status"]].sort_values(list(KEY_COLUMNS)).reset_index(drop=True)


def compare_shards(work: Path, executor: str, *extra: str) -> str:
    single, sharded = work / f"single-{executor}", work / f"sharded-{executor}"
    for folder in (single, sharded):
        shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    done = bench_cli("run", "smoke", *RUN, "--shards", "4", "--executor", executor, *extra, "--out", str(sharded))
    sharded_s = time.perf_counter() - started
    if done.returncode != 0:
        return f"{executor}: 4 shards: exit {done.returncode}: {(done.stderr.strip().splitlines() or [''])[-1]}"
    assert bench_cli("run", "smoke", *RUN, "--out", str(single)).returncode == 0
    a, b = rows_of(single), rows_of(sharded)
    same = a.equals(b)
    how = "one after another" if executor == "local" else f"an array of 4 tasks on {os.cpu_count()} CPUs"
    return (f"{executor}: smoke in 4 shards ({sharded_s:.0f} s wall, {how}) merged into {len(b)} rows; unsharded "
            f"{len(a)} rows; same rows (identity and status): {same}; duplicated rows in the merged run: "
            f"{int(b.duplicated(list(KEY_COLUMNS)).sum())}")


# ---------------------------------------------------------------- a one-node SLURM on localhost
SLURM_CONF = """ClusterName=benchtest
SlurmctldHost={host}(127.0.0.1)
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SlurmctldPidFile={work}/slurmctld.pid
SlurmdPidFile={work}/slurmd.pid
SlurmdSpoolDir={work}/slurmd
StateSaveLocation={work}/state
SlurmctldLogFile={work}/slurmctld.log
SlurmdLogFile={work}/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName=bench Nodes={host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
"""


def start_slurm(work: Path) -> str:
    """Start munged, slurmctld and slurmd for this host alone; "" when sinfo sees the node idle, else why not."""
    for tool in ("slurmctld", "slurmd", "munged", "sbatch", "sacct"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            return f"no {tool} (apt-get install slurmctld slurmd munge slurm-client)"
    if os.geteuid() != 0:
        return "slurmd runs as root here: run the script as root"
    work.mkdir(parents=True, exist_ok=True)
    for sub in ("slurmd", "state"):
        (work / sub).mkdir(exist_ok=True)
    host = socket.gethostname().split(".")[0]
    conf = Path("/etc/slurm/slurm.conf")
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(SLURM_CONF.format(host=host, work=work, cpus=os.cpu_count()))
    key = Path("/etc/munge/munge.key")
    if not key.exists():
        subprocess.run(["/usr/sbin/mungekey", "--create"], capture_output=True)
        shutil.chown(key, "munge", "munge") if key.exists() else None
    Path("/run/munge").mkdir(exist_ok=True)
    shutil.chown("/run/munge", "munge", "munge")
    steps = [["runuser", "-u", "munge", "--", "/usr/sbin/munged", "--force"],
             ["/usr/sbin/slurmctld", "-c"], ["/usr/sbin/slurmd", "-c"]]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            return f"{' '.join(step)}: exit {done.returncode}: {(done.stderr or done.stdout).strip()[:300]}"
    for _ in range(60):
        state = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
        if state.stdout.strip() in ("idle", "mixed"):
            return ""
        time.sleep(1)
    logs = "".join(Path(work / n).read_text()[-400:] for n in ("slurmctld.log", "slurmd.log")
                   if (work / n).exists())
    return f"the node never became idle (sinfo: {state.stdout.strip() or state.stderr.strip()}); logs: {logs}"


def stop_slurm(work: Path) -> None:
    """End the daemons start_slurm started, each by the pid it wrote."""
    for pid in (work / "slurmd.pid", work / "slurmctld.pid", Path("/run/munge/munged.pid")):
        if pid.exists():
            subprocess.run(["kill", pid.read_text().strip()], capture_output=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["writers", "local", "slurm"], default=None)
    parser.add_argument("--runs", type=int, default=10, help="runs each writer appends")
    parser.add_argument("--rows", type=int, default=100, help="rows per run")
    parser.add_argument("--shared", type=int, default=5, help="runs every writer appends (stored once)")
    parser.add_argument("--work", default=str(ROOT / "results" / "fleet-eval"))
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    if args.only in (None, "writers"):
        lines += writers_part(args)
    if args.only in (None, "local"):
        lines.append(compare_shards(work, "local"))
    if args.only in (None, "slurm"):
        why = start_slurm(work / "slurm")
        if why:
            lines.append(f"slurm: not run: {why}")
        else:
            try:
                lines.append(compare_shards(work, "slurm", "--slurm-arg", "time=30"))
            finally:
                stop_slurm(work / "slurm")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(evidence.run(main))
