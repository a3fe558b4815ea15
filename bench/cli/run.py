"""The `run` and `plot` subcommands (registered by bench.cli.main): progress, the summary table, Ctrl-C handling.

Ctrl-C or SIGTERM during a run: the rows finished so far are already on disk (RunWriter saves after each
row), the run is marked incomplete, exit 130; a second Ctrl-C exits at once.
"""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pandas as pd

from bench.suite import config
from bench.suite import plan as planning
from bench.cli.main import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, _err, number
from bench.errors import BenchError
from bench.measure.sampling import Policy
from bench.units import fmt_s, fmt_si
from bench.measure.runner import CUDA_POLICY, Progress, Record, available_devices, run_suite


def register(sub) -> None:
    p = sub.add_parser("run", help="time the workloads and write a run folder under results/")
    p.add_argument("configs", nargs="+")
    p.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    p.add_argument("--out", default="results", help="folder to create the run folder in (default results)")
    p.add_argument("--filter", default="", help="only workloads whose name contains this, or with this tag")
    p.add_argument("--budget-s", type=number(), default=Policy.budget_s, help="sampling seconds per row")
    p.add_argument("--warmup-s", type=number(), default=Policy.warmup_s)
    p.add_argument("--timeout-s", type=number(strict=True), default=Policy.timeout_s,
                   help="skip a row whose first call predicts more than this")
    p.add_argument("--min-samples", type=number(minimum=1, integer=True), default=Policy.min_samples)
    p.add_argument("--target-rel-iqr", type=number(), default=Policy.target_rel_iqr)
    p.add_argument("--threads", type=number(minimum=1, integer=True), default=None,
                   help="CPU threads (default: torch's)")
    p.add_argument("--variants", default="", help="comma-separated sweeps (dtypes, standard, compile) and variant "
                   "names such as bfloat16+channels_last+cudnn_benchmark, float32+no-tf32, backward, cuda_graph, "
                   "threads=1; the default variant always runs")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("plot", help="redraw a run folder's plots")
    p.add_argument("run_dir")
    p.set_defaults(func=cmd_plot)


def _devices(choice: str) -> list[str]:
    have = available_devices()
    if choice == "all":
        if "cuda" not in have:
            _err("note: no CUDA device here; timing on the CPU only.")
        return have
    if choice == "cuda" and "cuda" not in have:
        raise BenchError("--device cuda: expected a CUDA device, found none (torch.cuda.is_available() is False)")
    return [choice]


def _summary(frame: pd.DataFrame) -> str:
    rows = []
    for _, r in frame.iterrows():
        flags = [] if r["status"] == "ok" else [f"{r['status']}: {r['reason']}"]
        if r["status"] == "ok" and r["noisy"]:
            flags.append("noisy")
        if r["status"] == "ok" and r["n_samples"] < 5:
            flags.append(f"few samples ({r['stop_reason']})")
        if r["status"] == "ok" and r["launch_bound"]:
            flags.append("launch-bound")
        rows.append({
            "workload": r["workload"], "variant": r.get("variant", "default"), "device": r["device"], "dtype": r["dtype"],
            "median": fmt_s(r["median_s"]),
            "IQR": "-" if pd.isna(r["rel_iqr"]) else f"{100 * r['rel_iqr']:.1f}%",
            "host/call": fmt_s(r["host_median_s"]), "FLOP/s": fmt_si(r["flops_per_s"]),
            "n": "-" if pd.isna(r["n_samples"]) else int(r["n_samples"]), "flags": "; ".join(flags)[:90],
        })
    return pd.DataFrame(rows).to_string(index=False) if rows else "(no rows)"


