"""The history store: one row per measured row of every run, across commits and machines, in SQL.

A run folder keeps everything about one run (raw samples included); the store keeps what a trend needs from
many: a row's identity, its summary statistics and status, and where the run came from (run id, git commit
and branch, time, machine key, config, label). It is an SQLite file by default (results/history.sqlite, no
server) or any database SQLAlchemy reaches (a team's PostgreSQL: `--store postgresql://...` or $BENCH_STORE).
SQLAlchemy because it gives one code path for every database, and pandas reads and writes through it.

Schema: bench_runs (one row per run: RUN_COLUMNS), bench_rows (one per measured row: its run_id, machine key
and ROW_COLUMNS; indexed by identity and machine), bench_workloads (every workload name with its latest tags:
`--filter` is resolved there, not by scanning a million rows), bench_meta (`schema_version`). A store written by a newer
version of bench is refused in one line, never written to. Rows are inserted with SQLAlchemy Core in one
executemany per run, because pandas' to_sql inspects the table on every call, which costs more than the
insert itself; pandas reads the rows back.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bench.errors import BenchError, Problem
from bench.schema import KEY_COLUMNS, RESULTS_DIR, RowKey
from bench.store.folder import Run
from bench.store.postgres import driver_url, missing_driver, serialize
from bench.store.summary import process_medians, with_process

# 2: bench_rows.trimmed_process_mean_s; 3: bench_runs.complete. A store of an older schema gains them when opened.
STORE_SCHEMA_VERSION = 3
STORE_ENV = "BENCH_STORE"  # a path or SQLAlchemy URL; "none" turns the store off
DEFAULT_STORE = RESULTS_DIR / "history.sqlite"
RUNS_TABLE, ROWS_TABLE, WORKLOADS_TABLE, META_TABLE = "bench_runs", "bench_rows", "bench_workloads", "bench_meta"

# Where a run came from: the same for all its rows (bench_runs). machine_key is per device, so per row.
# complete: "true", "false" (an interrupted run, imported with --allow-incomplete: shown, never judged), or ""
# (unknown: stored before the column existed, or a frame built without it; judged, as before).
RUN_COLUMNS = ("run_id", "time_utc", "git_commit", "git_branch", "host", "config", "label", "torch", "run_path",
               "complete")
# What a trend reads of each row: its identity, status and summary statistics.
ROW_COLUMNS = (*KEY_COLUMNS, "tags", "status", "reason", "median_s", "iqr_s", "rel_iqr", "n_samples", "n_processes",
               "rel_iqr_between", "instructions", "flops_per_s", "bytes_per_s", "threads", "fastest_process_median_s",
               "trimmed_process_mean_s")
HISTORY_COLUMNS = (*RUN_COLUMNS, "machine_key", *ROW_COLUMNS)
NUMBER_COLUMNS = frozenset({"median_s", "iqr_s", "rel_iqr", "n_samples", "n_processes", "rel_iqr_between",
                            "instructions", "flops_per_s", "bytes_per_s", "threads", "fastest_process_median_s",
                            "trimmed_process_mean_s"})
# Columns added after schema 1, by the version that added them (table, column, SQL type): opening an older store
# adds them (NULL in its rows).
ADDED_COLUMNS = {2: ((ROWS_TABLE, "trimmed_process_mean_s", "FLOAT"),), 3: ((RUNS_TABLE, "complete", "VARCHAR(200)"),)}


def resolve(store: str | Path | None, *, root: Path | str = RESULTS_DIR) -> str | None:
    """The store's SQLAlchemy URL: `store` (a path or URL), else $BENCH_STORE, else root/history.sqlite (root: the
    results folder, `--root`, where every run's rows meet wherever its folder went). None when the store is turned
    off ("none")."""
    text = str(store) if store not in (None, "") else os.environ.get(STORE_ENV, "").strip()
    if not text:
        text = str(Path(root) / DEFAULT_STORE.name)
    if text.lower() == "none":
        return None
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).expanduser().resolve()}"


def _problem(url: str, expected: str, found: str) -> BenchError:
    return BenchError(Problem(where=_shown(url), field="--store", expected=expected, found=found))


def _shown(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown as given, it holds no parsed password
        return url


@contextmanager
def _database(url: str) -> Iterator[None]:
    """A database error while reading or writing (a store of another bench's making, a server gone away) as one
    line naming the store."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        yield
    except SQLAlchemyError as exc:
        raise _problem(url, "a bench history store that can be read and written",
                       str(getattr(exc, "orig", exc)).splitlines()[0][:200]) from None


@dataclass(frozen=True)
class Store:
    """An open history store. `append` adds a run's rows (once: a run already there is skipped), `read` returns
    them as a frame."""

    url: str
    engine: Any

    @property
    def where(self) -> str:
        return _shown(self.url)

    def run_ids(self) -> set[str]:
        from sqlalchemy import select

        runs = _tables()[1]
        with _database(self.url), self.engine.connect() as conn:
            return set(conn.execute(select(runs.c.run_id)).scalars())

    def append(self, rows: pd.DataFrame) -> int:
        """Add the rows of one or more runs (history_rows' frames); runs already in the store are skipped. Returns
        the number of rows added. One transaction: a failure adds nothing."""
        if rows.empty:
            return 0
        from sqlalchemy import select

        _, runs, table, names = _tables()
        with _database(self.url), self.engine.begin() as conn:
            serialize(conn)
            ids = sorted(set(rows["run_id"]))
            present = set()
            for i in range(0, len(ids), 500):  # bound the statement's parameters (SQLite allows 32,766)
                chunk = ids[i:i + 500]
                present |= set(conn.execute(select(runs.c.run_id).where(runs.c.run_id.in_(chunk))).scalars())
            new = rows[~rows["run_id"].isin(present)]
            if new.empty:
                return 0
            firsts = new.drop_duplicates("run_id")
            conn.execute(runs.insert(), _records(firsts[list(RUN_COLUMNS)]))
            conn.execute(table.insert(), _records(new[["run_id", "machine_key", *ROW_COLUMNS]]))
            latest = new.drop_duplicates("workload", keep="last")
            tags = dict(zip(latest["workload"], latest["tags"].where(latest["tags"].notna(), "").astype(str)))
            known = dict(conn.execute(select(names.c.workload, names.c.tags)
                                      .where(names.c.workload.in_(list(tags)))).all())
            changed = [w for w, t in tags.items() if known.get(w) != t]
            if changed:  # new workloads, or tags that changed since
                conn.execute(names.delete().where(names.c.workload.in_(changed)))
                conn.execute(names.insert(), [dict(workload=w, tags=tags[w]) for w in changed])
        return len(new)

    def read(self, *, workloads: Iterable[str] | None = None, device: str = "", machine_key: str = "") -> pd.DataFrame:
        """The stored rows (HISTORY_COLUMNS), oldest run first; narrowed in SQL to some workloads, a device, a
        machine."""
        from sqlalchemy import select

        _, runs, rows, _ = _tables()
        query = select(*[runs.c[c] for c in RUN_COLUMNS], rows.c.machine_key, *[rows.c[c] for c in ROW_COLUMNS])
        query = query.join_from(rows, runs, rows.c.run_id == runs.c.run_id)
        if workloads is not None:
            query = query.where(rows.c.workload.in_(list(workloads)))
        if device:
            query = query.where(rows.c.device == device)
        if machine_key:
            query = query.where(rows.c.machine_key == machine_key)
        with _database(self.url), self.engine.connect() as conn:
            frame = pd.read_sql(query.order_by(runs.c.time_utc, runs.c.run_id), conn)
        return _typed(frame)

    def workloads(self) -> dict[str, tuple[str, ...]]:
        """Every stored workload name with its tags."""
        from sqlalchemy import select

        names = _tables()[3]
        with _database(self.url), self.engine.connect() as conn:
            found = conn.execute(select(names.c.workload, names.c.tags))
            return {w: tuple(t for t in str(tags or "").split(",") if t) for w, tags in found}


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows as dicts for an executemany: missing values as NULL, numbers as Python floats (a loop over plain dicts,
    because pandas' where/astype on the frame costs more than the insert)."""
    def cell(name: str, value):
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return None
        return float(value) if name in NUMBER_COLUMNS else value

    return [{k: cell(k, v) for k, v in r.items()} for r in frame.to_dict("records")]


_TABLES: tuple = ()


def _tables():
    """The schema (bench_meta's metadata, bench_runs, bench_rows, bench_workloads) as SQLAlchemy tables, built
    once."""
    global _TABLES
    if not _TABLES:
        from sqlalchemy import Column, Float, Index, MetaData, String, Table, Text

        meta = MetaData()
        text_column = lambda c: Column(c, Text if c in ("reason", "run_path", "config") else String(200))  # noqa: E731 - a one-line column factory
        runs = Table(RUNS_TABLE, meta, Column("run_id", String(64), primary_key=True),
                     *[text_column(c) for c in RUN_COLUMNS[1:]])
        rows = Table(ROWS_TABLE, meta, Column("run_id", String(64), index=True), text_column("machine_key"),
                     *[Column(c, Float) if c in NUMBER_COLUMNS else text_column(c) for c in ROW_COLUMNS])
        Index("ix_bench_rows_identity", rows.c.workload, rows.c.device, rows.c.machine_key)
        names = Table(WORKLOADS_TABLE, meta, Column("workload", String(200), primary_key=True), Column("tags", Text))
        Table(META_TABLE, meta, Column("name", String(100), primary_key=True), Column("value", String(400)))
        _TABLES = (meta, runs, rows, names)
    return _TABLES


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    for name in HISTORY_COLUMNS:
        if name in NUMBER_COLUMNS:
            frame[name] = pd.to_numeric(frame[name], errors="coerce")
        else:
            frame[name] = frame[name].fillna("").astype(str)
    return frame


def open_store(url: str, *, create: bool = True) -> Store:
    """Open (and with create, set up) the store at url; BenchError in one line for a URL SQLAlchemy cannot use,
    a database it cannot reach, a store of a newer schema, or (create=False) a store that does not exist."""
    try:
        from sqlalchemy import create_engine, inspect
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
    except ImportError:
        raise _problem(url, "SQLAlchemy installed (pip install sqlalchemy)", "no module sqlalchemy") from None
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if not create and not path.is_file():
            raise _problem(url, "an existing history store (made by `bench run` or `bench history import`)",
                           "no such file")
        if create:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise _problem(url, "a folder that can be written", exc.strerror or str(exc)) from None
    try:
        # sqlite: wait for a writer of another process (shards finishing together) instead of failing at once
        engine = create_engine(driver_url(url), connect_args={"timeout": 60} if url.startswith("sqlite") else {})
        with engine.begin() as conn:
            serialize(conn)  # writers opening a new store at once: one creates it, the others then find it
            tables = set(inspect(conn).get_table_names())
            if META_TABLE in tables:
                version = _version(conn, url)
            elif not create:
                raise _problem(url, "a bench history store", "a database without its tables")
            else:
                version = None
            if version is not None and version > STORE_SCHEMA_VERSION:
                raise _problem(url, f"a history store of schema {STORE_SCHEMA_VERSION} or older",
                               f"schema {version}, written by a newer bench: upgrade bench to read it")
            if version is None:
                _create(conn)
            elif version < STORE_SCHEMA_VERSION:
                _upgrade(conn, version)
    except ImportError as exc:
        raise missing_driver(url, exc) from None
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise _problem(url, "a file path or an SQLAlchemy URL (sqlite:///path, postgresql://user@host/db)",
                       str(exc).splitlines()[0][:200]) from None
    except SQLAlchemyError as exc:
        raise _problem(url, "a database that can be opened",
                       str(getattr(exc, "orig", exc)).splitlines()[0][:200]) from None
    return Store(url=url, engine=engine)


def _version(conn, url: str) -> int:
    from sqlalchemy import text

    found = conn.execute(text(f"SELECT value FROM {META_TABLE} WHERE name = 'schema_version'")).scalar()
    try:
        return int(found)
    except (TypeError, ValueError):
        raise _problem(url, "bench_meta.schema_version, an integer", repr(found)) from None


def _create(conn) -> None:
    meta = _tables()[0]
    meta.create_all(conn)
    conn.execute(meta.tables[META_TABLE].insert(), [dict(name="schema_version", value=str(STORE_SCHEMA_VERSION))])


def _upgrade(conn, version: int) -> None:
    """Bring a store of an older schema up to this one: the columns added since, NULL in the rows already there."""
    from sqlalchemy import text

    for v in range(version + 1, STORE_SCHEMA_VERSION + 1):
        for table, column, kind in ADDED_COLUMNS.get(v, ()):
            conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {kind}"))
    conn.execute(text(f"UPDATE {META_TABLE} SET value = :v WHERE name = 'schema_version'"),
                 dict(v=str(STORE_SCHEMA_VERSION)))


def run_id(results_csv: bytes, env_json: bytes) -> str:
    """A run's id: a hash of its results and environment files, so importing a folder twice adds it once."""
    return hashlib.sha256(env_json + b"\0" + results_csv).hexdigest()[:16]


def trimmed_mean(values) -> float:
    """The mean without the smallest and the largest value (with 3 or more; else the plain mean). Not
    scipy.stats.trim_mean, which cuts a proportion from each end (with 7 processes and 0.1 it would cut none), and
    scipy is only a test dependency."""
    v = sorted(values)
    return float(sum(v[1:-1]) / (len(v) - 2)) if len(v) >= 3 else float(sum(v) / len(v))


def process_statistics(samples: pd.DataFrame) -> dict[RowKey, tuple[float, float]]:
    """Row identity -> (the smallest of its worker processes' medians, their trimmed mean). On a shared
    machine a process can run a layer in a slow speed mode for its whole life (docs/gate.md), so a run's pooled
    median jumps with the mix of fast and slow processes it drew. The fastest
    process's median is what the code does when the machine lets it; the trimmed mean of the process medians
    (bench.gate.changes.STATISTICS) uses every process but the two extremes."""
    if samples is None or samples.empty:
        return {}
    out = {}
    for key, group in with_process(samples).groupby(list(KEY_COLUMNS), sort=False):
        medians = process_medians(group)
        if len(medians):
            out[RowKey.of_group(key)] = (float(medians.min()), trimmed_mean(medians.tolist()))
    return out


def history_rows(results: pd.DataFrame, env: dict, *, rid: str, run_path: str = "",
                 samples: pd.DataFrame | None = None) -> pd.DataFrame:
    """A run's rows as the store keeps them (HISTORY_COLUMNS): its results with where the run came from, and
    (from its samples) each row's fastest process median."""
    keys = env.get("machine_keys") if isinstance(env.get("machine_keys"), dict) else {}
    configs = sorted({str(s) for s in results.get("source", pd.Series(dtype=str)).dropna() if str(s)})
    frame = pd.DataFrame({c: results[c] if c in results.columns else None for c in ROW_COLUMNS}).reset_index(drop=True)
    run = dict(run_id=rid, time_utc=env.get("time_utc", ""), git_commit=env.get("git_commit", ""),
               git_branch=env.get("git_branch", ""), host=env.get("host", ""), config=",".join(configs),
               label=env.get("label", ""), torch=env.get("torch", ""), run_path=run_path,
               complete=_complete(env.get("complete")))
    per_process = process_statistics(samples)
    if per_process:
        found = [per_process.get(RowKey.of(r), (None, None)) for _, r in frame.iterrows()]
        frame["fastest_process_median_s"] = [f for f, _ in found]
        frame["trimmed_process_mean_s"] = [t for _, t in found]
    frame = frame.assign(**{k: str(v) for k, v in run.items()},
                         machine_key=[str(keys.get(d, "")) for d in frame["device"]],
                         reason=frame["reason"].fillna("").astype(str))
    return frame[list(HISTORY_COLUMNS)]


def _complete(value) -> str:
    return "true" if value is True else "false" if value is False else ""


def rows_of_folder(run_dir: Path, results: pd.DataFrame, env: dict,
                   samples: pd.DataFrame | None = None) -> pd.DataFrame:
    """history_rows of a run folder on disk, its id from its files' bytes."""
    rid = run_id((run_dir / "results.csv").read_bytes(), (run_dir / "env.json").read_bytes())
    return history_rows(results, env, rid=rid, run_path=str(run_dir.resolve()), samples=samples)


def rows_of_run(run: Run) -> pd.DataFrame:
    """history_rows of a Run: from its folder when it has one, else (kept in memory) its id from its content."""
    if run.source is not None and (run.source / "env.json").is_file():
        return rows_of_folder(run.source, run.results, dict(run.env), run.samples)
    rid = run_id(run.results.to_csv(index=False).encode(), repr(sorted(run.env.items())).encode())
    return history_rows(run.results, dict(run.env), rid=rid, samples=run.samples)


def open_for(store: str | Path | None = None, *, root: Path | str = RESULTS_DIR, create: bool = True) -> Store | None:
    """The store `resolve` names, opened (and with create, set up); None when turned off ("none")."""
    url = resolve(store, root=root)
    return open_store(url, create=create) if url else None

