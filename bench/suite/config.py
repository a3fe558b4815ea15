"""Config modules: plain Python files that define WORKLOADS (a list of bench.Workload) and/or MODELS (a list of
bench.Model, each expanded into the workloads of its distinct layers and the whole model), and optionally
VARIANTS (variants or variant names to run too) and PEAKS (roofs to use instead of probing them).

Each config module is imported exactly once per command: `load_config` returns everything the command needs
from it as a frozen `Config`.
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import BenchError, Problem, not_a_file, one_line
from bench.suite.variants import Variant
from bench.suite.workload import Declared, Workload

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"


@dataclass(frozen=True, kw_only=True)
class Config:
    """One config module, imported once. where: its path as shown in messages ("<python>" for workloads given
    in code). peaks: its PEAKS as written (checked where used), or None."""

    where: str
    workloads: tuple[Any, ...]
    variants: tuple[Variant, ...] = ()
    peaks: Any = None
    path: str = ""  # the file, absolute ("" for workloads given in code): what a worker process imports again

    @property
    def declared(self) -> list[Declared]:
        return [Declared(workload=w, source=self.where) for w in self.workloads]


@dataclass(frozen=True, kw_only=True)
class Suite:
    """The configs of one command, in order: their workloads and their VARIANTS together."""

    configs: tuple[Config, ...]

    @property
    def declared(self) -> list[Declared]:
        return [d for c in self.configs for d in c.declared]

    @property
    def variants(self) -> tuple[Variant, ...]:
        return tuple(dict.fromkeys(v for c in self.configs for v in c.variants))


def resolve(spec: str) -> Path:
    """A config named by path (`configs/seed.py`, any .py file) or by module name in configs/ (`seed`)."""
    path = Path(spec)
    if path.suffix == ".py" or path.exists():
        if not path.is_file():
            raise BenchError(Problem(where=spec, expected="a config file (.py)", found=not_a_file(path)))
        return path
    candidate = CONFIG_DIR / f"{spec}.py"
    if candidate.is_file():
        return candidate
    names = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.py") if not p.name.startswith("_")))
    raise BenchError(Problem(where=spec, expected=f"a .py path or a config name ({names})", found="neither"))


def display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _import(path: Path) -> object:
    where = display(path)
    name = f"bench_config_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise BenchError(Problem(where=where, expected="an importable Python file", found="not importable"))
    module = importlib.util.module_from_spec(spec)
    printed = io.StringIO()  # a config's prints go to stderr: stdout carries a command's output (`list --json`)
    try:
        with contextlib.redirect_stdout(printed):
            spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise BenchError(Problem(where=f"{where}:{exc.lineno}", found=f"syntax error: {exc.msg}")) from None
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - a config's own bug, reported as a user error with its line
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).resolve() == path.resolve()]
        line = f":{frames[-1].lineno}" if frames else ""
        raise BenchError(Problem(where=f"{where}{line}",
                                 found=f"importing the config raised {one_line(exc)}")) from None
    finally:
        sys.stderr.write(printed.getvalue())
    return module


def _variants(module: object, where: str) -> tuple[Variant, ...]:
    declared = getattr(module, "VARIANTS", ())
    if not isinstance(declared, (list, tuple)):
        raise BenchError(Problem(where=where, field="VARIANTS", expected="a list of bench.suite.variants.Variant",
                                 found=type(declared).__name__))
    out = []
    for i, v in enumerate(declared):
        if isinstance(v, str):
            v = Variant.parse(v, where=f"{where}: VARIANTS[{i}]")
        if not isinstance(v, Variant):
            raise BenchError(Problem(where=where, field=f"VARIANTS[{i}]",
                                     expected="a bench.suite.variants.Variant or a variant name",
                                     found=type(v).__name__))
        out.append(v)
    return tuple(out)


def _models(module: object, where: str) -> list[Workload]:
    """MODELS, each expanded into its layers' workloads and the whole model's (bench.suite.models)."""
    from bench.suite.models import Model, expand_model  # capture is imported by configs that use it only

    declared = getattr(module, "MODELS", ())
    if not isinstance(declared, (list, tuple)):
        raise BenchError(Problem(where=where, field="MODELS", expected="a list of bench.Model",
                                 found=type(declared).__name__))
    out: list[Workload] = []
    for i, m in enumerate(declared):
        if not isinstance(m, Model):
            raise BenchError(Problem(where=where, field=f"MODELS[{i}]", expected="a bench.Model",
                                     found=type(m).__name__))
        out.extend(expand_model(m, where))
    return out


def load_config(spec: str, *, require_workloads: bool = True) -> Config:
    """Import one config module (once) and return its WORKLOADS, VARIANTS and PEAKS. BenchError naming the file
    on any problem. require_workloads=False: a module that only gives PEAKS is fine."""
    path = resolve(spec)
    where = display(path)
    module = _import(path)
    workloads = getattr(module, "WORKLOADS", None if require_workloads and not hasattr(module, "MODELS") else [])
    if workloads is None:
        raise BenchError(Problem(where=where, field="WORKLOADS",
                                 expected="a module-level list of bench.Workload", found="no WORKLOADS defined"))
    if not isinstance(workloads, (list, tuple)):
        raise BenchError(Problem(where=where, field="WORKLOADS", expected="a list of bench.Workload",
                                 found=type(workloads).__name__))
    problems = [
        Problem(where=where, field=f"WORKLOADS[{i}]", expected="a bench.Workload", found=type(w).__name__)
        for i, w in enumerate(workloads) if not isinstance(w, Workload)
    ]
    if problems:
        raise BenchError(*problems)
    workloads = [*workloads, *_models(module, where)]
    return Config(where=where, workloads=tuple(workloads), variants=_variants(module, where),
                  peaks=getattr(module, "PEAKS", None), path=str(path.resolve()))


def from_workloads(workloads: Sequence[Workload], *, where: str = "<python>") -> Config:
    """Workloads given in code (the Python API) as a Config."""
    bad = [Problem(where=where, field=f"workloads[{i}]", expected="a bench.Workload", found=type(w).__name__)
           for i, w in enumerate(workloads) if not isinstance(w, Workload)]
    if bad:
        raise BenchError(*bad)
    return Config(where=where, workloads=tuple(workloads))


def load_suite(specs: Sequence[str]) -> Suite:
    """Load several configs into one suite, reporting the problems of every file at once."""
    configs: list[Config] = []
    problems: list[Problem | str] = []
    for spec in specs:
        try:
            configs.append(load_config(spec))
        except BenchError as exc:
            problems.extend(exc.problems)
    if problems:
        raise BenchError(*problems)
    return Suite(configs=tuple(configs))


def matches(workload: Workload, pattern: str) -> bool:
    """`--filter`: a comma-separated list of name parts or tags, case-insensitive; any one matching selects."""
    parts = [p.strip().lower() for p in pattern.split(",") if p.strip()]
    name, tags = workload.name.lower(), {t.lower() for t in workload.tags}
    return not parts or any(p in name or p in tags for p in parts)
