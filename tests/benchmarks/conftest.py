"""Config workloads as pytest-benchmark cases: BENCH_CONFIG picks the config (default smoke), BENCH_DEVICES
the devices (default "cpu,cuda"; CUDA cases carry the `cuda` mark and are skipped where there is none),
BENCH_THREADS the CPU threads (default torch's; 1 on shared runners, where a second thread lets another
process stall a small conv by orders of magnitude).

Each case is one workload on one device, with the id `<workload>-default-<device>-<dtype>`: the names
`bench export --format pytest-benchmark` gives our own runs, so both kinds of file line up in
`pytest-benchmark compare`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
import torch

from bench.suite import config
from bench.suite import plan as planning
from bench.suite.plan import Plan


@dataclass(frozen=True, kw_only=True)
class Case:
    plan: Plan
    device: str

    @property
    def id(self) -> str:
        return f"{self.plan.name}-default-{self.device}-{self.plan.workload.dtype}"


def cases() -> list[Case]:
    spec = os.environ.get("BENCH_CONFIG", "smoke")
    devices = [d.strip() for d in os.environ.get("BENCH_DEVICES", "cpu,cuda").split(",") if d.strip()]
    plans = planning.check(config.load_suite([spec]).declared)
    return [Case(plan=p, device=d) for p in plans for d in devices]


def pytest_generate_tests(metafunc):
    if "case" in metafunc.fixturenames:
        metafunc.parametrize("case", [
            pytest.param(c, id=c.id, marks=[pytest.mark.cuda] if c.device == "cuda" else []) for c in cases()])


@pytest.fixture(autouse=True, scope="session")
def _threads():
    threads = int(os.environ.get("BENCH_THREADS", "0"))
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    yield
    torch.set_num_threads(previous)
