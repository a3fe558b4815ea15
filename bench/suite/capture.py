"""From a model to its layers: one forward on the meta device with hooks records every innermost module call.

An innermost call is a module call during which none of the module's (hooked) submodules runs: a leaf such as a
Conv2d, or a module whose own parts are used through functional calls (nn.MultiheadAttention). `depth` hooks only
modules up to that depth, so a container at that depth (a transformer block) counts as one layer. Each call is
recorded with its path, type, configuration (extra_repr and the module's plain attributes), parameter shapes and
input and output specs; a module called twice counts twice. Calls alike in type, configuration, parameters and
inputs become one `Layer` with a count and its paths. Nothing is allocated: the model is built on the meta device.

A layer's factory (`LayerFactory`) rebuilds that layer alone with random weights, never the model's weights.
"""
from __future__ import annotations

import copy
import functools
import hashlib
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_leaves

from bench.errors import BenchError, Problem, one_line
from bench.suite.inputs import DEFAULT_HIGH, TensorSpec, plain
from bench.suite.workload import DTYPES, LayerOrigin, Workload

EMBEDDINGS = (nn.Embedding, nn.EmbeddingBag)


@dataclass(frozen=True)
class Call:
    """One innermost module call of the model's forward."""

    path: str
    module_type: str
    config: str
    params: tuple[tuple[str, tuple[int, ...], str], ...]
    inputs: tuple[Any, ...]
    kwargs: tuple[tuple[str, Any], ...]
    outputs: tuple[TensorSpec, ...]

    @property
    def key(self) -> tuple:
        """What makes two calls the same workload: type, configuration, parameters and inputs."""
        return (self.module_type, self.config, self.params, self.inputs, self.kwargs)


@dataclass(frozen=True)
class Layer:
    """Identical calls, as one workload: the first call stands for them all."""

    call: Call
    count: int
    paths: tuple[str, ...]


class Uncapturable(Exception):
    """A module call that cannot become a workload: its inputs are not tensors and plain values, or are of a dtype
    its layer does not take. expected and found: the Problem's."""

    def __init__(self, expected: str, found: str) -> None:
        super().__init__(found)
        self.expected, self.found = expected, found


def _config(module: nn.Module) -> str:
    """extra_repr and the module's plain public attributes (its constructor state): enough to tell layers apart."""
    state = []
    for key, value in sorted(vars(module).items()):
        value = tuple(value) if isinstance(value, list) else value
        if not key.startswith("_") and key != "training" and plain(value):
            state.append(f"{key}={value!r}")
    return f"{module.extra_repr()} | {', '.join(state)}"


def _params(module: nn.Module) -> tuple:
    tensors = [*module.named_parameters(), *module.named_buffers()]
    return tuple((name, tuple(t.shape), str(t.dtype).removeprefix("torch.")) for name, t in tensors)


def _spec(value: Any, where: str, high: int) -> Any:
    if isinstance(value, torch.Tensor):
        return TensorSpec.of(value, low=0, high=high)
    value = tuple(value) if isinstance(value, list) and plain(tuple(value)) else value
    if plain(value):
        return value
    raise Uncapturable("layers whose inputs are tensors and plain values (a smaller depth makes the parent the "
                       "layer)", f"module '{where}' takes a {type(value).__name__} input")


def _check_dtypes(path: str, module: nn.Module, args: tuple) -> None:
    """A torch.nn layer with floating weights (not an embedding) fed an integer or bool tensor: the meta device
    does not check dtypes for every operator (Linear on int64 returns float32 there), so it is checked here."""
    if isinstance(module, EMBEDDINGS) or not type(module).__module__.startswith("torch.nn"):
        return
    weights = [p for p in module.parameters(recurse=False) if p.is_floating_point()]
    bad = next((t for t in args if isinstance(t, torch.Tensor) and not t.is_floating_point()), None)
    if weights and bad is not None:
        raise Uncapturable("floating inputs for layers with floating weights (--input-dtype float32)",
                           f"module '{path or type(module).__name__}' ({type(module).__name__}) is fed "
                           f"{TensorSpec.of(bad).text()}")


def _integer_high(model: nn.Module, specs: Sequence[TensorSpec]) -> int:
    """The integer inputs' values are drawn below this: the narrowest range given, else the smallest embedding."""
    given = [s.range[1] for s in specs if isinstance(s, TensorSpec) and s.integer and s.high is not None]
    sizes = [m.num_embeddings for m in model.modules() if isinstance(m, EMBEDDINGS)]
    return min(given or sizes or [DEFAULT_HIGH])


