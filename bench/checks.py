"""Strict checks of the numbers a user gives in code, a config or a file: one rule and one message per kind.

A shared leaf. Python's bool is an int (True == 1), so every check here refuses a bool: `processes=True` is a
mistake, not one process. The raising checks give one BenchError(Problem(...)) naming where, the field, what was
expected and what was found (its repr, cut at 80 characters); the predicates serve callers that collect
problems or raise their own error.
"""
from __future__ import annotations

import math

from bench.errors import BenchError, Problem

FOUND_CHARS = 80  # a found value longer than this is cut: the message stays one line


def is_int(value: object, *, minimum: int | None = None) -> bool:
    """An int (never a bool), at least `minimum` when given."""
    return not isinstance(value, bool) and isinstance(value, int) and (minimum is None or value >= minimum)


def is_number(value: object) -> bool:
    """A finite int or float (never a bool)."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def _refuse(value: object, *, where: str, field: str, expected: str, workload: str) -> BenchError:
    return BenchError(Problem(where=where, workload=workload, field=field, expected=expected,
                              found=repr(value)[:FOUND_CHARS]))


def strict_int(value: object, *, where: str, field: str, minimum: int = 0, expected: str | None = None,
               workload: str = "") -> int:
    """`value` when it is an int >= minimum, else BenchError ("expected an integer >= {minimum}" unless
    `expected` says it better, e.g. "an integer >= 0 (0: in this process)")."""
    if not is_int(value, minimum=minimum):
        raise _refuse(value, where=where, field=field, expected=expected or f"an integer >= {minimum}",
                      workload=workload)
    return value  # type: ignore[return-value]


def fraction(value: object, *, where: str, field: str, high: float = 1.0, expected: str | None = None,
             workload: str = "") -> float:
    """`value` when it is a number strictly between 0 and `high` (a probability, or a relative threshold with
    high 10 for 1000%), else BenchError ("expected a number strictly between 0 and {high}" unless `expected`
    says it better)."""
    if not (is_number(value) and 0 < value < high):  # type: ignore[operator]
        raise _refuse(value, where=where, field=field, expected=expected or f"a number strictly between 0 and {high:g}",
                      workload=workload)
    return value  # type: ignore[return-value]


def finite_number(value: object, *, where: str, field: str, minimum: float = 0.0, expected: str | None = None,
                  workload: str = "") -> float:
    """`value` when it is a finite number >= minimum, else BenchError ("expected a finite number >= {minimum}"
    unless `expected` says it better)."""
    if not (is_number(value) and value >= minimum):  # type: ignore[operator]
        raise _refuse(value, where=where, field=field, expected=expected or f"a finite number >= {minimum:g}",
                      workload=workload)
    return value  # type: ignore[return-value]
