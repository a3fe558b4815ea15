"""`list`, `run` and `plot`: check a suite, time it with progress and a summary table, redraw a run's plots.

Ctrl-C or SIGTERM during a run: the rows finished so far are already on disk, the run is marked incomplete,
exit 130; a second Ctrl-C exits at once.
"""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pandas as pd

from bench.api.history import add_to_history
from bench.api.reporting import default_report_dir, make_report
from bench.api.running import DEFAULT_PROCESSES, PROCESSES_ENV, execute, prepare
from bench.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    RESULTS,
    add_model_options,
    add_retries,
    add_root,
    command,
    err,
    json_fields,
    number,
    read_run,
    suite_of,
)
from bench.errors import BenchError, Problem
from bench.measure.record import Progress, Record
from bench.measure.sampling import Policy
from bench.measure.workers.enough import DEFAULT_MIN_PROCESSES, DEFAULT_PRECISION
from bench.report.plots import save_plots
from bench.schema import FAILED, OK
from bench.stats import summarize
from bench.store.files import writable_folder
from bench.store.history import STORE_ENV, open_for
from bench.store.writer import check_label
from bench.suite.config import matches
from bench.suite.plan import plan_suite
from bench.suite.shard import EXECUTORS
from bench.units import fmt_s, fmt_si

# A config that takes longer than this to import and plan is announced while it loads; one that loads faster says
# nothing, so that a mistake in it stays the one line printed.
LOADING_NOTE_AFTER_S = 1.0

FILTER_HELP = "only workloads whose name contains one of these comma-separated parts, or with one as a tag " \
              "(case-insensitive); empty: all"


def register(sub) -> None:
    p = command(sub, "list", help="check workloads on the meta device: shapes, FLOPs, bytes, problems")
    p.add_argument("configs", nargs="*", help="config names in configs/ (seed) or paths to .py files")
    add_model_options(p)
    p.add_argument("--filter", default="", help=FILTER_HELP)
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table (stdout holds JSON only)")
    p.set_defaults(func=cmd_list)

    p = command(sub, "run", help="time the workloads and write a run folder <out>/<UTC time>[-label]/")
    p.add_argument("configs", nargs="*", help="config names in configs/ (seed) or paths to .py files")
    add_model_options(p)
    p.add_argument("--device", choices=["cpu", "cuda", "all"], default="all", help="where to time")
    p.add_argument("--out", default=RESULTS, help="the folder this command writes into: a new run folder is made there")
    p.add_argument("--label", default="", help="a name for the run, appended to its folder's name")
    p.add_argument("--filter", default="", help=FILTER_HELP)
    p.add_argument("--budget-s", type=number(), default=Policy.budget_s, help="sampling seconds per row")
    p.add_argument("--warmup-s", type=number(), default=Policy.warmup_s,
                   help="warm-up seconds per row (CUDA: 0.5 at least)")
    p.add_argument("--timeout-s", type=number(strict=True), default=Policy.timeout_s,
                   help="skip a row whose first call predicts more than this; stop one that runs past it")
    p.add_argument("--min-samples", type=number(minimum=1, integer=True), default=Policy.min_samples,
                   help="samples per row before the noise target may stop it")
    p.add_argument("--target-rel-iqr", type=number(), default=Policy.target_rel_iqr,
                   help="stop sampling a row once its IQR / median is below this")
    p.add_argument("--threads", type=number(minimum=1, integer=True), default=None,
                   help="CPU threads (default: torch's)")
    p.add_argument("--variants", default="", help="comma-separated sweeps (dtypes, standard, compile) and variant "
                   "names such as bfloat16+channels_last+cudnn_benchmark, float32+no-tf32, backward, cuda_graph, "
                   "threads=1; the default variant always runs")
    add_processes(p)
    add_stopping(p)
    add_retries(p)
    add_metric(p)
    p.add_argument("--profile", action="store_true",
                   help="after each row's timing, profile a few calls with torch.profiler: the kernels (CUDA) or "
                   "operators (CPU) of one call in kernels.csv and results.csv's top_kernels, whether tensor cores "
                   "and TF32 ran, and a trace per row under profiles/ that Perfetto (ui.perfetto.dev) opens")
    p.add_argument("--cache", choices=["warm", "cold"], default="warm",
                   help="warm: back-to-back calls on one input (torch.utils.benchmark's way); cold: each call on the "
                   "next of copies of the input spanning twice the last-level cache (CPU L3, GPU L2)")
    p.add_argument("--shard", default=None, metavar="K/N",
                   help="run only the K-th of N disjoint slices of the suite, balanced by planned cost (a job array "
                   "or CI matrix runs one suite on N machines; `bench merge` joins the slices)")
    p.add_argument("--store", default=None, metavar="PATH|URL",
                   help=f"the history store the run's rows are added to: a file or an SQLAlchemy URL; none: not "
                   f"kept (default: ${STORE_ENV}, else <root>/history.sqlite)")
    p.add_argument("--report", action="store_true", help="also write report.html and report.md into the run folder")
    p.add_argument("--probe-peaks", action="store_true",
                   help="with --report: measure this machine's peaks when none are cached (announced)")
    add_fleet_options(p)
    add_root(p)
    p.set_defaults(func=cmd_run)

    p = command(sub, "plot", help="redraw a run's plots (latency.png, speedup.png) into its folder")
    p.add_argument("run", help="a run folder, the folder given to `run --out`, or a run's results.csv")
    p.set_defaults(func=cmd_plot)


