"""`bench ab`: the suite measured from two versions of the code in one job, their processes interleaved.

The baseline side is the git tree at --base-ref (checked out into a temporary worktree) and/or another Python
environment (--base-python, a torch upgrade); the candidate side is the working tree with this interpreter.
The measuring engine is this package on both sides: only the code under test (the configs and what they
import) differs. Both sides run in pairs of worker processes alive at the same time, alternating short blocks
of each row (bench.measure.workers.schedule.run_pairs), so a noisy machine moves both alike; bench.gate pairs them.

Writes <out>/<UTC time>[-label]/ holding ab.json and two run folders, baseline/ and candidate/, which any
command reads like runs (`bench compare X/baseline X/candidate` judges them again).
"""
from __future__ import annotations

import json
import math
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from bench.errors import BenchError, Problem, strict_int
from bench.gate.compare import compare_runs
from bench.gate.rule import Rule
from bench.measure import env as envmod
from bench.measure.record import Progress, Record
from bench.measure.runner import CUDA_POLICY, devices_for
from bench.measure.sampling import Policy
from bench.measure.workers.counter import count_instructions
from bench.measure.workers.process import Worker
from bench.measure.workers.protocol import Job, Side
from bench.measure.workers.schedule import Spawn, run_pairs
from bench.schema import RESULTS_DIR, RowKey
from bench.store.env_record import RunEnv
from bench.store.files import write_atomic
from bench.store.folder import Run
from bench.store.recorder import RowOrder, RunRecorder
from bench.store.writer import cannot_write, check_label, new_run_dir
from bench.suite.config import resolve
from bench.suite.variants import parse_variants

AB_FILE = "ab.json"  # marks an A/B folder: its two run folders are two versions, never rounds to pool
# The most pairs of worker processes a row gets, and the looks: the pair counts at which the rows still undecided
# are judged (bench.gate.rule.Rule.looks spends the error rates over them), a row decided at a look getting no more
# pairs, so a quiet machine stops most rows at the first look and a noisy one spends its pairs on the rows that
# need them. The first look is 10 pairs: with its share of the sign test's 1% (a quarter), 10 pairs that all
# agree are the fewest that can call a row slower (2 / 2^10 < 0.25%).
DEFAULT_PAIRS = 24
DEFAULT_LOOKS = (10, 16)  # and the last look, at DEFAULT_PAIRS (or --processes)
DEFAULT_BLOCKS = 6  # blocks per row per process, alternated between the two sides
FLUSH_S = 5.0  # the run folders are rewritten at most this often while measuring, and at the end


@dataclass(frozen=True, kw_only=True)
class AB:
    """The two sides of an A/B job as runs, and the folder holding them."""

    baseline: Run
    candidate: Run
    folder: Path


def _git(args: list[str], cwd: Path, *, what: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BenchError(Problem(where="ab", field="--base-ref", expected="git, to check out the base ref",
                                 found=str(exc))) from None
    if out.returncode != 0:
        lines = (out.stderr or out.stdout).strip().splitlines()
        raise BenchError(Problem(where="ab", field="--base-ref", expected=what, found=lines[-1] if lines else
                                 f"git {' '.join(args)} exited {out.returncode}"))
    return out.stdout.strip()


def toplevel(cwd: Path) -> Path:
    return Path(_git(["rev-parse", "--show-toplevel"], cwd, what="a git repository here (for --base-ref)"))


@contextmanager
def worktree(ref: str, top: Path) -> Iterator[tuple[Path, str]]:
    """The tree at `ref` checked out (detached) into a temporary worktree, and its commit; removed afterwards."""
    commit = _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], top, what=f"a commit named {ref!r}")
    tmp = Path(tempfile.mkdtemp(prefix="bench-ab-"))
    path = tmp / "base"
    _git(["worktree", "add", "--detach", "--quiet", str(path), commit], top, what=f"a worktree of {ref}")
    try:
        yield path, commit
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=top, capture_output=True, timeout=120)
        shutil.rmtree(tmp, ignore_errors=True)
        subprocess.run(["git", "worktree", "prune"], cwd=top, capture_output=True, timeout=120)


