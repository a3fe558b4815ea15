"""The project's own error type: a user error, shown as one line by the CLI (exit status 2)."""
from __future__ import annotations

import errno
import math
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

# numpy 2 writes its scalars' repr() as np.float64(inf), np.int64(3), np.True_: a message shows the plain value.
_NUMPY_REPR = re.compile(r"\bnp\.(?:float|int|uint|complex|longdouble|str_|bytes_|bool_?)\w*\(([^()]*)\)")
_NUMPY_BOOL = re.compile(r"\bnp\.(True|False)_")


def plain(text: str) -> str:
    """text with every numpy scalar repr (np.float64(inf)) written as the plain value (inf)."""
    return _NUMPY_BOOL.sub(r"\1", _NUMPY_REPR.sub(r"\1", text)) if "np." in text else text


@dataclass(frozen=True, kw_only=True)
class Problem:
    """One thing wrong with a workload or a file, phrased for the person who wrote it.

    `where` is the config file (or results file), `workload` the workload's name ("" when the
    problem is with the file itself), `field` the field at fault, then what was expected and found.
    """

    where: str
    workload: str = ""
    field: str = ""
    expected: str = ""
    found: str = ""

    def __post_init__(self) -> None:
        # Fixed here, where every message is formatted, rather than at each repr() of a value read from a file.
        for name in ("expected", "found"):
            object.__setattr__(self, name, plain(str(getattr(self, name))))

    def __str__(self) -> str:
        head = self.where
        if self.workload:
            head += f": workload '{self.workload}'"
        if self.field:
            head += f": {self.field}"
        text = f"{head}: expected {self.expected}" if self.expected else head
        if self.found:
            text += f", found {self.found}" if self.expected else f": {self.found}"
        return text


def not_a_file(path: Path | str) -> str:
    """What stands at a path where a regular file was expected, for a message's `found`: "no such file", "a folder",
    "a symbolic link loop", "a broken symbolic link", a FIFO, a socket, "a device file" (or the OSError's reason)."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symbolic link loop"
        if os.path.islink(path):
            return "a broken symbolic link"
        return "no such file" if isinstance(exc, FileNotFoundError) else (exc.strerror or type(exc).__name__)
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe), not a file"
    if stat.S_ISSOCK(mode):
        return "a socket, not a file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device file"
    return "a file"


def one_line(exc: BaseException) -> str:
    """An exception as one line: its type and the first line of its message (at most 300 characters)."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:300]}" if lines else type(exc).__name__


class BenchError(Exception):
    """A mistake the user can fix: bad config, bad file, bad argument. Carries one or more problems."""

    def __init__(self, *problems: Problem | str) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in problems))


class WriteError(BenchError):
    """A file could not be written (disk full, read-only file system, no permission): not a mistake in the input,
    and not a verdict either, so the CLI gives it its own exit status (4) and one line. Nothing half-written stays."""


class WorkerLost(BenchError):
    """A worker process was ended by a signal while starting (the kernel's OOM killer, another process's kill):
    nothing in the input is wrong and bench has no bug, but the run could not go on. The CLI says so in one line
    and exits 3 (the tool failed to produce a result), never 2 (a user error) nor 1 (a verdict or failed rows),
    so a CI gate does not read it as a regression; the run folder is kept, marked incomplete with the reason."""


# The one strict check of the numbers a user gives in code, a config or a file: one rule and one message per kind.
# Python's bool is an int (True == 1), so every check refuses a bool: `processes=True` is a mistake, not one
# process. The raising checks give one BenchError(Problem(...)) naming where, the field, what was expected and
# what was found (its repr, cut at FOUND_CHARS); the predicates serve callers that collect problems or raise
# their own error. They live beside the error they raise, so every layer reaches them through one leaf.
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
