"""Command line: the only package that prints. `main(argv) -> exit status`, testable in-process.

Exit statuses: 0 success; 1 some rows failed (run) or something got slower (compare); 2 a user error
(bad config, file or argument), one line each, no traceback, or (compare, ab) rows the gate could not judge and
none slower, one line; 3 an internal error (a bug in bench: the
traceback is printed; or a worker process killed by a signal while starting, one line); 4 a file could not
be written (disk full, read-only), one line; 130 interrupted, by Ctrl-C (SIGINT) or SIGTERM alike, at any moment
(a run keeps the rows finished, marked incomplete), one line; 141 standard output closed by its reader (as shell
tools after SIGPIPE).

This module imports nothing heavy at its top: the subcommands (and torch with them) are imported inside `main`,
after both signals raise KeyboardInterrupt, so that a signal landing while torch loads ends in one line too.

The subcommands are modules beside this one (bench.cli.run, gate, report, attribution, history), each over
bench.cli.common and the API only. Two commands are carried out here instead: `run --shards N` (cmd_fleet) and
`calibrate` (cmd_calibrate) each run the suite as `run` does, so the API functions behind them (bench.api.fleet,
bench.api.calibrating) sit one level above bench.api.running; called from a subcommand module, they would make
the chain of imports from `python -m bench` longer than tests/test_house.py allows.
"""
from __future__ import annotations

import atexit
import os
import shlex
import signal
import sys
import threading
import traceback

from bench.cli.common import (
    EXIT_BROKEN_PIPE,
    EXIT_CANNOT_WRITE,
    EXIT_FAILED,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    OneLineParser,
    err,
)
from bench.errors import BenchError, Problem, WorkerLost, WriteError

# The signals received while `main` runs. Once one has arrived, whatever it broke is an interruption: a signal that
# lands inside a C extension's import (numpy's) can come out as an ImportError instead of a KeyboardInterrupt.
_received: list[int] = []


def _on_signal(signum, frame) -> None:
    _received.append(signum)
    raise KeyboardInterrupt(f"signal {signum}")


def interrupt_on_signals() -> dict:
    """Make SIGINT (Ctrl-C) and SIGTERM (a job scheduler's or CI's cancel: an interruption, not a crash) raise
    KeyboardInterrupt, remembered in _received; the previous handlers, to restore. A SIGINT that is ignored (a
    shell's background job) stays ignored. Nothing off the main thread, where Python cannot set handlers."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    _received.clear()
    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            previous[signum] = signal.signal(signum, _on_signal)
    return previous


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog="layerbench", description="Check, time and compare PyTorch layers on CPU and CUDA. "
                           "Every command that reads a run takes a run folder, the folder given to `run --out`, or a "
                           "run's results.csv. See README.md.")
    from bench.cli import (  # torch and pandas load here, not when this module does
        attribution,
        gate,
        history,
        report,
        run,
    )

    sub = parser.add_subparsers(dest="command", required=True)
    run.register(sub)
    gate.register(sub)
    report.register(sub)
    attribution.register(sub)
    history.register(sub)
    sub.choices["run"].set_defaults(func=_run)
    sub.choices["calibrate"].set_defaults(func=cmd_calibrate)
    return parser


def _run(args) -> int:
    """`run`: with --shards N the suite's shards through an executor (cmd_fleet), else bench.cli.run.cmd_run."""
    from bench.cli.run import cmd_run

    return cmd_fleet(args) if args.shards is not None else cmd_run(args)


def main(argv: list[str] | None = None) -> int:
    previous = interrupt_on_signals()
    try:
        status = _main(list(sys.argv[1:] if argv is None else argv))
        if _received and argv is None:  # `run` saved what it had and said so; the process ends with its status
            _exit_now(status)
        return status
    except BaseException as exc:  # anywhere: while torch loads, while a config is imported, while a row runs
        if not (_received or isinstance(exc, KeyboardInterrupt)):
            raise
        _ignore_signals()  # a second signal while this is said would print a traceback
        err("interrupted")
        if argv is None:  # this process's own command line (not a call from Python): it ends here
            _exit_now(EXIT_INTERRUPTED)
        return EXIT_INTERRUPTED
    finally:
        for signum, handler in previous.items():
            if handler is not None:
                signal.signal(signum, handler)


