"""The project's own error type: a user error, shown as one line by the CLI (exit status 2)."""
from __future__ import annotations

from dataclasses import dataclass


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