def add_processes(p) -> None:
    """--processes and --seed, as `run` takes them."""
    p.add_argument("--processes", type=number(minimum=0, integer=True), default=None,
                   help="worker processes per row, in random interleaved order; the row's budget is split over them; "
                   f"0: in this process (no isolation) (default: ${PROCESSES_ENV} or {DEFAULT_PROCESSES})")
    p.add_argument("--seed", type=number(integer=True), default=None,
                   help="the random order of rows and processes (default: a new one, recorded in env.json)")


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


def add_stopping(p) -> None:
    """--min-processes and --precision: how many processes `run` gives a row at least, and when it stops adding
    them (bench.measure.workers.enough)."""
    p.add_argument("--min-processes", type=number(minimum=1, integer=True), default=DEFAULT_MIN_PROCESSES,
                   help="worker processes every row gets; from there on a row gets more (up to --processes) only "
                   f"while its between-process interval is wider than --precision (default: {DEFAULT_MIN_PROCESSES}; "
                   "runs a gate compares against need the gate's minimum, 7)")
    p.add_argument("--precision", type=number(), default=DEFAULT_PRECISION,
                   help="stop adding processes to a row once the 95%% interval of its median of process medians is "
                   "within this fraction of it on either side (default: %(default)s, i.e. 2%%; 0: every row gets "
                   "--processes)")


def add_metric(p) -> None:
    p.add_argument("--metric", choices=["time", "instructions"], default="time",
                   help="instructions: also count each CPU row's instructions per call with callgrind (valgrind "
                   "needed; each row is counted in two worker processes under it, at one thread, the lowest kept), "
                   "a metric that does not move with the machine's noise")


# ---------------------------------------------------------------- list
def cmd_list(args) -> int:
    suite = suite_of(args)
    plans, problems = plan_suite(suite.declared)
    plans = [p for p in plans if matches(p.workload, args.filter)]
    if args.filter and not plans and not problems:  # as `run` says
        raise BenchError(Problem(where=", ".join(c.where for c in suite.configs), field="--filter",
                                 expected="a name part or tag of some workload", found=repr(args.filter)))
    if args.json:
        print(json.dumps([{
            "name": p.name, "source": p.source, "input_shape": list(p.workload.input_shape),
            "output_shape": list(p.output_shape), "dtype": p.workload.dtype, "flops": p.flops, "params": p.params,
            "bytes": p.bytes_moved, "peak_bytes": p.peak_bytes, "is_view": p.is_view,
            "shape_notes": list(p.shape_notes), "tags": list(p.workload.tags),
            **json_fields(p.workload),
        } for p in plans], indent=2))
    else:
        table = pd.DataFrame([{
            "workload": p.name, "input": p.workload.inputs_text, "output": str(list(p.output_shape)),
            "dtype": p.workload.dtype, "params": fmt_si(p.params), "FLOPs": fmt_si(p.flops),
            "bytes": fmt_si(p.bytes_moved, "B"), "peak": fmt_si(p.peak_bytes, "B"), "note": p.workload.note,
        } for p in plans])
        if len(table):
            print(table.to_string(index=False))
        notes = [f"  {p.name}: {n}" for p in plans for n in p.shape_notes]
        if notes:
            print("\nConv output sizes, floor((in + 2*padding - dilation*(kernel - 1) - 1) / stride) + 1:")
            print("\n".join(notes))
        print(f"\n{len(plans)} workloads checked. FLOPs: a multiply-add counts 2 (FlopCounterMode); "
              "bytes: input, weights and output once each; peak: memory a forward holds at once.")
    for p in problems:
        err(str(p))
    if problems:
        err(f"{len(problems)} problem(s): fix them before `bench run`.")
        return EXIT_USAGE
    return EXIT_OK


