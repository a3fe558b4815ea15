"""One suite over a fleet: its N shards submitted through submitit, waited for, merged into one run and recorded.

    import bench.api.fleet as fleet
    done = fleet.run_fleet(["smoke"], shards=4, executor="slurm", out="results",
                           slurm_args={"partition": "gpu", "gpus_per_node": 1, "exclusive": True})
    done.merged.source    # results/<UTC time>/, as one unsharded run would have written it

`executor="slurm"` submits one SLURM array of N tasks (submitit's SlurmExecutor; each task runs `--shard K/N`
of the suite in its own process on the node it gets, and writes its shard's run folder under the job folder);
`executor="local"` runs the same path on this machine through submitit's LocalExecutor, one shard after
another, each waited for before the next starts, so that no two shards' timings compete for the machine.
The job folder is <out>/fleet-<UTC time>[-label]/ (submitit's logs, shard-K/<run>/): not a run folder, so
`report <out>` and `history import <out>` see the merged run only.

A shard that fails or is preempted is reported with its scheduler state; the merge then refuses the set in one
line, unless allow_missing merges the shards there are into a run marked incomplete (the store shows it and
judges no change point on it). With wait=False the job is submitted and its id returned with the command that
merges the shards once they are done.
"""
from __future__ import annotations

import re
import shlex
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.api.history import add_to_history, merge
from bench.errors import BenchError, Problem
from bench.schema import RESULTS_DIR
from bench.store.files import writable_folder
from bench.store.folder import Run, run_dirs_in
from bench.store.history import open_for
from bench.store.writer import check_label
from bench.suite.shard import EXECUTORS

# submitit's states of a job that ran to its end: SLURM's and the local executor's names.
DONE_STATES = frozenset({"COMPLETED", "FINISHED", "DONE"})
DEFAULT_SLURM_TIME_MIN = 60  # submitit's own default is 5 minutes, short for a suite
POLL_S = 2.0


@dataclass(frozen=True)
class ShardJob:
    """What one shard's process runs: `bench run CONFIGS --shard index/count` with the options, into folder."""

    configs: tuple[str, ...]
    index: int
    count: int
    folder: str
    options: Mapping[str, Any] = field(default_factory=dict)
    label: str = ""
    seed: int | None = None

    def __call__(self) -> str:
        """Measure the shard (in the job's process) and return its run folder."""
        from bench.api.running import execute, prepare

        prepared = prepare(list(self.configs), shard=f"{self.index}/{self.count}", **dict(self.options))
        return str(execute(prepared, out=self.folder, label=self.label, seed=self.seed).source)


@dataclass(frozen=True)
class ShardState:
    """One shard's job as the scheduler last reported it; run_dir once it finished with a run folder."""

    index: int
    count: int
    job_id: str
    state: str
    run_dir: str = ""
    error: str = ""

    @property
    def done(self) -> bool:
        return bool(self.run_dir)

    def __str__(self) -> str:
        text = f"shard {self.index}/{self.count} (job {self.job_id}): {self.state}"
        return text + (f": {self.error}" if self.error else "")


@dataclass(frozen=True)
class Fleet:
    """What run_fleet did: the job, each shard's final state, the merged run (None with wait=False), the rows
    added to the store, and the commands that merge and record the shards by hand."""

    executor: str
    job_id: str
    folder: Path
    shards: tuple[ShardState, ...]
    merge_command: str
    merged: Run | None = None
    missing: tuple[int, ...] = ()
    rows_added: int = 0
    store: str = ""
    store_error: str = ""  # the store could not take the merged run (it stays on disk: `history import` adds it)