def _configs(specs: Sequence[str]) -> list[Path]:
    if not specs:
        raise BenchError(Problem(where="ab", field="CONFIG", expected="at least one config", found="none"))
    return [resolve(str(s)).resolve() for s in specs]


def _in_tree(path: Path, top: Path, tree: Path, ref: str) -> str:
    """The same config file in another checkout of the repository."""
    try:
        rel = path.relative_to(top.resolve())
    except ValueError:
        raise BenchError(Problem(where=str(path), field="CONFIG", expected=f"a config inside the repository {top} "
                                 "(so that --base-ref has a version of it)", found="a file outside it")) from None
    there = tree / rel
    if not there.is_file():
        raise BenchError(Problem(where=str(rel), field="CONFIG", expected=f"the config at {ref} too",
                                 found=f"no such file at {ref}"))
    return str(there)


def _python(base_python: str) -> str:
    found = shutil.which(base_python)
    if not found:
        raise BenchError(Problem(where="ab", field="--base-python", expected="a Python interpreter",
                                 found=f"{base_python!r}: not found"))
    return found


def ab(configs: Sequence[str], *, base_ref: str | None = None, base_python: str | None = None, device: str = "all",
       budget_s: float = Policy.budget_s, warmup_s: float = Policy.warmup_s, timeout_s: float = Policy.timeout_s,
       min_samples: int = Policy.min_samples, threads: int | None = None, variants: str = "", filter: str = "",
       processes: int = DEFAULT_PAIRS, blocks: int = DEFAULT_BLOCKS, looks: Sequence[int] = DEFAULT_LOOKS,
       threshold: float = 0.10, out: str | Path = RESULTS_DIR / "ab",
       label: str = "", seed: int | None = None, argv: Sequence[str] = (), metric: str = "time",
       on_start: Callable[[Path], None] | None = None, on_progress: Callable[[Progress], None] | None = None,
       on_record: Callable[[str, Record], None] | None = None, retries: int = 0) -> AB:
    """Measure configs from the base (git ref and/or Python) and from the working tree, interleaved in at most
    `processes` pairs of worker processes of `blocks` blocks per row; budget_s is each row's per side over
    `processes` pairs. Writes the two runs under `out`; judge them with bench.comparison(result.baseline,
    result.candidate). looks: the pair counts (below `processes`, which is the last look) at which the rows are
    judged as compare judges them (threshold as compare takes it); a row decided there, or left `unsure` with a
    slowdown ruled out, gets no more pairs. metric "instructions": the CPU rows still open after the last look are
    also counted under callgrind, once per side (judge with metric "auto" or "instructions").
    retries: how often a row whose worker crashed or hung on a side is measured again on that side (0: never)."""
    if not base_ref and not base_python:
        raise BenchError(Problem(where="ab", field="--base-ref",
                                 expected="a git ref to compare with (or --base-python)", found="neither"))
    check_label(label)
    if metric not in ("time", "instructions"):
        raise BenchError(Problem(where="ab", field="--metric", expected="time or instructions", found=repr(metric)))
    strict_int(processes, where="ab", field="--processes", minimum=1)
    looks = _looks(looks, processes)
    Rule(threshold=threshold, looks=looks)  # what compare would refuse: refused now, before anything is measured
    if metric == "instructions":
        from bench.measure.instructions import build_library, default_folder

        build_library(default_folder())  # valgrind and a compiler: refused now, not after minutes of measuring
    paths = _configs(configs)
    devices = devices_for(device)
    import torch

    count = threads or torch.get_num_threads()
    chosen = parse_variants(variants)
    pairs = processes
    common = dict(timeout_s=timeout_s, min_samples=min_samples, floor_samples=min(Policy.floor_samples, min_samples))
    job = Job(policy=Policy(**common, budget_s=budget_s / max(pairs, 1), warmup_s=warmup_s),
              cuda_policy=Policy(**common, budget_s=budget_s / max(pairs, 1),
                                 warmup_s=max(warmup_s, CUDA_POLICY.warmup_s)),
              threads=count, devices=tuple(devices), variants=chosen)
    python = _python(base_python) if base_python else sys.executable
    seed = random.SystemRandom().randrange(2**32) if seed is None else seed
    job_id = secrets.token_hex(8)
    settings = dict(configs=[str(s) for s in configs], devices=devices, variants=[v.name for v in chosen],
                    budget_s=budget_s, warmup_s=warmup_s, timeout_s=timeout_s, min_samples=min_samples, threads=threads,
                    processes=pairs, blocks=blocks, looks=list(looks), threshold=threshold, filter=filter,
                    metric=metric)
    with _base_tree(base_ref) as (top, tree, commit):
        base_configs = tuple(_in_tree(p, top, tree, base_ref) for p in paths) if tree else tuple(map(str, paths))
        base = Side(name="baseline", configs=base_configs, filter=filter, python=python,
                    root=str(tree) if tree else (str(top) if top else None))
        cand = Side(name="candidate", configs=tuple(map(str, paths)), filter=filter, root=str(top) if top else None)
        folder = new_run_dir(Path(out), label=label)
        try:
            write_atomic(folder / AB_FILE, json.dumps(dict(id=job_id, base_ref=base_ref, base_commit=commit,
                                                           base_python=base_python, seed=seed, settings=settings),
                                                      indent=2) + "\n")
        except OSError as exc:
            raise cannot_write(folder, exc) from None
        if on_start:
            on_start(folder)
        return _measure(base, cand, job, folder=folder, pairs=pairs, blocks=blocks, looks=looks,
                        threshold=threshold, seed=seed, job_id=job_id,
                        settings=settings, argv=argv, commit=commit, base_ref=base_ref, base_python=base_python,
                        on_progress=on_progress, on_record=on_record, metric=metric, retries=retries)