# ---------------------------------------------------------------- run
def summary(frame: pd.DataFrame) -> str:
    """The console table of a run: one line per row, with its flags."""
    rows = []
    for _, r in frame.iterrows():
        ok = r["status"] == OK
        flags = [] if ok else [f"{r['status']}: {r['reason']}"]
        if ok and r["noisy"]:
            flags.append("noisy")
        if ok and r["n_samples"] < 5:
            flags.append(f"few samples ({r['stop_reason']})")
        if ok and r["launch_bound"]:
            flags.append("launch-bound")
        if ok and r.get("machine_decided") is True:
            flags.append("MACHINE-DECIDED (process medians disagree; not a measurement of the layer)")
        rows.append({
            "workload": r["workload"], "variant": r["variant"], "device": r["device"], "dtype": r["dtype"],
            "median": fmt_s(r["median_s"]), "95% CI": _interval(r),
            "IQR": "-" if pd.isna(r["rel_iqr"]) else f"{100 * r['rel_iqr']:.1f}%",
            "host/call": fmt_s(r["host_median_s"]), "FLOP/s": fmt_si(r["flops_per_s"]),
            "n": "-" if pd.isna(r["n_samples"]) else int(r["n_samples"]),
            "procs": "-" if pd.isna(r.get("n_processes")) else int(r["n_processes"]),
            "between": "-" if pd.isna(r.get("rel_iqr_between")) else f"{100 * r['rel_iqr_between']:.1f}%",
            "flags": "; ".join(flags)[:90],
        })
    return pd.DataFrame(rows).to_string(index=False) if rows else "(no rows)"


def _interval(r) -> str:
    """The interval of a row's median of process medians, as +-% of it (the larger side); "-" without one."""
    low, high, median = r.get("median_low_s"), r.get("median_high_s"), r["median_s"]
    if any(v is None or pd.isna(v) for v in (low, high, median)) or not median > 0:
        return "-"
    return f"+-{100 * max(median - low, high - median) / median:.1f}%"


def estimate(prepared, *, load_s: float) -> str:
    """How long a run takes at least, from what is known before it starts: the warm-up and sampling budgets of its
    rows. The worker starts are not known until the first has started: each imports torch and the configs, which
    took load_s (with planning) in this process."""
    if prepared.least_s > 0:
        text = (f"at least {fmt_s(prepared.least_s, 2)} of warm-up and sampling (the budget per row; longer for "
                "workloads whose single call exceeds it)")
    else:
        text = "no warm-up or sampling budget (each row takes its minimum samples)"
    if prepared.processes:
        least = min(prepared.min_processes, prepared.processes)
        text += (f", plus at least {least} worker starts, not known until the first has started (each "
                 f"imports torch and the configs: loading and planning them took {load_s:.1f} s here)")
    return text


def _prepare(args):
    """bench.api.prepare for `run`'s options, announced when it takes a while (a config slow to import); with the
    seconds it took."""
    loading = time.perf_counter()
    note = threading.Timer(LOADING_NOTE_AFTER_S, err, args=(
        f"loading {', '.join(args.configs or [args.model])} (importing the config"
        f"{'s' if len(args.configs) > 1 else ''} and planning every workload on the meta device) ...",))
    note.daemon = True
    note.start()
    try:
        prepared = prepare(suite_of(args), device=args.device, budget_s=args.budget_s, warmup_s=args.warmup_s,
                           timeout_s=args.timeout_s, min_samples=args.min_samples, target_rel_iqr=args.target_rel_iqr,
                           threads=args.threads, variants=args.variants, filter=args.filter, argv=args.argv,
                           processes=args.processes, metric=args.metric, shard=args.shard, cache=args.cache,
                           profile=args.profile, retries=args.retries, min_processes=args.min_processes,
                           precision=args.precision)
    finally:
        note.cancel()
    return prepared, time.perf_counter() - loading


