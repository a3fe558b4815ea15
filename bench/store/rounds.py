"""Several run folders of one suite (rounds: `bench run` repeated with the same --out) pooled into one Run.

Rounds spread each row's samples over time, so one burst of load on a shared machine moves a row less.
They pool only when they are one measurement repeated: every round complete, the same command line apart
from --out (env.json "argv"), the same rows and the same environment; otherwise a one-line BenchError
naming the folder and what differs.
"""
from __future__ import annotations

import difflib
from pathlib import Path

import pandas as pd

from bench.errors import BenchError, Problem
from bench.measure.env import env_differences
from bench.schema import KEY_COLUMNS, OK, RowKey
from bench.store.folder import Run
from bench.store.summary import concat_processes, summarize_rows


def _argv_without_out(argv) -> list[str] | None:
    """A run's command line (env.json "argv") without the value of --out, which differs between rounds."""
    if not isinstance(argv, list):
        return argv
    out, skip = [], False
    for token in map(str, argv):
        if skip:
            skip = False
        elif token == "--out":
            out.append(token)
            skip = True
        elif token.startswith("--out="):
            out.append("--out")
        else:
            out.append(token)
    return out


def _first_difference(a: list[str] | None, b: list[str] | None) -> tuple[str, str]:
    """The part of two command lines that differs, with the option before it: ("--budget-s 0.3", "--budget-s 0.05")."""
    if not isinstance(a, list) or not isinstance(b, list):
        return repr(a), repr(b)
    op = next(o for o in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes() if o[0] != "equal")
    _, i1, i2, j1, j2 = op
    inserted = i1 == i2 or j1 == j2  # one side has nothing there: show a neighbour for context
    lead = 1 if i1 > 0 and (inserted or a[i1 - 1].startswith("-")) else 0  # and the option whose value changed
    tail = 1 if inserted and not lead else 0
    show = lambda tokens, lo, hi: " ".join(tokens[lo - lead:hi + tail])  # noqa: E731 - closes over lead and tail
    return show(a, i1, i2), show(b, j1, j2)


def check_rounds(path: Path, rounds: list[Run]) -> None:
    """BenchError (one line) unless the rounds are one measurement repeated (see the module's docstring)."""
    for r in rounds:
        if not r.complete:
            raise BenchError(Problem(where=str(r.source / "env.json"), field="complete",
                                     expected=f"every round of {path} finished",
                                     found=f"an incomplete round ({r.env.get('incomplete_reason', 'unfinished')})"))
    first = rounds[0]
    argv0, rows0 = _argv_without_out(first.env.get("argv")), set(first.keys())
    for r in rounds[1:]:
        argv = _argv_without_out(r.env.get("argv"))
        if argv != argv0:
            want, got = _first_difference(argv0, argv)
            raise BenchError(Problem(where=str(path),
                                     field="argv (rounds of one run: the same command apart from --out)",
                                     expected=f"'{want}' as in {first.name}", found=f"'{got}' in {r.name}"))
        s0, s = first.env.get("settings"), r.env.get("settings")
        if s0 != s:
            names = sorted(set(s0 or {}) | set(s or {})) if isinstance(s0, dict) and isinstance(s, dict) else []
            name = next((k for k in names if s0.get(k) != s.get(k)), "settings")
            want = s0.get(name) if isinstance(s0, dict) else s0
            got = s.get(name) if isinstance(s, dict) else s
            raise BenchError(Problem(where=str(path), field=f"settings.{name} (rounds of one run: the same settings)",
                                     expected=f"{want!r} as in {first.name}", found=f"{got!r} in {r.name}"))
        rows = set(r.keys())
        if rows != rows0:
            extra, missing = sorted(rows - rows0), sorted(rows0 - rows)
            found = "; ".join(part for part in (
                f"{len(missing)} row(s) missing, e.g. {missing[0].label}" if missing else "",
                f"{len(extra)} extra row(s), e.g. {extra[0].label}" if extra else "") if part)
            raise BenchError(Problem(where=str(path), field="rows (rounds of one run)",
                                     expected=f"the {len(rows0)} rows of {first.name}", found=f"{found} in {r.name}"))
        diffs = [d for d in env_differences(first.env, r.env, devices={"cpu", "cuda"}) if d.blocking]
        if diffs:
            raise BenchError(Problem(where=str(r.source / "env.json"), field=diffs[0].field,
                                     expected=f"{diffs[0].baseline} as in {first.source / 'env.json'} "
                                     "(rounds of one run)",
                                     found=diffs[0].candidate))


def pool(path: Path, rounds: list[Run]) -> Run:
    """Rounds as one Run: samples pooled (renumbered per row; each round's processes numbered after the previous
    rounds', so a process stays the unit of the gate's statistics) and each ok row's summary (median, IQR, n, noisy,
    FLOP/s, launch-bound) recomputed from them; a row failed if it failed in any round (that round's row is
    kept); rows in the first round's order; env the first round's with `rounds` added."""
    check_rounds(path, rounds)
    key = list(KEY_COLUMNS)
    results = rounds[0].results.copy().reset_index(drop=True)
    where = {RowKey.of(row): i for i, row in enumerate(results.to_dict("records"))}
    for later in rounds[1:]:
        for row in later.results.to_dict("records"):
            i = where[RowKey.of(row)]
            if row["status"] != OK and results.at[i, "status"] == OK:
                results.loc[i] = pd.Series(row)
    samples = concat_processes([r.samples for r in rounds])
    samples["sample"] = samples.groupby(key).cumcount()
    env = dict(rounds[0].env, complete=True, rounds=len(rounds))
    return Run(results=summarize_rows(results, samples), samples=samples, env=env, source=path,
               run_dirs=tuple(d for r in rounds for d in r.run_dirs))