def parse_slurm_args(pairs: Sequence[str] | Mapping[str, Any]) -> dict[str, Any]:
    """`KEY=VALUE` strings (sbatch's option names, `-` or `_`) as submitit's SLURM parameters: integers as
    integers, true/false as booleans; BenchError naming --slurm-arg for anything else."""
    if isinstance(pairs, Mapping):
        return dict(pairs)
    out: dict[str, Any] = {}
    for pair in pairs:
        match = re.fullmatch(r"([A-Za-z][A-Za-z0-9_-]*)=(.*)", pair)
        if match is None:
            raise BenchError(Problem(where="run", field="--slurm-arg", expected="KEY=VALUE (partition=gpu, "
                                     "gpus_per_node=1, time=120, exclusive=true)", found=repr(pair)))
        value: Any = match.group(2)
        if re.fullmatch(r"\d+", value):
            value = int(value)
        elif value.lower() in ("true", "false"):
            value = value.lower() == "true"
        out[match.group(1).replace("-", "_")] = value
    return out


def _submitit():
    try:
        import submitit
    except ImportError:
        raise BenchError(Problem(where="run", field="--executor", expected="submitit installed (pip install "
                                 "'layerbench[fleet]')", found="no module submitit")) from None
    return submitit


def _executor(kind: str, folder: Path, count: int, slurm_args: Mapping[str, Any]):
    """submitit's executor for `kind`, its logs under folder."""
    submitit = _submitit()
    if kind == "local":
        return submitit.LocalExecutor(folder=folder)
    if shutil.which("sbatch") is None:
        raise BenchError(Problem(where="run", field="--executor slurm", expected="SLURM's sbatch on the PATH "
                                 "(a login node of the cluster)", found="no sbatch here (--executor local runs the "
                                 "shards on this machine)"))
    executor = submitit.SlurmExecutor(folder=folder)
    valid = executor._valid_parameters()
    known = {k: v for k, v in slurm_args.items() if k in valid}
    extra = {k: v for k, v in slurm_args.items() if k not in valid}
    params = dict(time=DEFAULT_SLURM_TIME_MIN, array_parallelism=count, job_name="bench-shards") | known
    try:
        executor.update_parameters(**params, **({"additional_parameters": extra} if extra else {}))
    except (TypeError, ValueError) as exc:
        raise BenchError(Problem(where="run", field="--slurm-arg", expected="parameters submitit's SlurmExecutor "
                                 "takes", found=str(exc).splitlines()[0][:200])) from None
    return executor


def _final(job, shard: ShardJob) -> ShardState:
    state = str(job.state)
    try:
        return ShardState(shard.index, shard.count, str(job.job_id), state, run_dir=str(job.result()))
    except Exception as exc:  # noqa: BLE001 - a failed or preempted job: its error as one line, the set goes on
        return ShardState(shard.index, shard.count, str(job.job_id), state if state not in DONE_STATES else "FAILED",
                          error=_reason(exc))


def _reason(exc: BaseException) -> str:
    """submitit's error of a job as one line: the shard's own exception (the last `Name: message` line of the
    traceback it carries), else the error's first line (a job that produced nothing: its state)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    raised = [line for line in lines if re.match(r"[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b:?", line)]
    return (raised[-1] if raised else lines[0] if lines else type(exc).__name__)[:300]


def _wait(pending: list, on_progress: Callable[[str], None], *, poll_s: float,
          sleep: Callable[[float], None]) -> None:
    """Poll until every job is done, saying each change of a job's state."""
    seen: dict[str, str] = {}
    while True:
        for job, shard in pending:
            state = str(job.state)
            if seen.get(str(job.job_id)) != state:
                seen[str(job.job_id)] = state
                on_progress(f"shard {shard.index}/{shard.count} (job {job.job_id}): {state}")
        if all(job.done() for job, _ in pending):
            return
        sleep(poll_s)