def record_calls(model: nn.Module, args: list, kwargs: dict, *, depth: int | None, high: int) -> tuple[list[Call], Any]:
    """Run model(*args, **kwargs) with hooks on every module up to `depth`; the innermost calls, and the output."""
    stack: list[list] = []  # [path, module, ran_a_child, (inputs, kwargs) or Uncapturable] per running module
    calls: list[Call] = []
    handles = []

    def pre(path, module, a, kw):
        if stack:
            stack[-1][2] = True
        _check_dtypes(path, module, a)
        cap = min(high, module.num_embeddings) if isinstance(module, EMBEDDINGS) else high
        try:
            described = (tuple(_spec(v, path, cap) for v in a),
                         tuple((k, _spec(v, path, cap)) for k, v in sorted(kw.items())))
        except Uncapturable as exc:  # a problem only if the module turns out innermost (DenseNet's list inputs)
            described = exc
        stack.append([path, module, False, described])

    def post(module, a, kw, out):
        path, module, ran_child, described = stack.pop()
        if not ran_child and isinstance(described, Uncapturable):
            raise described
        if not ran_child:
            inputs, kwargs_ = described
            outs = tuple(TensorSpec.of(t) for t in tree_leaves(out) if isinstance(t, torch.Tensor))
            calls.append(Call(path=path, module_type=type(module).__name__, config=_config(module),
                              params=_params(module), inputs=inputs, kwargs=kwargs_, outputs=outs))

    for path, module in model.named_modules():
        if depth is not None and path and path.count(".") + 1 > depth:
            continue
        handles.append(module.register_forward_pre_hook(functools.partial(pre, path), with_kwargs=True))
        handles.append(module.register_forward_hook(post, with_kwargs=True))
    try:
        with torch.no_grad():
            out = model(*args, **kwargs)
    except Uncapturable:
        raise
    except Exception as exc:  # noqa: BLE001 - any error of the user's forward becomes one line naming its module
        path, module = (stack[-1][0], stack[-1][1]) if stack else ("", model)
        raise _Failed(path, type(module).__name__, exc) from None
    finally:
        for h in handles:
            h.remove()
    return calls, out


class _Failed(Exception):
    """The forward raised while the module at path (of type module_type) ran."""

    def __init__(self, path: str, module_type: str, exc: BaseException) -> None:
        super().__init__(path)
        self.path, self.module_type, self.exc = path, module_type, exc


def group(calls: Sequence[Call]) -> list[Layer]:
    """Identical calls as one Layer each, in the order of their first call; paths unique, in call order."""
    by_key: dict[tuple, list[Call]] = {}
    for c in calls:
        by_key.setdefault(c.key, []).append(c)
    return [Layer(call=cs[0], count=len(cs), paths=tuple(dict.fromkeys(c.path for c in cs))) for cs in by_key.values()]


# ---------------------------------------------------------------- names
def workload_name(model: str, path: str) -> str:
    """`resnet18.layer1.0.conv1`: the model's name and the module path, valid under NAME_PATTERN; a name over 100
    characters keeps its first 91 and a hash of the whole (stable from run to run)."""
    raw = f"{model}.{path}" if path else model
    text = re.sub(r"[^A-Za-z0-9._+-]", "-", raw)
    text = text if text[:1].isalnum() else "m" + text
    if len(text) > 100:
        text = f"{text[:91]}-{hashlib.sha1(raw.encode()).hexdigest()[:8]}"
    return text


def model_name(factory: Any) -> str:
    """A model's default name: its factory's (resnet18), else "model"."""
    func = factory.func if isinstance(factory, functools.partial) else factory
    name = getattr(func, "__name__", "") or ""
    return workload_name("model" if not name or name == "<lambda>" else name, "")


# ---------------------------------------------------------------- the layer's own factory
_LAST_MODEL: list = []  # (factory, the model it built on meta): the layers of one model are built one after another


def _meta_model(factory: Callable[[], nn.Module]) -> nn.Module:
    """The model on the meta device, built once for consecutive layers of the same factory (callers copy from it)."""
    if not _LAST_MODEL or _LAST_MODEL[0][0] is not factory:
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _LAST_MODEL[:] = [(factory, factory())]
    return _LAST_MODEL[0][1]


@dataclass(frozen=True)
class LayerFactory:
    """Builds the submodule at `path` of the model `model_factory` builds, alone, with seeded random weights.

    The model is built on the meta device (nothing allocated), the submodule materialised where the caller's default
    device is and initialised: reset_parameters (and reset_running_stats) where the module has them, else a normal
    init. A submodule holding buffers that no such method sets (position ids, masks) is copied out of a model built
    for real instead, so its buffers keep the values the constructor gave them. Pickles when model_factory does."""

    model_factory: Callable[[], nn.Module]
    path: str

    def __call__(self) -> nn.Module:
        device = torch.get_default_device()
        layer = copy.deepcopy(_meta_model(self.model_factory).get_submodule(self.path))
        if device.type == "meta":
            return layer
        resettable = all(hasattr(m, "reset_parameters") or hasattr(m, "reset_running_stats")
                         for m in layer.modules() if list(m.buffers(recurse=False)))
        if not resettable:
            return copy.deepcopy(self.model_factory().get_submodule(self.path))
        layer = layer.to_empty(device=device)
        with torch.no_grad():
            for p in layer.parameters():
                p.normal_(0, 0.02) if p.is_floating_point() else p.zero_()
            for m in layer.modules():
                reset = getattr(m, "reset_parameters", None) or getattr(m, "reset_running_stats", None)
                if callable(reset):
                    reset()
        return layer


