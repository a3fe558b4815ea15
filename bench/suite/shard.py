"""One suite over a fleet: `--shard K/N` keeps the K-th of N disjoint slices of the plans, balanced by cost.

No scheduler of our own: a SLURM job array, a Kubernetes indexed job or a CI matrix starts N copies of
`bench run --shard K/N`, and `bench merge` joins their run folders (docs/history.md).

The slices are decided from the plans alone, so every machine computes the same ones without talking to the
others: workloads sorted by planned cost (largest first, ties by name), each given to the slice with the least
cost so far (longest-processing-time first, Graham 1969: within 4/3 of the best balance). The order of the
workloads in the config does not matter; adding a workload may move others to another slice.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from bench.errors import BenchError, Problem
from bench.suite.plan import Plan

# What runs all N slices from one command (`run --shards N --executor`, bench.api.fleet): one SLURM array, or this
# machine, one slice after another.
EXECUTORS = ("local", "slurm")
# Nominal CPU rates for a call's planned cost: the slices need relative costs, not predictions.
NOMINAL_FLOPS_PER_S = 50e9
NOMINAL_BYTES_PER_S = 10e9


@dataclass(frozen=True)
class Shard:
    """The index-th (1-based) of count slices."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """"K/N" with 1 <= K <= N; BenchError naming --shard otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if match is None or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise BenchError(Problem(where="run", field="--shard", expected="K/N with 1 <= K <= N (2/4: the second of "
                                 "four slices)", found=repr(text)))
    return Shard(int(match.group(1)), int(match.group(2)))


def planned_cost_s(plan: Plan, *, fixed_s: float, calls: int) -> float:
    """A row's planned seconds: the fixed warm-up and sampling budget, plus `calls` calls at nominal rates (a
    workload whose call outlasts the budget takes longer than the budget)."""
    return fixed_s + calls * (plan.flops / NOMINAL_FLOPS_PER_S + plan.bytes_moved / NOMINAL_BYTES_PER_S)


def assign(plans: Sequence[Plan], count: int, *, fixed_s: float = 1.0, calls: int = 10) -> list[list[Plan]]:
    """The suite's plans in `count` slices (each in the suite's order), balanced by planned cost."""
    slices: list[list[Plan]] = [[] for _ in range(count)]
    load = [0.0] * count
    for plan in sorted(plans, key=lambda p: (-planned_cost_s(p, fixed_s=fixed_s, calls=calls), p.name)):
        least = min(range(count), key=lambda i: (load[i], i))
        slices[least].append(plan)
        load[least] += planned_cost_s(plan, fixed_s=fixed_s, calls=calls)
    order = {p.name: i for i, p in enumerate(plans)}
    return [sorted(s, key=lambda p: order[p.name]) for s in slices]


def select(plans: Sequence[Plan], shard: Shard, **cost) -> list[Plan]:
    """The plans of one shard; BenchError when it would be empty (more shards than workloads)."""
    if shard.count > len(plans):
        raise BenchError(Problem(where="run", field="--shard", expected=f"at most {len(plans)} shards (one workload "
                                 "each at least)", found=f"{shard} of {len(plans)} workloads"))
    return assign(plans, shard.count, **cost)[shard.index - 1]
