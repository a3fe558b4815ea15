"""`run SUITE --shards N --executor slurm|local`: the suite's shards through submitit, merged and recorded
(bench.api.fleet); the options `run` gains for it."""
from __future__ import annotations

import shlex

from bench.api.fleet import EXECUTORS, run_fleet
from bench.api.reporting import make_report
from bench.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, err, number
from bench.errors import BenchError, Problem
from bench.schema import FAILED


def add_fleet_options(p) -> None:
    """--shards, --executor, --slurm-arg, --no-wait, --allow-missing, as `run` takes them."""
    p.add_argument("--shards", type=number(minimum=1, integer=True), default=None, metavar="N",
                   help="run the suite as N shards through submitit (--executor), then merge them into one run "
                   "folder and record it in the store (docs/fleet.md)")
    p.add_argument("--executor", choices=list(EXECUTORS), default="local",
                   help="with --shards: slurm submits one array of N tasks; local runs the shards on this machine "
                   "one after another (default)")
    p.add_argument("--slurm-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="with --executor slurm: an sbatch parameter as submitit names it (partition=gpu, "
                   "gpus_per_node=1, time=120, exclusive=true); repeat for more")
    p.add_argument("--no-wait", action="store_true", help="with --executor slurm: submit, print the job id and the "
                   "merge command, and return")
    p.add_argument("--allow-missing", action="store_true", help="with --shards: merge the shards that finished "
                   "when some failed, into a run marked incomplete")


def prepare_options(args) -> dict:
    """bench.api.running.prepare's keyword arguments from `run`'s options."""
    return dict(device=args.device, budget_s=args.budget_s, warmup_s=args.warmup_s, timeout_s=args.timeout_s,
                min_samples=args.min_samples, target_rel_iqr=args.target_rel_iqr, threads=args.threads,
                variants=args.variants, filter=args.filter, argv=tuple(args.argv), processes=args.processes,
                metric=args.metric, cache=args.cache, profile=args.profile, retries=args.retries,
                min_processes=args.min_processes, precision=args.precision)


def cmd_fleet(args) -> int:
    if args.shard is not None:
        raise BenchError(Problem(where="run", field="--shards", expected="either --shard K/N (one shard here) or "
                                 "--shards N (all of them through an executor)", found="both"))
    done = run_fleet(args.configs, shards=args.shards, executor=args.executor, out=args.out,
                     options=prepare_options(args), slurm_args=args.slurm_arg, wait=not args.no_wait,
                     allow_missing=args.allow_missing, store=args.store, root=args.root, label=args.label,
                     seed=args.seed, on_progress=err)
    if done.merged is None:
        print(f"submitted SLURM array job {done.job_id} ({len(done.shards)} tasks) into {done.folder}")
        print(f"once it is done: {done.merge_command} && layerbench history import {shlex.quote(str(args.out))}")
        return EXIT_OK
    for state in done.shards:
        print(state)
    run = done.merged
    lacking = f" (shards {', '.join(map(str, done.missing))} missing: marked incomplete)" if done.missing else ""
    print(f"Merged {len(run.env.get('merged_from', []))} of {len(done.shards)} shards, {len(run.results)} rows"
          f"{lacking}: wrote {run.source}")
    if done.store_error:
        err(f"{done.store_error}; the run is saved in {run.source}: `bench history import {run.source}` adds it later")
        return EXIT_USAGE
    if done.store:
        err(f"history: {done.rows_added} rows added to {done.store}")
    if args.report:
        make_report([run], out=run.source, root=args.root, probe_peaks=args.probe_peaks)
        print(f"Wrote {run.source}/report.html, report.md")
    failed = run.results[run.results["status"].isin(FAILED)]
    if len(failed) or done.missing:
        return EXIT_FAILED
    return EXIT_OK
