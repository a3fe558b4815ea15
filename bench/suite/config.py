"""Load config modules: plain Python files that define WORKLOADS, a list of bench.Workload."""
from __future__ import annotations

import importlib.util
import traceback
from dataclasses import dataclass
from pathlib import Path

from bench.errors import BenchError, Problem, one_line
from bench.suite.workload import Workload

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"


@dataclass(frozen=True, kw_only=True)
class Declared:
    """A workload with the config file that declared it (for messages)."""

    workload: Workload
    source: str


def resolve(spec: str) -> Path:
    """A config named by path (`configs/seed.py`, any .py file) or by module name in configs/ (`seed`)."""
    path = Path(spec)
    if path.suffix == ".py" or path.exists():
        if not path.is_file():
            raise BenchError(Problem(where=spec, expected="a config file (.py)", found="no such file"))
        return path
    candidate = CONFIG_DIR / f"{spec}.py"
    if candidate.is_file():
        return candidate
    names = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.py") if not p.name.startswith("_")))
    raise BenchError(Problem(where=spec, expected=f"a .py path or a config name ({names})", found="neither"))


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _import(path: Path) -> object:
    where = _display(path)
    name = f"bench_config_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise BenchError(Problem(where=where, expected="an importable Python file", found="not importable"))
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise BenchError(Problem(where=f"{where}:{exc.lineno}", found=f"syntax error: {exc.msg}")) from None
    except Exception as exc:  # noqa: BLE001 - a config's own bug, reported as a user error with its line
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).resolve() == path.resolve()]
        line = f":{frames[-1].lineno}" if frames else ""
        raise BenchError(Problem(where=f"{where}{line}", found=f"importing the config raised {one_line(exc)}")) from None
    return module


def load(spec: str) -> list[Declared]:
    """Import one config and return its workloads. Raises BenchError naming the file on any problem."""
    path = resolve(spec)
    where = _display(path)
    module = _import(path)
    workloads = getattr(module, "WORKLOADS", None)
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
    return [Declared(workload=w, source=where) for w in workloads]


def load_all(specs: list[str]) -> list[Declared]:
    """Load several configs into one suite, reporting the problems of every file at once."""
    declared: list[Declared] = []
    problems: list[Problem | str] = []
    for spec in specs:
        try:
            declared.extend(load(spec))
        except BenchError as exc:
            problems.extend(exc.problems)
    if problems:
        raise BenchError(*problems)
    return declared
