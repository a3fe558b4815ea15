"""Records -> tidy pandas frames -> a run folder on disk (atomic writes), and back.

A run folder holds results.csv (one row per workload x device x dtype), samples.csv (one row per
raw sample, long format) and env.json (the environment, the schema version and whether the run
completed). Files are written to a temporary name and renamed, so a crash never leaves half a file.
"""
from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from bench.errors import BenchError, Problem
from bench.measure.runner import Record
from bench.stats import NOISY_REL_IQR, summarize

SCHEMA_VERSION = 1
_UMASK = os.umask(0)
os.umask(_UMASK)
RESULTS_DIR = Path("results")
LAUNCH_BOUND_S = 10e-6     # device time per call under this is mostly launch overhead
LAUNCH_BOUND_ENQUEUE = 0.8  # the host took this fraction of the device time to issue the calls: the GPU waited on it

RESULT_COLUMNS = [
    "workload", "device", "dtype", "status", "reason", "input_shape", "output_shape", "params", "flops", "bytes",
    "median_s", "iqr_s", "mean_s", "std_s", "min_s", "max_s", "n_samples", "calls_per_sample", "rel_iqr", "noisy",
    "host_median_s", "host_iqr_s", "enqueue_median_s", "launch_bound", "flops_per_s", "bytes_per_s",
    "threads", "device_name", "warmup_calls", "first_call_s", "stop_reason", "tags", "source", "note", "threshold",
    # the variant the row ran under (bench.suite.variants), its pass, its accuracy and the compute roof that applies
    "variant", "pass", "max_rel_diff", "math", "arithmetic_intensity",
]
# Columns read back as numbers: a value that is not one is a corrupt file, named with its row.
NUMERIC_COLUMNS = {
    "params", "flops", "bytes", "median_s", "iqr_s", "mean_s", "std_s", "min_s", "max_s", "n_samples",
    "calls_per_sample", "rel_iqr", "host_median_s", "host_iqr_s", "enqueue_median_s", "flops_per_s", "bytes_per_s",
    "threads", "warmup_calls", "first_call_s", "threshold", "max_rel_diff", "arithmetic_intensity",
    "sample", "device_s", "host_s", "enqueue_s", "calls",
}
SAMPLE_COLUMNS = ["workload", "device", "dtype", "sample", "device_s", "host_s", "enqueue_s", "calls", "variant"]


def _shape(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]"


def _row(r: Record) -> dict:
    p, w = r.plan, r.plan.workload
    row = dict.fromkeys(RESULT_COLUMNS)
    flops = p.flops if r.flops is None else r.flops
    bytes_moved = p.bytes_moved if r.bytes_moved is None else r.bytes_moved
    row.update(
        workload=w.name, device=r.device, dtype=r.variant.dtype or w.dtype, status=r.status, reason=r.reason,
        input_shape=_shape(w.input_shape), output_shape=_shape(p.output_shape), params=p.params, flops=flops,
        bytes=bytes_moved, threads=r.threads, device_name=r.device_name, tags=",".join(w.tags),
        source=p.source, note=w.note, threshold=w.threshold, variant=r.variant.name,
        max_rel_diff=r.max_rel_diff, math=r.math or None,
        arithmetic_intensity=flops / bytes_moved if bytes_moved else None,
    )
    row["pass"] = r.variant.pass_name  # "pass" is a keyword: not usable in update(...)
    m = r.measurement
    if m is None:
        return row
    s, host, enq = summarize(m.device_s), summarize(m.host_s), summarize(m.enqueue_s)
    launch_bound = r.device == "cuda" and (
        s.median_s < LAUNCH_BOUND_S or enq.median_s >= LAUNCH_BOUND_ENQUEUE * s.median_s)
    row.update(
        median_s=s.median_s, iqr_s=s.iqr_s, mean_s=s.mean_s, std_s=s.std_s, min_s=s.min_s, max_s=s.max_s,
        n_samples=s.n_samples, calls_per_sample=m.calls_per_sample, rel_iqr=s.rel_iqr,
        noisy=bool(s.rel_iqr > NOISY_REL_IQR),
        host_median_s=host.median_s, host_iqr_s=host.iqr_s, enqueue_median_s=enq.median_s,
        launch_bound=bool(launch_bound),
        flops_per_s=flops / s.median_s if s.median_s > 0 else None,
        bytes_per_s=bytes_moved / s.median_s if s.median_s > 0 else None,
        warmup_calls=m.warmup_calls, first_call_s=m.first_call_s, stop_reason=m.stop_reason,
    )
    return row


def to_frame(records: list[Record]) -> pd.DataFrame:
    """One tidy row per record, columns RESULT_COLUMNS, times in seconds."""
    return pd.DataFrame([_row(r) for r in records], columns=RESULT_COLUMNS)