def run_fleet(configs: Sequence[str], *, shards: int, executor: str = "local", out: str | Path = RESULTS_DIR,
              options: Mapping[str, Any] | None = None, slurm_args: Sequence[str] | Mapping[str, Any] = (),
              wait: bool = True, allow_missing: bool = False, store: str | Path | None = None,
              root: str | Path = RESULTS_DIR, label: str = "", seed: int | None = None,
              on_progress: Callable[[str], None] | None = None, poll_s: float = POLL_S,
              sleep: Callable[[float], None] = time.sleep) -> Fleet:
    """Run the suite's `shards` shards through `executor` (see the module's docstring), merge them into one run
    folder under out and add it to the store. options: bench.api.running.prepare's keyword arguments (device,
    budget_s, processes...), the same for every shard."""
    say = on_progress or (lambda text: None)
    check_label(label)
    if executor not in EXECUTORS:
        raise BenchError(Problem(where="run", field="--executor", expected=" or ".join(EXECUTORS),
                                 found=repr(executor)))
    if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
        raise BenchError(Problem(where="run", field="--shards", expected="an integer of 1 or more", found=repr(shards)))
    if not wait and executor == "local":
        raise BenchError(Problem(where="run", field="--no-wait", expected="--executor slurm (the local executor "
                                 "runs the shards one after another from this process)", found="--executor local"))
    from bench.api.running import prepare

    prepare(list(configs), shard=f"1/{shards}", **dict(options or {}))  # a bad suite or option: before submitting
    opened = open_for(store, root=root) if wait else None  # a store that cannot be opened: before submitting
    slurm = parse_slurm_args(slurm_args)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    folder = writable_folder(Path(out), option="--out") / f"fleet-{stamp}{'-' + label if label else ''}"
    jobs = [ShardJob(tuple(configs), k, shards, str(folder / f"shard-{k}"), dict(options or {}), label, seed)
            for k in range(1, shards + 1)]
    engine = _executor(executor, folder / "jobs", shards, slurm)
    command = "layerbench merge " + " ".join(shlex.quote(j.folder) for j in jobs) + f" --out {shlex.quote(str(out))}"
    if executor == "local":
        submitted = []
        for shard in jobs:  # one after another: timings of two shards never compete
            job = engine.submit(shard)
            _wait([(job, shard)], say, poll_s=poll_s, sleep=sleep)
            submitted.append((job, shard))
    else:
        array = engine.map_array(_run_shard, jobs)
        submitted = list(zip(array, jobs))
        job_id = str(array[0].job_id).split("_")[0]
        if not wait:
            return Fleet(executor, job_id, folder, tuple(ShardState(s.index, s.count, str(j.job_id), "SUBMITTED")
                                                         for j, s in submitted), command)
        say(f"submitted SLURM array job {job_id} ({shards} tasks); logs under {folder / 'jobs'}")
        _wait(submitted, say, poll_s=poll_s, sleep=sleep)
    states = tuple(_final(job, shard) for job, shard in submitted)
    return _merge(executor, folder, states, command, out=out, label=label, allow_missing=allow_missing, store=opened)


def _run_shard(shard: ShardJob) -> str:
    """map_array's function: one array task runs its shard."""
    return shard()


def _merge(executor: str, folder: Path, states: tuple[ShardState, ...], command: str, *, out, label: str,
           allow_missing: bool, store) -> Fleet:
    job_id = states[0].job_id.split("_")[0] if executor == "slurm" else ",".join(s.job_id for s in states)
    missing = tuple(s.index for s in states if not s.done)
    if missing and (not allow_missing or len(missing) == len(states)):
        bad = "; ".join(str(s) for s in states if not s.done)
        raise BenchError(Problem(where=str(folder), field="shards", expected=f"all {len(states)} shards finished "
                                 "(--allow-missing merges those that did, marked incomplete)" if not allow_missing
                                 else "at least one finished shard", found=bad))
    runs = [run_dirs_in(s.run_dir)[0] for s in states if s.done]
    merged = merge(runs, out=out, label=label, allow_missing=allow_missing)
    added, problem = 0, ""
    try:
        added = add_to_history(merged, store) if store is not None else 0
    except BenchError as exc:  # the merged run is on disk whatever happens to the store
        problem = str(exc.problems[0])
    return Fleet(executor, job_id, folder, states, command, merged=merged, missing=missing, rows_added=added,
                 store=store.where if store is not None else "", store_error=problem)
