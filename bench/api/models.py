"""`bench.layers`: a model's distinct layers and the whole model as workloads, ready for bench.run."""
from __future__ import annotations

from typing import Any

from bench.errors import BenchError, Problem
from bench.measure.env import available_devices
from bench.measure.memory import free_bytes
from bench.suite.models import expand
from bench.suite.plan import plan_one
from bench.suite.workload import Workload


def layers(model: Any, inputs: Any, *, name: str | None = None, depth: int | None = None, dtype: str = "float32",
           model_kwargs: dict | None = None, input_dtypes: tuple[str, ...] = ()) -> list[Workload]:
    """One workload per distinct innermost layer of the model (kind "layer", with its count and paths) and one for
    the whole model (kind "model"), captured on the meta device: nothing is allocated and no weights are read.

    model: a zero-argument factory, or "module.path:callable" (model_kwargs: its keyword arguments); inputs: a
    shape, a list of shapes or bench.TensorSpec (input_dtypes: each shape's dtype, default float32; integer inputs
    draw values valid for the embeddings that read them); name: the model's name in workload names (default: the
    factory's); depth: None for the innermost modules, N to stop at modules N levels deep. BenchError (one line
    naming the model) for a spec that does not import, a factory that raises, inputs the forward refuses, or a
    model whose planned forward needs more memory than any device here has free."""
    workloads = expand(model, inputs, name=name, depth=depth, dtype=dtype, model_kwargs=model_kwargs,
                       input_dtypes=input_dtypes)
    whole = workloads[-1]
    plan = plan_one(whole, "model")
    free = max(free_bytes(d) for d in available_devices())
    if plan.peak_bytes > free:
        raise BenchError(Problem(where="model", workload=whole.name, field="inputs",
                                 expected=f"a forward that fits in memory ({free / 2**30:.2f} GiB free)",
                                 found=f"a planned peak of {plan.peak_bytes / 2**30:.2f} GiB at {whole.inputs_text}"))
    return workloads