@contextmanager
def _base_tree(base_ref: str | None) -> Iterator[tuple[Path | None, Path | None, str]]:
    if not base_ref:
        yield None, None, ""
        return
    top = toplevel(Path.cwd())
    with worktree(base_ref, top) as (tree, commit):
        yield top, tree, commit


def _looks(looks: Sequence[int], processes: int) -> tuple[int, ...]:
    """The looks below `processes`, then `processes` itself: the last look is always the most pairs."""
    least = Rule().min_pairs  # fewer pairs can decide no row: a look there would spend its share for nothing
    for look in looks:
        strict_int(look, where="ab", field="--looks", minimum=least)
    return (*sorted({look for look in looks if look < processes}), processes)


def _measure(base: Side, cand: Side, job: Job, *, folder: Path, pairs: int, blocks: int, looks: tuple[int, ...],
             threshold: float, seed: int, job_id: str,
             settings: dict, argv: Sequence[str], commit: str, base_ref: str | None, base_python: str | None,
             on_progress, on_record, metric: str = "time", retries: int = 0) -> AB:
    env = RunEnv.of(envmod.capture(devices=list(job.devices), argv=["bench", *argv], threads=job.threads))
    recorders: dict[str, RunRecorder] = {}
    order = RowOrder()  # both runs list rows in the order either side first measured them
    for side in (base, cand):
        side_env = replace(env, settings=settings, seed=seed,
                           ab=dict(id=job_id, side=side.name, pairs=pairs, blocks=blocks, base_ref=base_ref,
                                   base_python=base_python, looks=list(looks)))
        if side is base and commit:  # the baseline's tree is the base ref's, not the working tree's
            side_env = side_env.with_machine(git_commit=commit[:12])
        (folder / side.name).mkdir()
        # not rewritten after every block (hundreds of them): at most every FLUSH_S, and at the end
        recorders[side.name] = RunRecorder(folder / side.name, side_env, order=order, flush_s=FLUSH_S)

    def record(side: str, r: Record) -> None:
        kept = recorders[side].add(r)
        if on_record:
            on_record(side, kept)

    try:
        rng = random.Random(seed)
        costs, stopped, open_rows = _looked(base, cand, job, looks=looks, blocks=blocks, rng=rng, record=record,
                                            recorders=recorders, threshold=threshold, on_progress=on_progress,
                                            retries=retries)
        # counts only where time left the row open, and only CPU rows: callgrind counts CPU instructions
        counted = [k for k in open_rows if k.device == "cpu"] if metric == "instructions" else []
        if counted:
            for side in (base, cand):
                count_instructions(side, job, on_record=record, only=lambda row: any(k.names(row) for k in counted))
        for side in (base, cand):
            recorders[side.name].set_looks(pairs_per_row=stopped, counted=[k.label for k in counted])
            recorders[side.name].set_worker_cost(costs[side.name].as_dict())
        runs = {name: w.finish(complete=True) for name, w in recorders.items()}
    except BaseException as exc:  # KeyboardInterrupt, a write error: keep what was measured, marked incomplete
        for w in recorders.values():
            try:
                w.finish(complete=False, reason=f"interrupted ({type(exc).__name__})")
            except BaseException:  # noqa: BLE001 - best effort; the first error is the one raised
                pass
        raise
    return AB(baseline=runs[base.name], candidate=runs[cand.name], folder=folder)


