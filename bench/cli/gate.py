"""The regression gate's commands: compare, baseline, calibrate, export.

compare (and ab) exit 0 when no row is slower, 1 when some row is, 2 for bad input (one line, no traceback) and when
no row is slower but some row could not be judged (too few processes, the machine decided it, no data on a side):
a comparison that cannot judge does not read as a pass.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench.api.ab import DEFAULT_BLOCKS, DEFAULT_LOOKS, DEFAULT_PAIRS, ab
from bench.api.comparing import comparison, load
from bench.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    add_retries,
    add_root,
    command,
    err,
    number,
    percent,
    read_run,
)
from bench.errors import BenchError, Problem, WriteError
from bench.gate.baseline import promote, store_dir
from bench.gate.calibrate import DEFAULT_REPEATS
from bench.gate.render import attention, console, markdown, ratio_figure, save_figure, verdict_line
from bench.measure.sampling import Policy
from bench.store.export import to_pytest_benchmark
from bench.store.files import writable_folder, write_output

RUN_HELP = "a run folder, the folder given to `run --out` (one run, or rounds to pool), or a run's results.csv"


def register(sub) -> None:
    for add in (_add_compare, _add_ab, _add_baseline, _add_calibrate, _add_export):
        add(sub)


def _add_compare(sub) -> None:
    p = command(sub, "compare", help="compare two runs: exit 0 nothing slower, 1 something slower, 2 bad input or "
                "rows it could not judge (too few processes, the machine decided them)")
    p.add_argument("baseline", help=f"{RUN_HELP}; e.g. results/baselines/<machine>")
    p.add_argument("candidate", help=RUN_HELP)
    add_judging(p, metrics=("auto", "time", "instructions"))
    p.add_argument("--allow-env-mismatch", action="store_true",
                   help="compare even when device, torch version or precision settings differ (the report says so)")
    p.add_argument("--allow-missing", action="store_true",
                   help="compare even when the candidate lacks rows the baseline has (listed as removed; the report "
                   "says so); without it such a candidate is bad input (exit 2)")
    p.add_argument("--allow-incomplete", action="store_true",
                   help="compare even when a run is not marked complete (killed or interrupted; the report says so); "
                   "the rows it lacks still need --allow-missing")
    p.add_argument("--allow-failed", action="store_true",
                   help="compare even when a row that ran in the baseline failed in the candidate (timeout, error, "
                   "oom); it is then judged unsure")
    p.add_argument("--stored-baseline", action="store_true",
                   help="the baseline was measured at another time: when the machine differs as a whole (the speed "
                   "probes disagree, or the whole suite moved together) say so loudly and exit 0")
    p.add_argument("--out", default="", help="the folder this command writes gate.md and gate.png into "
                   "(empty: the candidate's folder)")
    p.set_defaults(func=cmd_compare)


def _add_ab(sub) -> None:
    p = command(sub, "ab", help="A/B in one job: the suite from --base-ref (a git tree) or --base-python against the "
                "working tree, processes interleaved in pairs; judged like compare (exit 0, 1 or 2)")
    p.add_argument("configs", nargs="+",
                   help="config names in configs/ (smoke) or paths to .py files in the repository")
    p.add_argument("--base-ref", default="", help="the git ref the baseline side is measured from (a temporary "
                   "worktree), e.g. origin/main or HEAD; this or --base-python is required")
    p.add_argument("--base-python", default="", help="the interpreter the baseline side runs under (another "
                   "environment: a torch upgrade); this or --base-ref is required, with --base-ref both")
    p.add_argument("--device", choices=["cpu", "cuda", "all"], default="all", help="where to time")
    p.add_argument("--out", default=str(Path("results") / "ab"),
                   help="the folder this command writes into: a new folder with baseline/ and candidate/ runs")
    p.add_argument("--label", default="", help="a name appended to that folder's name")
    p.add_argument("--filter", default="", help="only workloads whose name contains one of these comma-separated "
                   "parts, or with one as a tag")
    p.add_argument("--processes", type=number(minimum=1, integer=True), default=DEFAULT_PAIRS,
                   help="the most pairs of worker processes a row gets (one per side, alive together)")
    p.add_argument("--looks", type=_looks, default=DEFAULT_LOOKS, metavar="N,N",
                   help="pair counts before --processes at which the rows are judged; a row decided there gets no "
                        "more pairs (default " + ",".join(map(str, DEFAULT_LOOKS)) + "; empty: one look, at the end)")
    p.add_argument("--blocks", type=number(minimum=1, integer=True), default=DEFAULT_BLOCKS,
                   help="blocks per row in each process, alternated between the two sides")
    p.add_argument("--budget-s", type=number(), default=Policy.budget_s,
                   help="sampling seconds per row and side, split over its processes and blocks")
    p.add_argument("--warmup-s", type=number(), default=Policy.warmup_s,
                   help="warm-up seconds of a row's first block in each process (CUDA: 0.5 at least)")
    p.add_argument("--timeout-s", type=number(strict=True), default=Policy.timeout_s, help="per row and block")
    p.add_argument("--min-samples", type=number(minimum=1, integer=True), default=Policy.min_samples,
                   help="samples per block before the noise target may stop it (at most the floor + 2)")
    p.add_argument("--threads", type=number(minimum=1, integer=True), default=None,
                   help="CPU threads (default: torch's)")
    p.add_argument("--variants", default="", help="variants to run too, as `run --variants`")
    p.add_argument("--seed", type=number(integer=True), default=None, help="the random order (default: new, recorded)")
    add_retries(p)
    add_judging(p, metrics=("time", "instructions"))
    p.set_defaults(func=cmd_ab)


def _add_baseline(sub) -> None:
    p = command(sub, "baseline", help="promote a run to <root>/baselines/<machine_key>/ (or print where that is)")
    p.add_argument("run", nargs="?", help=RUN_HELP)
    p.add_argument("--where", action="store_true", help="print this machine's store folder for --device and exit")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                   help="the device whose store folder --where prints")
    add_root(p)
    p.set_defaults(func=cmd_baseline)


def _add_calibrate(sub) -> None:
    p = command(sub, "calibrate", help="A/A: run the suite several times, store each row's noise with the baseline")
    p.add_argument("configs", nargs="+", help="config names in configs/ (seed) or paths to .py files")
    p.add_argument("--repeats", type=number(minimum=2, integer=True), default=DEFAULT_REPEATS,
                   help="A/A runs, at least 2")
    p.add_argument("--device", choices=["cpu", "cuda", "all"], default="all", help="where to time")
    p.add_argument("--filter", default="", help="only workloads whose name contains one of these comma-separated "
                   "parts, or with one as a tag")
    p.add_argument("--variants", default="", help="variants to run too, as `run --variants` (the config's VARIANTS "
                   "always run)")
    p.add_argument("--budget-s", type=number(), default=Policy.budget_s,
                   help="sampling seconds per row and repeat, split over its processes")
    p.add_argument("--warmup-s", type=number(), default=Policy.warmup_s, help="warm-up seconds per row")
    p.add_argument("--min-samples", type=number(minimum=1, integer=True), default=Policy.min_samples,
                   help="samples per row at least")
    p.add_argument("--threads", type=number(minimum=1, integer=True), default=None,
                   help="CPU threads (default: torch's)")
    p.add_argument("--processes", type=number(minimum=0, integer=True), default=None,
                   help="worker processes per row in each repeat; 0: in this process (default: $BENCH_PROCESSES or 7)")
    p.add_argument("--seed", type=number(integer=True), default=None,
                   help="the random order of the repeats' schedules (default: new ones)")
    add_root(p)  # its command is bench.cli.main.cmd_calibrate, set there


def _add_export(sub) -> None:
    p = command(sub, "export", help="a run as another tool's format (pytest-benchmark JSON)")
    p.add_argument("run", help=RUN_HELP)
    p.add_argument("--format", choices=["pytest-benchmark"], default="pytest-benchmark", help="the format")
    p.add_argument("--out", default="", help="the folder this command writes pytest-benchmark.json into "
                   "(empty: standard output)")
    p.set_defaults(func=cmd_export)


def add_judging(p, *, metrics: tuple[str, ...]) -> None:
    p.add_argument("--threshold", type=percent, default=0.10,
                   help="slowdown to catch, for rows whose workload sets none (10%% or 0.1)")
    if "auto" in metrics:
        p.add_argument("--metric", choices=metrics, default="auto",
                       help="auto: per-call times, combined with instructions per call where both runs counted them "
                       "(--metric instructions: counts slower or time slower is slower, counts same and time unsure "
                       "is same); time: times alone; instructions: counts alone")
    else:
        p.add_argument("--metric", choices=metrics, default="time",
                       help="time: measure per-call times; instructions: also count CPU rows' instructions per call "
                       "with callgrind, and judge both combined (as compare --metric auto)")
    p.add_argument("--markdown", metavar="FILE", default="", help="also write the Markdown report to FILE")


def cmd_compare(args) -> int:
    cmp = comparison(args.baseline, args.candidate, threshold=args.threshold,
                     allow_env_mismatch=args.allow_env_mismatch, allow_missing=args.allow_missing,
                     allow_incomplete=args.allow_incomplete, allow_failed=args.allow_failed,
                     stored_baseline=args.stored_baseline, metric=args.metric)
    if args.out:
        folder = Path(args.out)
    else:
        candidate = Path(args.candidate)
        folder = candidate if candidate.is_dir() else candidate.parent
    return judged(cmp, folder, args.markdown)


def _looks(text: str) -> tuple[int, ...]:
    """--looks "10,16": pair counts, each a whole number of at least 1."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not all(p.isdigit() and int(p) >= 1 for p in parts):
        raise argparse.ArgumentTypeError(f"expected pair counts such as 10,16, found {text!r}")
    return tuple(int(p) for p in parts)


