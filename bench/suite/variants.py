"""Variants: the settings a workload can be timed under (precision, layout, cuDNN, pass, compile, graphs, threads).

A `Variant` is frozen data with a readable, parseable `name` ("default", "bfloat16+channels_last+cudnn_benchmark",
"threads=1"). `sweep` builds cross products, `parse_variants` reads `--variants`, and `skip_reason` says why a
variant cannot run on a device (a reason, not an error). How a variant is applied to a module and timed is in
bench.measure.apply.
"""
from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from typing import Any

import torch

from bench.errors import BenchError, Problem, strict_int
from bench.suite.inputs import DTYPES

FLAGS = ("channels_last", "cudnn_benchmark", "backward", "compile", "cuda_graph")


@dataclass(frozen=True, kw_only=True)
class Variant:
    """How to run a workload. Every field's default leaves torch and the workload as they are.

    dtype: "" for the workload's own, else a key of bench.suite.inputs.DTYPES. tf32: None leaves torch's
    defaults (cuDNN convs may use TF32, matmuls may not); True/False allows/forbids TF32 for both.
    channels_last: NHWC memory format for a 4-d input and the module. cudnn_benchmark: let cuDNN try its
    algorithms per shape. backward: time forward plus backward (gradients of the input and the
    parameters) instead of the forward alone. compile: torch.compile the module (compiled before timing).
    cuda_graph: capture the forward into a CUDA graph and time its replays. threads: CPU threads, 0 = torch's.
    """

    dtype: str = ""
    tf32: bool | None = None
    channels_last: bool = False
    cudnn_benchmark: bool = False
    backward: bool = False
    compile: bool = False
    cuda_graph: bool = False
    threads: int = 0

    def __post_init__(self) -> None:
        def bad(field: str, expected: str, found: Any) -> BenchError:
            return BenchError(Problem(where="Variant", field=field, expected=expected, found=repr(found)))

        if self.dtype and self.dtype not in DTYPES:
            raise bad("dtype", f"'' (the workload's) or one of {', '.join(DTYPES)}", self.dtype)
        if self.tf32 not in (None, True, False):
            raise bad("tf32", "None, True or False", self.tf32)
        strict_int(self.threads, where="Variant", field="threads", expected="a CPU thread count >= 1, or 0 for torch's")

    @property
    def name(self) -> str:
        parts = [self.dtype] if self.dtype else []
        if self.tf32 is not None:
            parts.append("tf32" if self.tf32 else "no-tf32")
        parts += [flag for flag in FLAGS if getattr(self, flag)]
        if self.threads:
            parts.append(f"threads={self.threads}")
        return "+".join(parts) or "default"

    @property
    def pass_name(self) -> str:
        return "forward+backward" if self.backward else "forward"

    @classmethod
    def parse(cls, text: str, *, where: str = "--variants") -> Variant:
        """The inverse of `name`: "bfloat16+channels_last", "float32+no-tf32", "threads=1", "default"."""
        fields: dict[str, Any] = {}
        for token in filter(None, text.strip().split("+")):
            if token == "default":
                continue
            if token in DTYPES:
                fields["dtype"] = token
            elif token in ("tf32", "no-tf32"):
                fields["tf32"] = token == "tf32"
            elif token in FLAGS:
                fields[token] = True
            elif token.startswith("threads=") and token[8:].isdigit() and int(token[8:]) > 0:
                fields["threads"] = int(token[8:])
            else:
                raise BenchError(Problem(where=where, field=f"variant '{text}'", found=repr(token), expected=(
                    f"'+'-joined parts from: {', '.join(DTYPES)}, tf32, no-tf32, {', '.join(FLAGS)}, threads=N")))
        return cls(**fields)


DEFAULT = Variant()


def sweep(*, dtype=("",), tf32=(None,), channels_last=(False,), cudnn_benchmark=(False,), backward=(False,),
          compile=(False,), cuda_graph=(False,), threads=(0,)) -> tuple[Variant, ...]:
    """Every combination of the given values per field (itertools.product), duplicates removed, in order."""
    names = ("dtype", "tf32", "channels_last", "cudnn_benchmark", "backward", "compile", "cuda_graph", "threads")
    combos = itertools.product(dtype, tf32, channels_last, cudnn_benchmark, backward, compile, cuda_graph, threads)
    return tuple(dict.fromkeys(Variant(**dict(zip(names, values))) for values in combos))


_parse = Variant.parse
SWEEPS: dict[str, tuple[Variant, ...]] = {
    "default": (DEFAULT,),
    "dtypes": (DEFAULT, *sweep(dtype=("bfloat16", "float16"))),
    # One sweep for both devices: what does not apply to a device is skipped there with its reason.
    "standard": tuple(_parse(n) for n in (
        "default", "float32+no-tf32", "float32+tf32", "bfloat16", "float16", "channels_last",
        "bfloat16+channels_last+cudnn_benchmark", "float16+channels_last+cudnn_benchmark", "cuda_graph",
        "backward", "threads=1")),
    "compile": tuple(_parse(n) for n in ("default", "compile", "bfloat16+compile")),
}


def parse_variants(text: str, *, where: str = "--variants") -> tuple[Variant, ...]:
    """A comma-separated list of sweep names (SWEEPS) and variant names; the default variant always comes first."""
    out: list[Variant] = [DEFAULT]
    for item in filter(None, (t.strip() for t in text.split(","))):
        out.extend(SWEEPS[item] if item in SWEEPS else (Variant.parse(item, where=where),))
    return tuple(dict.fromkeys(out))


def compile_supported() -> bool:
    try:
        return bool(torch._dynamo.is_dynamo_supported())
    except Exception:  # noqa: BLE001 - an old or stripped build without dynamo
        return False


def skip_reason(variant: Variant, *, device: str, input_ndim: int, workload_dtype: str) -> str:
    """Why `variant` cannot run on `device` for such a workload, or "" when it can."""
    dtype = variant.dtype or workload_dtype
    if device != "cuda":
        if variant.tf32 is not None:
            return "TF32 is a CUDA setting"
        if variant.cudnn_benchmark:
            return "cudnn.benchmark is a CUDA setting"
        if variant.cuda_graph:
            return "CUDA graph replay needs a CUDA device"
    if device == "cuda" and variant.threads:
        return "a CPU thread count does not apply to CUDA timing"
    if variant.threads > (os.cpu_count() or 1):
        return f"threads={variant.threads} exceeds the {os.cpu_count()} cores here"
    if variant.tf32 is not None and dtype != "float32":
        return f"TF32 applies to float32 only, this variant runs {dtype}"
    if variant.channels_last and input_ndim != 4:
        if not input_ndim:  # input_ndim: the first floating input's (integer and bool inputs are never converted)
            return "channels_last needs a 4-d floating input, this workload has none"
        return f"channels_last needs a 4-d input, this one is {input_ndim}-d"
    if variant.cuda_graph and variant.backward:
        return "CUDA graph replay is timed for the forward pass only"
    if variant.cuda_graph and variant.compile:
        return "torch.compile and a hand-captured CUDA graph are not combined; time them apart"
    if variant.compile and not compile_supported():
        return "torch.compile is not supported on this platform"
    return ""
