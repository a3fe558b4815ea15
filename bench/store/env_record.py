"""env.json as a record: what a run folder says about the machine, the settings and the run's own course.

`RunEnv` is the one writer's view of env.json (bench.store.recorder writes it); readers keep reading the JSON
object as a mapping (`Run.env`), so an env.json of any version loads. Keys this version does not know (an older
file's, a newer bench's) are kept in `other` and written back as they were, never refused.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timezone
from typing import Any

from bench.schema import SCHEMA_VERSION

# env.json format history (the "env_version" key; a file without it is version 1):
# 1: a free JSON object: the machine as bench.measure.env.capture saw it, the settings, schema_version and
#    complete, and whatever the command that wrote it added (seed, workers, shard, ab, merged_from, label).
# 2: the same keys, written by one record (RunEnv below) with env_version; the run's own course (seed, worker
#    cost, the pairs each row of ab got, versions the workers ran, completeness) is set through the recorder only.
ENV_SCHEMA_VERSION = 2

# The machine part, written by bench.measure.env.capture (python, torch and cuda are replaced by the versions
# the worker processes really ran, which differ under `ab --base-python`).
MACHINE_KEYS = ("time_utc", "host", "argv", "git_commit", "git_branch", "python", "platform", "torch", "cuda",
                "cudnn", "cpu_name", "cpu_count", "load_avg_1m", "threads", "cuda_device", "devices",
                "machine_keys", "allow_tf32_matmul", "allow_tf32_cudnn", "float32_matmul_precision",
                "cudnn_benchmark", "cudnn_deterministic", "speed_probe")
WORKER_VERSIONS = ("python", "torch", "cuda")


def _now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True, kw_only=True)
class RunEnv(Mapping):
    """One run's env.json. machine: bench.measure.env.capture's keys; settings: what was measured and how
    (rounds pool and shards merge only when these agree); cache: warm or cold; label: the run folder's label;
    shard: {index, count, suite} of `run --shard`; ab: the A/B job's side, pairs, blocks, looks, the pairs each row
    got and the rows counted;
    merged_from: the shards a merged run joins; seed: the schedule's random order; workers: the worker
    processes' cost (bench.measure.workers); complete, finished_utc, incomplete_reason: how the run ended;
    other: keys this version does not know, kept as they were. Read as a mapping it is env.json's object."""

    machine: Mapping[str, Any] = field(default_factory=dict)
    settings: Mapping[str, Any] | None = None
    cache: str | None = None
    label: str = ""
    shard: Mapping[str, Any] | None = None
    ab: Mapping[str, Any] | None = None
    merged_from: tuple[Mapping[str, Any], ...] | None = None
    seed: int | None = None
    workers: Mapping[str, Any] | None = None
    complete: bool = False
    finished_utc: str = ""
    incomplete_reason: str = ""
    other: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, env: Mapping[str, Any]) -> RunEnv:
        """The record of an env.json object (or of capture's dict plus settings); unknown keys go to `other`,
        the versions are the writer's (this bench's) whatever the mapping said."""
        names = {f.name for f in fields(cls)} - {"machine", "other"}
        given = {k: v for k, v in env.items() if k in names}
        if isinstance(given.get("merged_from"), list):
            given["merged_from"] = tuple(given["merged_from"])
        for name in ("label", "finished_utc", "incomplete_reason"):  # texts: null is the empty text
            if name in given and given[name] is None:
                del given[name]
        return cls(machine={k: env[k] for k in MACHINE_KEYS if k in env}, **given,
                   other={k: v for k, v in env.items()
                          if k not in names and k not in MACHINE_KEYS and k not in ("schema_version", "env_version")})

    def to_dict(self) -> dict[str, Any]:
        """env.json's object: the versions, completeness, the machine, then what is set (unset keys left out)."""
        out: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "env_version": ENV_SCHEMA_VERSION,
                               "complete": self.complete, **self.machine}
        for name in ("cache", "settings", "shard", "ab", "merged_from", "label", "seed", "workers", "finished_utc",
                     "incomplete_reason"):
            value = getattr(self, name)
            if value is not None and value != "":
                out[name] = list(value) if isinstance(value, tuple) else value
        out.update(self.other)
        return out

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())

    def with_machine(self, **values: Any) -> RunEnv:
        """The machine part with these keys replaced (the git commit of the tree measured, say)."""
        return replace(self, machine={**self.machine, **values})

    def with_versions(self, versions: Mapping[str, Any]) -> RunEnv:
        """The python, torch and cuda the worker processes ran (another interpreter with `ab --base-python`)."""
        return self.with_machine(**{k: versions[k] for k in WORKER_VERSIONS if k in versions})

    def with_looks(self, *, pairs_per_row: Mapping[str, int], counted: list[str]) -> RunEnv:
        """ab: the pairs each row got ({row label: pairs}) and the rows whose instructions were counted."""
        return replace(self, ab={**(self.ab or {}), "pairs_per_row": dict(pairs_per_row), "counted": list(counted)})

    def finished(self, *, complete: bool, reason: str = "") -> RunEnv:
        return replace(self, complete=complete, finished_utc=_now_utc(), incomplete_reason=reason)