def cmd_ab(args) -> int:
    import time

    shown = [0.0]

    def progress(p) -> None:
        now = time.monotonic()
        if now - shown[0] >= 10 or p.index == 1:
            shown[0] = now
            err(f"[{p.index}/{p.total}] blocks measured; about {p.left_s:.0f} s left")

    result = ab(args.configs, base_ref=args.base_ref or None, base_python=args.base_python or None,
                device=args.device, budget_s=args.budget_s, warmup_s=args.warmup_s, timeout_s=args.timeout_s,
                min_samples=args.min_samples, threads=args.threads, variants=args.variants, filter=args.filter,
                processes=args.processes, blocks=args.blocks, looks=args.looks,
                threshold=args.threshold, out=args.out, label=args.label, seed=args.seed,
                metric=args.metric, retries=args.retries,
                argv=args.argv, on_start=lambda f: err(f"A/B: baseline {args.base_ref or ''}"
                                                       f"{' under ' + args.base_python if args.base_python else ''} "
                                                       f"against the working tree, at most {args.processes} pairs of "
                                                       f"worker processes x {args.blocks} blocks per row; writing {f}"),
                on_progress=progress)
    got = result.candidate.env["ab"].get("pairs_per_row") or {}
    if got:
        err("pairs per row (a row decided at a look gets no more): "
            + ", ".join(f"{label} {n}" for label, n in got.items()))
    for side in (result.baseline, result.candidate):
        workers = side.env.get("workers") or {}
        if workers:
            err(f"{side.env['ab']['side']}: {workers['started']} worker processes, {workers['start_s_median']:.1f} s "
                f"each to start (median), {workers['measuring_s']:.0f} s measuring")
    # another --base-python runs another torch: that difference is the point, shown but not refused
    cmp = comparison(result.baseline, result.candidate, threshold=args.threshold,
                     allow_env_mismatch=bool(args.base_python), metric="auto")
    return judged(cmp, result.folder, args.markdown)