def to_samples(records: list[Record]) -> pd.DataFrame:
    """Raw per-call times, one row per sample (long format)."""
    rows = []
    for r in records:
        if r.measurement is None:
            continue
        m = r.measurement
        for i, (d, h, e) in enumerate(zip(m.device_s, m.host_s, m.enqueue_s)):
            rows.append(dict(workload=r.plan.name, device=r.device, dtype=r.variant.dtype or r.plan.workload.dtype,
                             sample=i, device_s=d, host_s=h, enqueue_s=e, calls=m.calls_per_sample,
                             variant=r.variant.name))
    return pd.DataFrame(rows, columns=SAMPLE_COLUMNS)


def write_atomic(path: Path, text: str) -> None:
    """Write text to path via a temporary file in the same folder and a rename (atomic on POSIX)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the mode open() would have
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def new_run_dir(root: Path = RESULTS_DIR, *, label: str = "") -> Path:
    """Create a fresh run folder; never reuses one (mkdir is atomic, so two runs cannot share it)."""
    if root.exists() and not root.is_dir():
        raise BenchError(Problem(where=str(root), field="--out", expected="a folder", found="a file"))
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


class RunWriter:
    """Saves a run as it goes: after each record all files are rewritten atomically."""

    def __init__(self, run_dir: Path, env: dict) -> None:
        self.run_dir = run_dir
        self.env = {"schema_version": SCHEMA_VERSION, "complete": False, **env}
        self.records: list[Record] = []
        self._write_env()

    def _write_env(self) -> None:
        write_atomic(self.run_dir / "env.json", json.dumps(self.env, indent=2, default=str) + "\n")

    def add(self, record: Record) -> None:
        self.records.append(record)
        self.flush()

    def flush(self) -> None:
        write_atomic(self.run_dir / "results.csv", to_frame(self.records).to_csv(index=False))
        write_atomic(self.run_dir / "samples.csv", to_samples(self.records).to_csv(index=False))

    def finish(self, *, complete: bool, note: str = "") -> None:
        self.env["complete"] = complete
        self.env["finished_utc"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        if note:
            self.env["incomplete_reason"] = note
        self.flush()
        self._write_env()


def _read_csv(path: Path, columns: list[str]) -> pd.DataFrame:
    if not path.is_file():
        raise BenchError(Problem(where=str(path), expected="a file written by `bench run`", found="no such file"))
    try:
        raw = path.read_bytes()
        # We always end a file with a newline: one without it was cut short (pandas would fill the rest with NaN).
        if raw and not raw.endswith(b"\n"):
            raise BenchError(Problem(where=str(path), expected="a complete CSV ending in a newline",
                                     found="a file cut short in its last row"))
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise BenchError(Problem(where=str(path), expected="a readable CSV",
                                 found=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")) from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise BenchError(Problem(where=str(path), expected=f"columns {', '.join(missing)}",
                                 found="a file without them (truncated, or not written by `bench run`)"))
    for column in NUMERIC_COLUMNS & set(frame.columns):
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = frame[column].notna() & values.isna()
        if bad.any():
            row = int(bad.to_numpy().nonzero()[0][0])
            raise BenchError(Problem(where=f"{path}:{row + 2}", field=column, expected="a number",
                                     found=repr(frame[column].iloc[row])))
        frame[column] = values
    blank = [c for c in ("workload", "device", "dtype") if c in frame.columns and frame[c].isna().any()]
    if blank:
        row = int(frame[frame[blank[0]].isna()].index[0]) + 2  # 1-based, after the header line
        raise BenchError(Problem(where=f"{path}:{row}", field=blank[0], expected="a value in every row", found="none"))
    return frame


def load_env(run_dir: Path) -> dict:
    path = run_dir / "env.json"
    if not path.is_file():
        raise BenchError(Problem(where=str(path), expected="a run folder's env.json", found="no such file"))
    try:
        env = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BenchError(Problem(where=str(path), expected="valid JSON", found=f"{type(exc).__name__}: {exc}")) from None
    if not isinstance(env, dict):
        raise BenchError(Problem(where=str(path), expected="a JSON object", found=type(env).__name__))
    version = env.get("schema_version")
    if version != SCHEMA_VERSION:
        raise BenchError(Problem(where=str(path), field="schema_version",
                                 expected=f"{SCHEMA_VERSION} (this version of bench)", found=repr(version)))
    return env


def load_run(run_dir: Path | str) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Read a run folder back: (results, samples, env). Raises BenchError for anything missing or corrupt."""
    run_dir = Path(run_dir)
    if run_dir.is_file() and run_dir.name in ("results.csv", "samples.csv", "env.json"):
        run_dir = run_dir.parent
    if not run_dir.is_dir():
        raise BenchError(Problem(where=str(run_dir), expected="a run folder (results/<run>)", found="no such folder"))
    env = load_env(run_dir)
    results = _read_csv(run_dir / "results.csv", ["workload", "device", "dtype", "status", "median_s"])
    samples = _read_csv(run_dir / "samples.csv", ["workload", "device", "dtype", "sample", "device_s"])
    return results, samples, env