def cmd_run(args) -> int:
    """`run`: time the suite into one run folder (with --shards N, bench.cli.main.cmd_fleet runs instead)."""
    check_label(args.label)  # before any note: a bad label is the one line printed
    if args.report and args.probe_peaks:
        writable_folder(Path(args.root), option="--root")  # the peaks cache: checked before the run, not after
    prepared, load_s = _prepare(args)
    store = open_for(args.store, root=args.root)  # a store that cannot be opened fails before anything is timed
    if args.device == "all" and "cuda" not in prepared.devices:
        err("note: no CUDA device here; timing on the CPU only.")

    def start(run_dir) -> None:
        if prepared.threads_note:  # said once the run folder exists: a bad --out is one line
            err(f"note: {prepared.threads_note}")
        times = f" x {len(prepared.variants)} variants" if len(prepared.variants) > 1 else ""
        least = min(prepared.min_processes, prepared.processes)
        procs = (f", each in {prepared.processes} worker processes" if least == prepared.processes
                 else f", each in {least} to {prepared.processes} worker processes (more while its "
                 f"between-process interval is wider than +-{prepared.precision:.1%})" if prepared.processes
                 else ", in this process (--processes 0)")
        err(f"{len(prepared.plans)} workloads x {len(prepared.devices)} device(s){times} = "
            f"{prepared.rows} rows{procs}; "
            f"{estimate(prepared, load_s=load_s)}; writing {run_dir}")

    def progress(p: Progress) -> None:
        variant = "" if p.variant == "default" else f" [{p.variant}]"
        err(f"[{p.index}/{p.total}] {p.workload}{variant} on {p.device} (about {p.left_s:.0f} s left)")

    where = (lambda r: f" [process {r.process}]") if prepared.processes else (lambda r: "")

    def show_record(r: Record) -> None:
        if r.status == OK and r.measurement is None and r.instructions is not None:
            err(f"    {r.plan.name}: {r.instructions:,.0f} instructions per call (callgrind, memory layout "
                f"{-1 - r.process})")
        elif r.status == OK:
            m = r.measurement
            s = summarize(m.device_s)
            err(f"    {fmt_s(s.median_s)} per call, IQR {100 * s.rel_iqr:.1f}%, {s.n_samples} samples x "
                f"{m.calls_per_sample} calls ({m.stop_reason}){where(r)}")
        else:
            err(f"    {r.status}: {r.reason}{where(r)}")

    try:
        run = execute(prepared, out=args.out, label=args.label, on_start=start, on_progress=progress,
                      on_record=show_record, seed=args.seed)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, lambda *_: os._exit(EXIT_INTERRUPTED))  # a second Ctrl-C exits at once
        err(f"interrupted: the rows finished so far are saved under {args.out} (marked incomplete)")
        return EXIT_INTERRUPTED
    print(summary(run.results))
    if store is not None:
        try:
            added = add_to_history(run, store)
        except BenchError as exc:  # the run is on disk whatever happens to the store
            err(f"{exc.problems[0]}; the run is saved in {run.source}: `bench history import {run.source}` adds it "
                "later")
            return EXIT_USAGE
        err(f"history: {added} rows added to {store.where}")
    _after_table(run)
    written = [p.name for p in sorted(run.source.glob("*.png"))]
    print(f"\nTimes are per call; median is the median over worker processes of each one's median device time "
          f"(CUDA events on a GPU, the host clock on the CPU), with its 95% interval; host/call is what the caller "
          f"waits.\nWrote {run.source}/results.csv, samples.csv, env.json"
          + "".join(f", {name}" for name in written))
    if args.report:
        rep = make_report([run], out=run.source, root=args.root, probe_peaks=args.probe_peaks,
                         on_step=lambda s: err(f"measuring peaks: {s}"))
        for note in rep.notes:
            err(f"note: {note}")
        print(f"Wrote {run.source}/report.html, report.md")
    failed = run.results[run.results["status"].isin(FAILED)]  # skipped fails the run; not-applicable does not
    if len(failed):
        err(f"{len(failed)} of {len(run.results)} rows did not run: see the status and reason columns.")
        return EXIT_FAILED
    return EXIT_OK


def _after_table(run) -> None:
    """Under the console table: what the worker processes cost, how many rows stopped at their precision, and a
    note when rows were machine-decided."""
    workers = run.env.get("workers")
    if workers:
        print(f"\n{workers['started']} worker processes: {workers['start_s_median']:.1f} s each to start (median; "
              f"{workers['import_s_median']:.1f} s importing torch and bench, {workers['config_s_median']:.1f} s the "
              f"configs), {workers['start_s_total']:.0f} s in all, against {workers['measuring_s']:.0f} s measuring. "
              "between: the spread of the per-process medians (IQR / median).")
        stops = workers.get("rows") or {}
        early = sum(str(why).startswith("precise") for why in stops.values())
        if stops and workers.get("max_processes"):
            print(f"{early} of {len(stops)} rows reached +-{workers['precision']:.1%} before "
                  f"{workers['max_processes']} processes (env.json workers.rows says why each stopped).")
    if "machine_decided" in run.results.columns and (run.results["machine_decided"] == True).any():  # noqa: E712 - a column of True, False and None
        err("note: rows marked MACHINE-DECIDED had worker processes that disagree by 3x or more: the machine, not "
            "the layer, set their time (see their note); the gate does not judge them.")


# ---------------------------------------------------------------- plot
def cmd_plot(args) -> int:
    run = read_run(args.run, purpose="to plot")
    written = save_plots(default_report_dir(run), run.results, run.samples)
    print("\n".join(str(p) for p in written) if written else "no successful rows to plot")
    return EXIT_OK
