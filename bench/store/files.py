"""Files on disk: atomic writes, and reading CSV and JSON back with one-line errors naming file, row and field."""
from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from bench.errors import BenchError, Problem, WriteError, not_a_file
from bench.schema import BOOL_COLUMNS, KEY_COLUMNS, NUMERIC_COLUMNS

_UMASK = os.umask(0)
os.umask(_UMASK)


def write_together(files: dict[Path, str | bytes]) -> None:
    """Write several files so that each is whole and they change together: every new content goes to a temporary
    file beside its target first (flushed to disk), and only once all are written are they renamed into place.
    A failure (a full disk fails the writes, not the renames) leaves the previous files as they were and no
    temporary file."""
    temps: list[tuple[str, Path]] = []
    try:
        for path, data in files.items():
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            temps.append((tmp, path))
            os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the mode open() would have
            with os.fdopen(fd, "wb") as f:
                f.write(data.encode("utf-8") if isinstance(data, str) else data)
                f.flush()
                os.fsync(f.fileno())
        for tmp, path in temps:
            os.replace(tmp, path)
    except BaseException:
        for tmp, _ in temps:
            Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: str | bytes) -> Path:
    """Write text or bytes to path via a temporary file in the same folder and a rename (atomic on POSIX):
    a crash never leaves half a file, and the temporary file is removed on any failure."""
    write_together({path: data})
    return path


def writable_folder(folder: Path, *, option: str) -> Path:
    """Create a folder the command will write into (--root, --out) before anything is measured: a path that is a
    file is the user's mistake (BenchError), any other OSError (read-only, no permission) is WriteError."""
    if folder.exists() and not folder.is_dir():
        raise BenchError(Problem(where=str(folder), field=option, expected="a folder", found="a file"))
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        blocker = next((p for p in folder.parents if p.exists()), None)
        if blocker is not None and not blocker.is_dir():
            raise BenchError(Problem(where=str(folder), field=option, expected="a folder",
                                     found=f"{blocker} is a file")) from None
        raise WriteError(Problem(where=str(folder), field=option, expected="a folder bench can create and write",
                                 found=exc.strerror or type(exc).__name__)) from None
    return folder


def write_output(path: Path, data: str | bytes, *, option: str) -> Path:
    """write_atomic to a user-given path, creating its folder. A path that cannot name a file (a parent that is a
    file, an existing folder) is the user's mistake: BenchError. Any other OSError (disk full, read-only file
    system, no permission) is WriteError. Both are one line naming the path and the option."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_atomic(path, data)
    except OSError as exc:
        found = exc.strerror or str(exc)
        blocker = next((p for p in path.parents if p.exists()), None)
        if blocker is not None and not blocker.is_dir():
            found = f"{blocker} is a file, not a folder ({found})"
        elif not path.is_dir():
            raise WriteError(Problem(where=str(path), field=option, expected="a writable file path",
                                     found=found)) from None
        raise BenchError(Problem(where=str(path), field=option, expected="a writable file path", found=found)) from None


def read_bytes(path: Path) -> bytes:
    """A file's bytes; an OSError while reading (EIO from a failing disk, no permission) is a one-line BenchError."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BenchError(Problem(where=str(path), expected="a readable file",
                                 found=exc.strerror or type(exc).__name__)) from None


def read_json_object(path: Path, *, what: str) -> dict:
    """A JSON object from path; BenchError (one line) when missing, unreadable or not an object (nesting too
    deep for the parser, a RecursionError, counts as unreadable)."""
    if not path.is_file():
        raise BenchError(Problem(where=str(path), expected=what, found=not_a_file(path)))
    raw = read_bytes(path)
    try:
        data = json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise BenchError(Problem(where=str(path), expected="valid JSON", found=type(exc).__name__)) from None
    if not isinstance(data, dict):
        raise BenchError(Problem(where=str(path), expected="a JSON object", found=type(data).__name__))
    return data


def read_csv(path: Path, required: Iterable[str]) -> pd.DataFrame:
    """A CSV written by bench: key columns as strings (never numbers or NaN), NUMERIC_COLUMNS as numbers.

    BenchError (one line, naming the file and the row) for a missing file, a file that cannot be read, a file
    cut short, an unreadable CSV, a missing required column, a non-numeric number or an empty key cell.
    """
    if not path.is_file():
        raise BenchError(Problem(where=str(path), expected="a file written by `bench run`", found=not_a_file(path)))
    raw = read_bytes(path)  # read once: the checks below and the parser see the same bytes
    try:
        # We always end a file with a newline: one without it was cut short (pandas would fill the rest with NaN).
        if raw and not raw.endswith(b"\n"):
            raise BenchError(Problem(where=str(path), expected="a complete CSV ending in a newline",
                                     found="a file cut short in its last row"))
        # Every cell is read as text with no NA guessing, then typed column by column below: a workload named
        # "NA", "None", "1.0" or "007" stays that string, and a number column holding text is an error.
        frame = pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise BenchError(Problem(where=str(path), expected="a readable CSV",
                                 found=f"{type(exc).__name__}: {first}")) from None
    if b"\0" in raw:
        _refuse_nul(path, frame)
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise BenchError(Problem(where=str(path), expected=f"columns {', '.join(missing)}",
                                 found="a file without them (truncated, or not written by `bench run`)"))
    for column in frame.columns:
        if column in KEY_COLUMNS:
            continue
        text = frame[column]
        if column in NUMERIC_COLUMNS:
            values = pd.to_numeric(text.replace("", None), errors="coerce")
            bad = (text != "") & values.isna()
            if bad.any():
                row = first_row(bad)
                raise BenchError(Problem(where=f"{path}:{row + 2}", field=column, expected="a number",
                                         found=repr(text.iloc[row])))
            frame[column] = values
        elif column in BOOL_COLUMNS:
            bad = ~text.isin(["True", "False", ""])
            if bad.any():
                row = first_row(bad)
                raise BenchError(Problem(where=f"{path}:{row + 2}", field=column, expected="True, False or empty",
                                         found=repr(text.iloc[row])))
            frame[column] = text.map({"True": True, "False": False, "": None})
        else:
            frame[column] = text.replace("", None)  # an empty text cell is a missing value
    for column in KEY_COLUMNS[:3]:
        if column in frame.columns and (frame[column] == "").any():
            row = first_row(frame[column] == "") + 2  # 1-based, after the header line
            raise BenchError(Problem(where=f"{path}:{row}", field=column, expected="a value in every row",
                                     found="none"))
    return frame


def _refuse_nul(path: Path, frame: pd.DataFrame) -> None:
    """A NUL byte is never in a file bench writes (a disk fault or a binary file): name the column (and line)
    holding the first one, the NUL shown as \\0 so that the message stays printable."""
    for column in frame.columns:
        if "\0" in column:
            raise BenchError(Problem(where=f"{path}:1", field=column.replace("\0", "\\0"),
                                     expected="a header of column names", found="a NUL byte in a column name"))
    for column in frame.columns:
        bad = frame[column].str.contains("\0", regex=False)
        if bad.any():
            raise BenchError(Problem(where=f"{path}:{first_row(bad) + 2}", field=column, expected="text",
                                     found="a NUL byte"))


def first_row(mask: pd.Series) -> int:
    """The position (0-based) of the first True in a boolean column; a file's line number is this + 2."""
    return int(mask.to_numpy().nonzero()[0][0])