def _exit_now(status: int) -> None:
    """Exit with status after the atexit handlers and with the streams flushed, without the interpreter's own
    shutdown: a KeyboardInterrupt that passed through code a C extension runs with PyRun (pybind11's exec, while
    torch imports) marks the interpreter to kill itself with SIGINT at exit, whatever status it was given."""
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass  # a reader gone away, a stream closed: nothing more to say
    os._exit(status)


def _ignore_signals() -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _main(argv: list[str]) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # OneLineParser already printed its one-line error (or --help its text)
        return EXIT_USAGE if exc.code else EXIT_OK
    args.argv = argv
    try:
        return args.func(args)
    except WorkerLost as exc:  # neither the user's mistake (2) nor a verdict (1): the tool could not measure
        err(f"worker process lost: {exc}")
        return EXIT_INTERNAL
    except WriteError as exc:
        err(f"cannot write: {exc}")
        return EXIT_CANNOT_WRITE
    except BenchError as exc:
        for problem in exc.problems:
            err(str(problem))
        return EXIT_USAGE
    except BrokenPipeError:  # the reader went away (`bench export RUN | head`): nothing more to say, as a shell tool
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception:  # not the user's mistake: say so, with the traceback to report
        if _received:  # broken by a signal, not a bug: main says "interrupted"
            raise
        traceback.print_exc()
        err("internal error: this is a bug in bench, not a problem with your input (exit 3)")
        return EXIT_INTERNAL


# ---------------------------------------------------------------- the commands built on `run`'s runs
def prepare_options(args) -> dict:
    """bench.api.running.prepare's keyword arguments from `run`'s options."""
    return dict(device=args.device, budget_s=args.budget_s, warmup_s=args.warmup_s, timeout_s=args.timeout_s,
                min_samples=args.min_samples, target_rel_iqr=args.target_rel_iqr, threads=args.threads,
                variants=args.variants, filter=args.filter, argv=tuple(args.argv), processes=args.processes,
                metric=args.metric, cache=args.cache, profile=args.profile, retries=args.retries,
                min_processes=args.min_processes, precision=args.precision)


def cmd_fleet(args) -> int:
    """`run SUITE --shards N --executor slurm|local`: the suite's shards through submitit, merged and recorded
    (bench.api.fleet)."""
    from bench.api.fleet import run_fleet
    from bench.api.reporting import make_report
    from bench.schema import FAILED

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


def cmd_calibrate(args) -> int:
    """`calibrate`: the suite measured several times as `run` measures it, each row's noise stored."""
    from bench.api.calibrating import calibrate
    from bench.gate.rule import Rule

    def started(prepared) -> None:
        err(f"calibrating: {len(prepared.plans)} workloads x {len(prepared.devices)} device(s) x "
            f"{len(prepared.variants)} variant(s), {args.repeats} repeats, each row in "
            f"{prepared.processes or 'this'} process{'es' if prepared.processes != 1 else ''}")

    done = calibrate(args.configs, repeats=args.repeats, device=args.device, budget_s=args.budget_s,
                     warmup_s=args.warmup_s, min_samples=args.min_samples, threads=args.threads,
                     variants=args.variants, filter=args.filter, processes=args.processes, seed=args.seed,
                     root=args.root, argv=args.argv, on_start=started)
    cal, factor = done.calibration, Rule().noise_factor
    table = cal.noise.assign(noise=cal.noise["noise"].map(lambda x: f"{x:.1%}"),
                             threshold=cal.noise["noise"].map(lambda x: f"{factor * x:.1%}"))
    print(table.to_string(index=False))
    unmeasured = len(cal.medians.drop_duplicates(["workload", "device", "dtype", "variant"])) - len(cal.noise)
    if unmeasured > 0:
        print(f"{unmeasured} row(s) ran in fewer than 2 repeats: no noise stored for them "
              "(their threshold is not widened).")
    print("noise: max/min - 1 of each row's medians over the repeats; `bench compare` widens a row's "
          f"threshold to noise_factor ({factor:g}) x its noise when that exceeds the threshold it would use.")
    print("Wrote " + ", ".join(str(f / "noise.csv") for f in done.folders))
    return EXIT_OK
