"""torchvision, importable beside any torch build, and model factories that reach worker processes.

`Factory` wraps a model factory: it pickles by value, and where building the model fails because a package imported
torchvision on the way (timm, transformers' lazy imports) and torchvision could not import, it repairs that (below)
and builds again.

PyPI's torchvision wheels carry a C extension linked against CUDA builds of torch's libraries. Installed beside a
CPU build of torch, the extension cannot load, so its operators are never registered, and `import torchvision` then
fails in torchvision/_meta_registrations.py, which registers fake kernels for `torchvision::nms` and `qnms`
("operator torchvision::nms does not exist"). The models need neither operator: defining their two schemas
(with no kernel) lets torchvision import, and its models run on torch's own operators. This happens only when
the import fails that way and the operators are not registered: a torchvision that imports is never touched.
"""
from __future__ import annotations

import importlib
import importlib.util
import pickle
import sys
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import torch

_SCHEMAS = ("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
            "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
_LIBRARY: list = []  # the Library defining the schemas: kept alive, or torch removes its definitions


def _missing_ops(exc: BaseException) -> bool:
    return "torchvision::" in str(exc) and "does not exist" in str(exc)


def _define_schemas() -> None:
    """Define torchvision::nms and qnms unless something (the extension, an earlier call) already did."""
    if _LIBRARY:
        return
    try:
        torch._C._dispatch_has_kernel_for_dispatch_key("torchvision::nms", "Meta")
        return  # the operator exists (it raises otherwise): its schema is defined already
    except RuntimeError:
        pass
    lib = torch.library.Library("torchvision", "DEF")
    for schema in _SCHEMAS:
        lib.define(schema)
    _LIBRARY.append(lib)


def import_module(name: str) -> ModuleType:
    """importlib.import_module, retried once with the schemas defined when it fails for torchvision's missing ops
    (timm and other packages import torchvision)."""
    try:
        return importlib.import_module(name)
    except RuntimeError as exc:
        if not _missing_ops(exc):
            raise
    for loaded in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[loaded]  # the failed import's half-initialised modules
    _define_schemas()
    return importlib.import_module(name)


def repair() -> bool:
    """Make an installed torchvision importable if it is not (see above); True when that was needed just now, so a
    caller whose code failed importing it (transformers and timm import it lazily) may try again."""
    if _LIBRARY or importlib.util.find_spec("torchvision") is None:
        return False
    try:
        importlib.import_module("torchvision")
        return False
    except RuntimeError as exc:
        if not _missing_ops(exc):
            return False
    import_module("torchvision")
    return True


def torchvision() -> ModuleType:
    """The torchvision module (see the module's docstring for when its two operator schemas are defined first)."""
    return import_module("torchvision")


@dataclass(frozen=True)
class Factory:
    """A model factory that pickles by value (cloudpickle) and unpickles in a worker even where unpickling it
    imports a torchvision that needs its schemas defined first."""

    func: Callable[[], Any]

    def __call__(self) -> Any:
        try:
            return self.func()
        except Exception:  # retried once where torchvision was the cause, else raised as it is
            if not repair():
                raise
        return self.func()

    @property
    def __name__(self) -> str:  # the model's default name comes from the function's
        return getattr(self.func, "__name__", "")

    def __reduce__(self):
        import cloudpickle

        return (_load_factory, (cloudpickle.dumps(self.func),))


def _load_factory(payload: bytes) -> Factory:
    try:
        return Factory(pickle.loads(payload))
    except RuntimeError as exc:
        if not _missing_ops(exc):
            raise
    import_module("torchvision")
    return Factory(pickle.loads(payload))
