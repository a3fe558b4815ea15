"""The shards of one suite (`bench run --shard K/N` on N machines of one type) joined into one run.

They join only when they are slices of one measurement: every one a complete shard of the same suite (the same
workloads before slicing) and count, each slice once, all of them there, each holding rows for every workload
of its slice, with the same settings and environment (machine type, torch, threads, TF32...); otherwise a
one-line BenchError naming the folder and what differs. The merged run is what one unsharded run of the suite
would have written: its rows in the suite's order, each shard's worker processes numbered after the previous
shards' (the process stays the unit of the gate's statistics), and env.json the first shard's with `merged_from`
listing the shards.
"""
from __future__ import annotations

from dataclasses import replace

import pandas as pd

from bench.errors import BenchError, Problem
from bench.measure.env import env_differences
from bench.store.env_record import RunEnv
from bench.store.folder import Run
from bench.store.summary import concat_processes

# settings that differ between the shards of one suite by design
SHARD_SETTINGS = ("workloads",)


def _refuse(run: Run, field: str, expected: str, found: str) -> BenchError:
    return BenchError(Problem(where=str(run.source or run.name), field=field, expected=expected, found=found))


def check_shards(runs: list[Run], *, allow_missing: bool = False) -> None:
    """BenchError (one line) unless the runs are all the shards of one suite (see the module's docstring); with
    allow_missing, some of them (a fleet's shards of which some failed)."""
    if not runs:
        raise BenchError(Problem(where="merge", field="RUN", expected="the run folders of a suite's shards",
                                 found="none"))
    for r in runs:
        shard = r.env.get("shard")
        if not isinstance(shard, dict) or not {"index", "count", "suite"} <= set(shard):
            raise _refuse(r, "env.json shard", "a run made with `bench run --shard K/N`", "a run without --shard")
        _check_fields(r, shard)
        if not r.complete:
            raise _refuse(r, "complete", "a finished shard", f"an incomplete run "
                                                             f"({r.env.get('incomplete_reason', 'unfinished')})")
    first = runs[0]
    count, suite = first.env["shard"]["count"], first.env["shard"]["suite"]
    settings0 = {k: v for k, v in (first.env.get("settings") or {}).items() if k not in SHARD_SETTINGS}
    seen: dict[int, Run] = {}
    for r in runs:
        shard = r.env["shard"]
        if shard["count"] != count:
            raise _refuse(r, "shard", f"a shard of {count} as {first.name}", f"{shard['index']}/{shard['count']}")
        if shard["suite"] != suite:
            extra = sorted(set(shard["suite"]) - set(suite))
            missing = sorted(set(suite) - set(shard["suite"]))
            found = (f"workload {extra[0]!r} that {first.name}'s suite lacks" if extra else
                     f"no workload {missing[0]!r}" if missing else "the same workloads in another order")
            raise _refuse(r, "shard.suite", f"the suite of {first.name} ({len(suite)} workloads)", found)
        if shard["index"] in seen:
            raise _refuse(r, "shard", "each shard once", f"shard {shard['index']}/{count} again "
                                                            f"(also {seen[shard['index']].name})")
        seen[shard["index"]] = r
        settings = {k: v for k, v in (r.env.get("settings") or {}).items() if k not in SHARD_SETTINGS}
        if settings != settings0:
            name = next(k for k in sorted(set(settings) | set(settings0)) if settings.get(k) != settings0.get(k))
            raise _refuse(r, f"settings.{name}", f"{settings0.get(name)!r} as in {first.name}",
                          repr(settings.get(name)))
        if r.env.get("machine_keys") != first.env.get("machine_keys"):
            raise _refuse(r, "machine_keys", f"{first.env.get('machine_keys')} as in {first.name} (shards of one "
                                             "machine type)", str(r.env.get("machine_keys")))
        diffs = [d for d in env_differences(first.env, r.env, devices={"cpu", "cuda"}) if d.blocking]
        if diffs:
            raise _refuse(r, diffs[0].field, f"{diffs[0].baseline} as in {first.name}", diffs[0].candidate)
    missing = [i for i in range(1, count + 1) if i not in seen]
    if missing and not allow_missing:
        raise BenchError(Problem(where="merge", field="RUN", expected=f"all {count} shards of the suite",
                                 found=f"no shard {', '.join(f'{i}/{count}' for i in missing)}"))
    _check_rows(runs, suite if not missing else [])


