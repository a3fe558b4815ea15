"""The smoke suite with a controlled slowdown, for the gate's evidence (tests/perf/gate_eval.py).

Every workload is wrapped the same way; EVERY maps a workload to k: every k-th call of it also makes one extra,
complete call, so its time per call grows by 1/k of a call (10% with k=10, 25% with k=4, 100% with k=1). The
evidence commits a change of EVERY on top of a base commit and gates it with `bench ab --base-ref`.
"""
from functools import partial
from pathlib import Path

from torch import nn

from bench import Workload
from bench.suite.config import load_config

EVERY: dict[str, int] = {}


class ExtraWork(nn.Module):
    """The wrapped layer; every `every`-th call (0: never) also makes one extra call of this wrapper."""

    def __init__(self, inner: nn.Module, every: int) -> None:
        super().__init__()
        self.inner, self.period = inner, every or 1 << 62  # the same bookkeeping whether or not it injects
        self.state = {"calls": 0, "nested": False}  # a dict: nn.Module.__setattr__ would cost ~1 us per call

    def forward(self, x):
        state = self.state
        if not state["nested"]:
            state["calls"] += 1
            if state["calls"] % self.period == 0:
                state["nested"] = True
                try:
                    self(x)  # the extra call, through nn.Module.__call__ like the timed one
                finally:
                    state["nested"] = False
        return self.inner(x)


def _build(make, every: int) -> nn.Module:
    return ExtraWork(make(), every)


WORKLOADS = [Workload(name=w.name, module=partial(_build, w.module, EVERY.get(w.name, 0)), input_shape=w.input_shape,
                      dtype=w.dtype, tags=w.tags)
             for w in load_config(str(Path(__file__).resolve().parents[2] / "configs" / "smoke.py")).workloads]