# ---------------------------------------------------------------- a model's workloads
def capture(factory: Callable[[], nn.Module], inputs: Sequence[TensorSpec], *, name: str, depth: int | None = None,
            dtype: str = "float32") -> tuple[list[Layer], nn.Module, tuple[TensorSpec, ...]]:
    """Build the model on meta and record its innermost calls, grouped; also the model (on meta) and its inputs with
    their integer ranges settled. BenchError (one line naming the model and the module) when the factory raises,
    the forward fails, or a call cannot be described."""
    def refuse(field: str, expected: str, found: str) -> BenchError:
        return BenchError(Problem(where="model", workload=name, field=field, expected=expected, found=found))

    try:
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = factory()
    except Exception as exc:  # noqa: BLE001 - the user's factory; say how it failed, in one line
        raise refuse("factory", "a callable that builds an nn.Module", f"calling it raised {one_line(exc)}") from None
    if not isinstance(model, nn.Module):
        raise refuse("factory", "a callable that returns an nn.Module", f"it returned {type(model).__name__}")
    model = model.to(dtype=DTYPES[dtype]).eval()
    high = _integer_high(model, inputs)
    inputs = tuple(TensorSpec(s.shape, s.dtype, s.range[0], min(high, s.range[1]) if s.high is None else s.high)
                   if s.integer else s for s in inputs)
    args = [s.meta(DTYPES[dtype]) for s in inputs]
    try:
        calls, _ = record_calls(model, args, {}, depth=depth, high=high)
    except Uncapturable as exc:
        raise refuse("inputs", exc.expected, exc.found) from None
    except _Failed as failed:
        raise _forward_problem(factory, inputs, name, failed, dtype) from None
    if not calls:
        raise refuse("factory", "a model whose forward calls at least one module", "no module ran")
    return group(calls), model, inputs


def _forward_problem(factory, inputs, name: str, failed: _Failed, dtype: str) -> BenchError:
    """The meta forward failed: a real forward at batch 1 tells a bad input or forward (it fails too) from a forward
    that cannot run on meta (data-dependent control flow: it runs for real), which is refused."""
    field = f"module '{failed.path or failed.module_type}'"
    shown = "; ".join(s.text() for s in inputs)
    try:
        torch.manual_seed(0)
        model = factory().to(dtype=DTYPES[dtype]).eval()
        small = [TensorSpec((1, *s.shape[1:]) if s.shape else s.shape, s.dtype, s.low, s.high) for s in inputs]
        with torch.no_grad():
            model(*[s.make("cpu", DTYPES[dtype]) for s in small])
    except Exception:  # noqa: BLE001 - it fails for real too: the meta error is the user's problem
        return BenchError(Problem(where="model", workload=name, field=field,
                                  expected=f"a forward that runs on inputs {shown}", found=one_line(failed.exc)))
    return BenchError(Problem(where="model", workload=name, field=field,
                              expected="a forward that runs on the meta device (no data-dependent control flow)",
                              found=f"it runs for real but not on meta: {one_line(failed.exc)}"))


def model_workloads(factory: Callable[[], nn.Module], inputs: Sequence[TensorSpec], *, name: str,
                    depth: int | None = None, dtype: str = "float32") -> list[Workload]:
    """One workload per distinct layer (kind "layer", with count and paths) and one for the whole model (kind
    "model"), all in `dtype`; names `<name>.<first path>` and `<name>`."""
    layers, model, inputs = capture(factory, inputs, name=name, depth=depth, dtype=dtype)
    out: list[Workload] = []
    taken = {name}
    for layer in layers:
        c = layer.call
        base = workload_name(name, c.path or "self")
        label, n = base, 2
        while label in taken:  # two groups whose paths differ only in characters the name rule replaces
            label, n = f"{base[:96]}-{n}", n + 1
        taken.add(label)
        origin = LayerOrigin(model=name, kind="layer", count=layer.count, paths=layer.paths, module_type=c.module_type)
        module = LayerFactory(factory, c.path) if c.path else factory
        out.append(Workload(name=label, module=module, inputs=c.inputs, kwargs=c.kwargs, dtype=dtype, origin=origin,
                            note=f"{layer.count} call(s) of {c.module_type}"))
    origin = LayerOrigin(model=name, kind="model", count=1, paths=("",), module_type=type(model).__name__)
    out.append(Workload(name=name, module=factory, inputs=tuple(inputs), dtype=dtype, origin=origin,
                        note=f"the whole {type(model).__name__}"))
    return out