def cmd_run(args) -> int:
    from bench.measure import env as envmod
    from bench.report.plots import save_plots
    from bench.store.runs import RunWriter, new_run_dir

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    import torch

    declared = config.load_all(args.configs)
    plans = planning.check(declared)
    if args.filter:
        plans = [p for p in plans if args.filter in p.name or args.filter in p.workload.tags]
        if not plans:
            raise BenchError(f"--filter {args.filter!r}: expected a name part or tag of some workload, found none")
    common = dict(budget_s=args.budget_s, timeout_s=args.timeout_s, min_samples=args.min_samples,
                  floor_samples=min(Policy.floor_samples, args.min_samples), target_rel_iqr=args.target_rel_iqr)
    policy = Policy(**common, warmup_s=args.warmup_s)
    cuda_policy = Policy(**common, warmup_s=max(args.warmup_s, CUDA_POLICY.warmup_s))
    devices = _devices(args.device)
    from bench.suite.variants import config_variants, parse_variants

    variants = tuple(dict.fromkeys(parse_variants(args.variants) + config_variants(args.configs)))  # before the folder
    run_dir = new_run_dir(Path(args.out))
    argv = ["bench", *(args.argv or [])]
    writer = RunWriter(run_dir, envmod.capture(devices=devices, argv=argv, threads=torch.get_num_threads()))
    load, cores = writer.env.get("load_avg_1m"), writer.env.get("cpu_count") or 1
    if load is not None and load > 0.75 * cores:
        _err(f"note: this machine is busy (load average {load:.1f} on {cores} cores): CPU times may be inflated "
             "and noisy; --threads 1 suffers least from a busy neighbour.")
    rows = len(plans) * len(devices) * len(variants)
    times = f" x {len(variants)} variants" if len(variants) > 1 else ""
    _err(f"{len(plans)} workloads x {len(devices)} device(s){times} = {rows} rows; sampling budget {args.budget_s:g} s "
         f"per row (about {rows * (args.budget_s + args.warmup_s):.0f} s in all, longer only for workloads whose "
         f"single call exceeds the budget); writing {run_dir}")

    def progress(p: Progress) -> None:
        variant = "" if p.variant == "default" else f" [{p.variant}]"
        _err(f"[{p.index}/{p.total}] {p.workload}{variant} on {p.device} (about {p.left_s:.0f} s left)")

    def record(r: Record) -> None:
        writer.add(r)
        if r.status == "ok":
            m = r.measurement
            from bench.stats import summarize

            s = summarize(m.device_s)
            _err(f"    {fmt_s(s.median_s)} per call, IQR {100 * s.rel_iqr:.1f}%, {s.n_samples} samples x "
                 f"{m.calls_per_sample} calls ({m.stop_reason})")
        else:
            _err(f"    {r.status}: {r.reason}")

    previous_term = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        run_suite(plans, devices, policy=policy, cuda_policy=cuda_policy, on_progress=progress, on_record=record,
                  variants=variants)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, lambda *_: os._exit(EXIT_INTERRUPTED))  # a second Ctrl-C exits at once
        writer.finish(complete=False, note="interrupted")
        _err(f"interrupted: {len(writer.records)} of {rows} rows saved in {run_dir} (marked incomplete)")
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous_term)
    writer.finish(complete=True)
    frame = _frame(writer.records)
    plots = save_plots(run_dir, *_default_variant(frame, _samples(writer.records)))
    print(_summary(frame))
    print(f"\nTimes are per call; median is device time (CUDA events on a GPU, the host clock on the CPU), "
          f"host/call is what the caller waits.\nWrote {run_dir}/results.csv, samples.csv, env.json"
          + "".join(f", {p.name}" for p in plots))
    failed = frame[~frame["status"].isin(["ok", "not-applicable"])]  # a variant that does not apply is no failure
    if len(failed):
        _err(f"{len(failed)} of {len(frame)} rows did not run: see the status and reason columns.")
        return EXIT_FAILED
    return EXIT_OK


def _frame(records):
    from bench.store.runs import to_frame

    return to_frame(records)


def _samples(records):
    from bench.store.runs import to_samples

    return to_samples(records)


def _default_variant(results: pd.DataFrame, samples: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Only the default variant's rows: the latency plot has one bar per workload and device (variants: `report`)."""
    def keep(f: pd.DataFrame) -> pd.DataFrame:
        return f[f["variant"].fillna("default") == "default"] if "variant" in f.columns else f

    return keep(results), keep(samples)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


# ---------------------------------------------------------------- plot
def cmd_plot(args) -> int:
    from bench.report.plots import save_plots
    from bench.store.runs import load_run

    results, samples, _ = load_run(Path(args.run_dir))
    written = save_plots(Path(args.run_dir), *_default_variant(results, samples))
    print("\n".join(str(p) for p in written) if written else "no successful rows to plot")
    return EXIT_OK
