"""A fresh run folder per run, its label checked, and the one error for a folder that cannot be written (the run
folder's files are written by bench.store.recorder)."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

from bench.errors import BenchError, Problem, WriteError
from bench.store.folder import is_run_dir

LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def check_label(label: str) -> str:
    """A run label becomes part of a folder name: letters, digits, '.', '_' and '-' (64 at most)."""
    if label and not LABEL.fullmatch(label):
        raise BenchError(Problem(where="run", field="--label", found=repr(label), expected="ASCII letters, digits, "
                                 "'.', '_' or '-' (starting with a letter or digit, 64 at most)"))
    return label


def new_run_dir(root: Path, *, label: str = "") -> Path:
    """Create a fresh run folder <root>/<UTC time>[-label]; never reuses one (mkdir is atomic)."""
    check_label(label)
    if root.exists() and not root.is_dir():
        raise BenchError(Problem(where=str(root), field="--out", expected="a folder", found="a file"))
    if is_run_dir(root):  # a run inside a run would be hidden from every reader of the outer one
        raise BenchError(Problem(where=str(root), field="--out", expected="a folder for run folders",
                                 found="a run folder itself (it has env.json)"))
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BenchError(Problem(where=str(root), field="--out", expected="a folder that can be created or written",
                                 found=exc.strerror or type(exc).__name__)) from None
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    base = f"{stamp}-{label}" if label else stamp
    for i in range(1000):
        path = root / (base if i == 0 else f"{base}-{i}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
        except OSError as exc:
            raise BenchError(Problem(where=str(root), field="--out", expected="a writable folder",
                                     found=exc.strerror or type(exc).__name__)) from None
    raise BenchError(Problem(where=str(root), expected="a free run folder name", found=f"1000 taken for {base}"))


def cannot_write(folder: Path, exc: OSError) -> WriteError:
    return WriteError(Problem(where=str(folder), expected="a folder with free space that bench can write",
                              found=exc.strerror or type(exc).__name__))