def _looked(base: Side, cand: Side, job: Job, *, looks: tuple[int, ...], blocks: int, rng: random.Random,
            record, recorders: dict[str, RunRecorder], threshold: float, on_progress,
            retries: int, spawn: Spawn = Worker) -> tuple[dict, dict[str, int], list[RowKey]]:
    """The pairs up to each look for the rows still open, each look judging them: returns the workers' cost per
    side, the pairs each row got ({row label: pairs}: the look that decided it, or the last), and the rows open
    after the last look."""
    costs: dict = {}
    done, open_rows, stopped = 0, None, {}
    for look in looks:
        only = None if open_rows is None else (lambda row, keys=tuple(open_rows): any(k.names(row) for k in keys))
        more = run_pairs(base, cand, job, pairs=look - done, blocks=blocks, rng=rng, on_record=record,
                         on_progress=on_progress, first_pair=done, only=only, retries=retries, spawn=spawn,
                         versions=(lambda side, v: recorders[side].set_versions(v)) if done == 0 else None)
        costs = {name: costs[name].merged(more[name]) for name in costs} if costs else more
        done = look
        so_far = [recorders[side.name].so_far() for side in (base, cand)]
        still = open_after(*so_far, threshold=threshold, looks=looks, look=look)
        stopped.update({k.label: look for k in (open_rows if open_rows is not None else _keys(*so_far))
                        if k not in still})
        open_rows = still
        if not open_rows:
            break
    stopped.update({k.label: done for k in open_rows or []})
    return costs, stopped, list(open_rows or [])


def _keys(*runs: Run) -> list[RowKey]:
    """Every row either run has, in order."""
    return list(dict.fromkeys(RowKey.of(row) for run in runs for row in run.results.to_dict("records")))


def open_after(base: Run, cand: Run, *, threshold: float, looks: tuple[int, ...], look: int = 0) -> list[RowKey]:
    """The rows two runs of one job leave open at a look: `unsure` while the upper end of their ratio's interval
    reaches 1 + their threshold, so that more pairs may yet make them slower or same, and the rows the job could
    not judge yet (too few pairs, or the machine decided them: more pairs, or their instruction counts, may). Judged
    as compare judges the finished job (paired, the rows' own thresholds, this look's share of the error rates);
    rows without a median on both sides (failed) are left out."""
    rule = Rule(threshold=threshold, looks=looks).at_pairs(look) if look else Rule(threshold=threshold, looks=())
    cmp = compare_runs(base, cand, rule=rule, allow_env_mismatch=True, allow_missing=True, allow_incomplete=True,
                       allow_failed=True)
    return [v.key for v in cmp.verdicts
            if v.verdict == "unsure" and math.isfinite(v.baseline_median_s) and math.isfinite(v.candidate_median_s)
            and (not v.judged or not v.ratio_high < 1 + v.threshold)]
