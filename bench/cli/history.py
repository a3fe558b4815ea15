"""`history` and `merge`: trends and change points of the history store, runs imported into it, shards joined."""
from __future__ import annotations

import argparse
from pathlib import Path

from bench.api.history import history, import_runs, merge
from bench.api.site import history_site
from bench.cli.common import EXIT_OK, RESULTS, command, err
from bench.gate.changes import MIN_SUITE_ROWS, STATISTICS
from bench.schema import KEY_COLUMNS
from bench.store.history import DEFAULT_STORE, STORE_ENV
from bench.units import fmt_s

STORE_HELP = f"the history store: a file or an SQLAlchemy URL (default: ${STORE_ENV}, else {DEFAULT_STORE})"


def register(sub) -> None:
    p = command(sub, "history", help="trends and change points of every row over the runs in the history store; "
                "`history import RUN...` adds run folders made before")
    p.add_argument("action", nargs="?", choices=["show", "import", "site"], default="show",
                   help="show: trends and change points (changes.csv, index.html with --out); import: add run folders; "
                   "site: a static site of every row over commits and machines into --out (docs/site.md)")
    p.add_argument("runs", nargs="*", metavar="RUN", help="with import: run folders, or folders of them")
    p.add_argument("--store", default=None, metavar="PATH|URL", help=STORE_HELP)
    p.add_argument("--allow-incomplete", action="store_true", help="with import: add interrupted runs too, marked "
                   "incomplete (`history` shows their rows and judges no change point on them)")
    p.add_argument("--filter", default="", help="only workloads whose name contains one of these comma-separated "
                   "parts, or with one as a tag (case-insensitive)")
    p.add_argument("--device", choices=["all", "cpu", "cuda"], default="all", help="only this device")
    p.add_argument("--machine", default="", help="only this machine key (default: every machine, one trend each)")
    p.add_argument("--statistic", choices=list(STATISTICS), default="fastest",
                   help="the per-run value the change points follow: the fastest worker process's median (steady "
                   "when processes land in different speed modes), the mean of the process medians without the "
                   "fastest and slowest, or median_s (the median of the process medians; of all samples in runs "
                   "written before results.csv version 3)")
    p.add_argument("--relative", action=argparse.BooleanOptionalAction, default=True,
                   help="judge each row relative to the other rows of its run (runs of at least "
                   f"{MIN_SUITE_ROWS} rows), so that a run on a busy machine is not a change; moves of the whole "
                   "suite are reported apart (default: on)")
    p.add_argument("--out", default=None, help="write changes.csv, history.csv, one trend PNG per row and index.html "
                   "into this folder")
    p.add_argument("--report", default=None, metavar="REPORT", help="with site: a run's report.html (or its folder) "
                   "the pages link to")
    p.set_defaults(func=cmd_history)

    p = command(sub, "merge", help="join the shards of one suite (`run --shard K/N` on N machines of one type) into "
                "one run folder <out>/<UTC time>[-label]/")
    p.add_argument("runs", nargs="+", metavar="RUN", help="each shard's run folder")
    p.add_argument("--out", default=RESULTS, help="the folder the merged run folder is made in")
    p.add_argument("--label", default="", help="a name for the merged run, appended to its folder's name")
    p.set_defaults(func=cmd_merge)


def cmd_history(args) -> int:
    if args.action == "import":
        if not args.runs:
            err("bench history import: error: expected run folders to import, found none (see --help)")
            return 2
        done = import_runs(args.runs, store=args.store, allow_incomplete=args.allow_incomplete)
        marked = f" ({len(done.incomplete)} incomplete, marked so)" if done.incomplete else ""
        print(f"{len(done.added)} run(s) added ({done.rows} rows){marked}, {len(done.already)} already in {done.store}")
        return EXIT_OK
    if args.action == "site":
        return cmd_site(args)
    if args.runs:
        err(f"layerbench history: error: run folders are taken by `history import`, found {args.runs[0]!r} "
            "(see --help)")
        return 2
    h = history(store=args.store, filter=args.filter, device="" if args.device == "all" else args.device,
                machine=args.machine, out=args.out,
                statistic=args.statistic, relative=args.relative)
    runs = h.frame["run_id"].nunique()
    trends = h.frame.groupby([*KEY_COLUMNS, "machine_key"]).ngroups
    print(f"{runs} runs, {trends} trends (row x machine) in {h.store}; read in {h.query_s:.2f} s")
    if h.incomplete_runs:
        print(f"{h.incomplete_runs} incomplete run(s) (interrupted, imported with --allow-incomplete): their rows are "
              "in history.csv but not judged for change points")
    if h.relative:
        judged = h.values.drop_duplicates(["run_id", "device", "machine_key"])
        judged = judged[judged["relative"]]
        print(f"rows judged relative to their run's suite factor ({len(judged)} runs; factor "
              f"{judged['suite_factor'].min():.3f}x to {judged['suite_factor'].max():.3f}x); --no-relative: each alone")
    elif args.relative:
        print(f"each row judged on its own: no run has {MIN_SUITE_ROWS} rows or more among those read")
    if h.changes.empty:
        print("no change points")
    else:
        table = h.changes.assign(
            before=h.changes["before_median_s"].map(fmt_s), after=h.changes["after_median_s"].map(fmt_s),
            ratio=h.changes["ratio"].map(lambda r: f"{r:.3f}x"), commit=h.changes["git_commit"],
            since=[e if p != q else "" for e, p, q in zip(h.changes["earliest_commit"], h.changes["earliest_position"],
                                                          h.changes["position"])],
            run=h.changes["run_id"].str[:10], machine=h.changes["machine_key"].str[:24])
        print(table[["workload", "device", "dtype", "variant", "machine", "direction", "ratio", "before", "after",
                     "commit", "since", "run", "time_utc"]].to_string(index=False))
        print("commit: the first run of the new level; since: the earliest commit where it may have started, when "
              "the runs between are ambiguous (bisect from there)")
    if h.written:
        folder = Path(h.written[0]).parent
        print(f"Wrote {folder}/index.html, changes.csv, history.csv and {len(h.written) - 3} trend figure(s)")
    return EXIT_OK


def cmd_site(args) -> int:
    if args.runs or not args.out or args.filter or args.device != "all" or args.machine:
        found = (f"run folders {args.runs[0]!r}" if args.runs else "no --out" if not args.out
                 else "--filter, --device or --machine (the site shows every row; its pages filter)")
        err(f"layerbench history site: error: expected --out DIR and no other selection, found {found} (see --help)")
        return 2
    site = history_site(store=args.store, out=args.out, statistic=args.statistic, relative=args.relative,
                        report=args.report)
    print(f"{site.runs} runs, {site.trends} trends (row x machine), {site.changes} change points from {site.store}; "
          f"read in {site.read_s:.2f} s, judged in {site.judge_s:.2f} s")
    print(f"Wrote {site.out / 'index.html'} ({site.files} files, {site.size_bytes / 1e6:.1f} MB); open it in a "
          "browser, no server needed")
    return EXIT_OK


def cmd_merge(args) -> int:
    run = merge(args.runs, out=args.out, label=args.label)
    print(f"Merged {len(run.env.get('merged_from', []))} shards, {len(run.results)} rows: wrote {run.source}")
    return EXIT_OK