def missing_shards(runs: list[Run]) -> list[str]:
    """The shards ("K/N") of the suite that none of the runs is."""
    count = runs[0].env["shard"]["count"]
    seen = {r.env["shard"]["index"] for r in runs}
    return [f"{i}/{count}" for i in range(1, count + 1) if i not in seen]


def _names(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def _kind(value: object) -> str:
    return f"{type(value).__name__} {value!r}"[:80]


def _check_fields(run: Run, shard: dict) -> None:
    """The env.json fields merging reads have their types (a file edited by hand or by another tool)."""
    index, count, suite = shard["index"], shard["count"], shard["suite"]
    if any(isinstance(n, bool) or not isinstance(n, int) for n in (index, count)) or not 1 <= index <= count:
        raise _refuse(run, "env.json shard", "index and count, integers with 1 <= index <= count",
                      f"{_kind(index)}, {_kind(count)}")
    if not isinstance(suite, list) or not all(isinstance(w, str) for w in suite):
        raise _refuse(run, "env.json shard.suite", "a list of workload names", _kind(suite))
    settings = run.env.get("settings")
    if settings is not None and not isinstance(settings, dict):
        raise _refuse(run, "env.json settings", "an object of the run's settings", _kind(settings))
    workloads = (settings or {}).get("workloads")
    if workloads is not None and not (isinstance(workloads, list) and all(isinstance(w, str) for w in workloads)):
        raise _refuse(run, "env.json settings.workloads", "a list of workload names", _kind(workloads))


def _check_rows(runs: list[Run], suite: list[str]) -> None:
    """Each shard holds rows for every workload of its slice (settings.workloads), and the shards together for
    every workload of the suite: a shard that stopped early or lost its rows would make a merged run that says
    it is complete and is not."""
    held: set[str] = set()
    for r in runs:
        have = set(r.results["workload"].astype(str)) if "workload" in r.results.columns else set()
        held |= have
        own = (r.env.get("settings") or {}).get("workloads") or []
        lacking = [w for w in own if w not in have]
        if lacking:
            raise _refuse(r, "results.csv", f"rows for the {len(own)} workload(s) of its slice",
                          f"none for {_names(lacking)}")
    lacking = [w for w in suite if w not in held]
    if lacking:
        raise BenchError(Problem(where="merge", field="RUN",
                                 expected=f"rows for the {len(suite)} workloads of the suite",
                                 found=f"none for {_names(lacking)}"))


def merge_shards(runs: list[Run], *, allow_missing: bool = False) -> tuple[pd.DataFrame, pd.DataFrame, RunEnv]:
    """The shards as one run's results, samples and env (see the module's docstring); with allow_missing, of
    some of the shards only (missing_shards says which lack)."""
    check_shards(runs, allow_missing=allow_missing)
    runs = sorted(runs, key=lambda r: r.env["shard"]["index"])
    suite = runs[0].env["shard"]["suite"]
    order = {name: i for i, name in enumerate(suite)}
    results = pd.concat([r.results for r in runs], ignore_index=True)
    results = results.iloc[sorted(range(len(results)), key=lambda i: order.get(results.at[i, "workload"], len(order)))]
    samples = concat_processes([r.samples for r in runs])
    merged_from = tuple(dict(shard=f"{r.env['shard']['index']}/{r.env['shard']['count']}",
                             run=str(r.source or r.name), host=r.env.get("host", ""),
                             time_utc=r.env.get("time_utc", "")) for r in runs)
    # the first shard's environment, as the whole suite's, without what belonged to that shard's own course
    env = replace(RunEnv.of(runs[0].env), shard=None, complete=False, finished_utc="", incomplete_reason="",
                  workers=None, settings=dict(runs[0].env.get("settings") or {}, workloads=list(suite)),
                  merged_from=merged_from)
    return results.reset_index(drop=True), samples, env