def judged(cmp, folder: Path, markdown_file: str) -> int:
    """Print the verdicts, write gate.md and gate.png into folder (and the Markdown to markdown_file), then the rows
    to look at and the verdict in one line; the exit status: 1 when a row is slower, else 2 when a row could not be
    judged, else 0 (and 0 when the machine differs from a stored baseline's)."""
    print(console(cmp))
    report = markdown(cmp)
    written = [write_output(folder / "gate.md", report, option="--out (gate.md)")]
    if markdown_file:
        written.append(write_output(Path(markdown_file), report, option="--markdown"))
    fig = ratio_figure(cmp)
    if fig is not None:
        try:
            written.append(save_figure(fig, folder / "gate.png"))
        except OSError as exc:
            raise WriteError(Problem(where=str(folder / "gate.png"), field="--out (gate.png)",
                                     expected="a writable file path", found=exc.strerror or str(exc))) from None
    print("Wrote " + ", ".join(str(p) for p in written))
    for line in attention(cmp):
        print(line)
    if cmp.machine_differs:
        err(f"MACHINE DIFFERS: {cmp.machine_differs}. Not a verdict on the code: exit 0.")
        return EXIT_OK
    if not cmp.slower and cmp.unjudged:  # not a pass, not a slowdown either: the job could not judge
        err(verdict_line(cmp))
        return EXIT_USAGE
    print(verdict_line(cmp))
    return EXIT_FAILED if cmp.slower else EXIT_OK


def cmd_baseline(args) -> int:
    root = Path(args.root)
    if not args.where:
        writable_folder(root, option="--root")
    if args.where:
        print(store_dir(args.device, root=root))
        return EXIT_OK
    if not args.run:
        raise BenchError(Problem(where="bench baseline", field="RUN", expected="a run to promote "
                                 "(or --where to print this machine's store folder)", found="nothing"))
    for folder in promote(load(args.run), root=root):
        print(f"baseline: {folder}")
    return EXIT_OK


def cmd_export(args) -> int:
    text = json.dumps(to_pytest_benchmark(read_run(args.run, purpose="to export")), indent=4) + "\n"
    if args.out:
        path = write_output(Path(args.out) / "pytest-benchmark.json", text, option="--out")
        print(f"Wrote {path}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK


