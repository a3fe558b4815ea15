"""The history store on a real PostgreSQL server (issue 22): schema creation and upgrade, concurrent writers in
separate processes, `history` and the history site reading it, and the failures a team meets (the server
stopped in the middle of a run, a wrong password, a read-only role, a full disk on the server's side): one line
each, the run kept on disk, `history import` adding it later exactly once.

The server is Debian's PostgreSQL started by tests/pg_server.py (initdb in a temporary folder, a free port);
the module is skipped, with the reason, where no PostgreSQL binaries or no psycopg are installed.
"""
from __future__ import annotations

import multiprocessing
import subprocess
import sys
import uuid

import pandas as pd
import pg_server
import pytest

import bench
import bench.cli.run as cli_run
from bench.cli.main import main
from bench.store.history import STORE_SCHEMA_VERSION, history_rows, open_store

CONFIG = """
import functools
from torch import nn
from bench import Workload

WORKLOADS = [
    Workload(name="flat", module=nn.Flatten, input_shape=(4, 8), tags=("views",)),
    Workload(name="lin", module=functools.partial(nn.Linear, 16, 16), input_shape=(8, 16)),
]
"""
FAST = ["--device", "cpu", "--budget-s", "0.01", "--warmup-s", "0", "--min-samples", "3", "--processes", "0"]


@pytest.fixture(scope="module")
def server():
    if pg_server.why_not():
        pytest.skip(pg_server.why_not())
    started = pg_server.start_server()
    yield started
    started.remove()


@pytest.fixture
def db(server):
    """A new empty database on the server: its SQLAlchemy URL."""
    return server.new_database(f"t_{uuid.uuid4().hex[:10]}")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One finished run folder, measured once for the whole module (kept on disk as a failed store leaves it)."""
    out = tmp_path_factory.mktemp("runs")
    cfg = out / "cfg.py"
    cfg.write_text(CONFIG.lstrip())
    assert main(["run", str(cfg), *FAST, "--out", str(out / "o"), "--store", "none"]) == 0
    (found,) = (out / "o").iterdir()
    return found


def synthetic_run(rid: str, rows: int = 5) -> pd.DataFrame:
    results = pd.DataFrame([dict(workload=f"w{i}", device="cpu", dtype="float32", variant="default", status="ok",
                                 reason="", median_s=1e-3 * (i + 1), iqr_s=1e-5) for i in range(rows)])
    return history_rows(results, dict(time_utc="2026-01-01T00:00:00+00:00", git_commit=rid[:7],
                                      machine_keys={"cpu": "m"}), rid=rid)


def count(server, url: str, sql: str) -> int:
    return server.sql(sql, db=url.rsplit("/", 1)[1])[0][0]


# ---------------------------------------------------------------- schema
@pytest.mark.parametrize("url", ["postgresql://bench@127.0.0.1:1/bench", "postgresql+psycopg://bench@127.0.0.1:1/b"])
def test_a_missing_driver_is_one_line_naming_the_extra(url, monkeypatch, capsys, one_line):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # `import psycopg` fails as where it is not installed
    assert main(["history", "--store", url]) == 2
    one_line(capsys.readouterr().err, "layerbench[postgres]", "no module psycopg", "--store")


def test_a_new_database_gets_the_schema_and_a_run_round_trips(server, db):
    store = open_store(db)
    assert store.append(synthetic_run("r1")) == 5
    assert store.append(synthetic_run("r1")) == 0  # once
    assert store.read()["median_s"].tolist() == pytest.approx([1e-3, 2e-3, 3e-3, 4e-3, 5e-3])
    assert count(server, db, "SELECT value::int FROM bench_meta WHERE name = 'schema_version'") == STORE_SCHEMA_VERSION


def test_a_schema_1_store_in_postgresql_is_upgraded_on_open_and_keeps_its_rows(server, db):
    open_store(db).append(synthetic_run("old"))
    name = db.rsplit("/", 1)[1]
    server.sql("ALTER TABLE bench_rows DROP COLUMN trimmed_process_mean_s",
               "ALTER TABLE bench_runs DROP COLUMN complete",
               "UPDATE bench_meta SET value = '1' WHERE name = 'schema_version'", db=name)
    store = open_store(db, create=False)
    assert count(server, db, "SELECT value::int FROM bench_meta WHERE name = 'schema_version'") == STORE_SCHEMA_VERSION
    store.append(synthetic_run("new").assign(trimmed_process_mean_s=2e-3, time_utc="2026-02-01T00:00:00+00:00"))
    frame = store.read()
    assert frame["run_id"].drop_duplicates().tolist() == ["old", "new"]
    assert frame["trimmed_process_mean_s"].isna().tolist() == [True] * 5 + [False] * 5


def test_a_store_of_a_newer_schema_is_refused_in_one_line(server, db, capsys, one_line):
    open_store(db)
    server.sql(f"UPDATE bench_meta SET value = '{STORE_SCHEMA_VERSION + 1}'", db=db.rsplit("/", 1)[1])
    assert main(["history", "--store", db]) == 2
    err = one_line(capsys.readouterr().err, "newer bench", "--store")
    assert pg_server.PASSWORD not in err


# ---------------------------------------------------------------- concurrent writers
def _writer(url: str, worker: int, runs: int, shared: int) -> None:
    """One writer process: its own runs, and `shared` runs that every writer appends (stored once)."""
    store = open_store(url)  # the first writers find an empty database: creating the schema is serialized too
    for i in range(runs):
        store.append(synthetic_run(f"w{worker:02d}-{i:02d}"))
    for i in range(shared):
        store.append(synthetic_run(f"shared-{i:02d}"))


def test_eight_processes_appending_at_once_lose_and_duplicate_no_run(server, db):
    writers, runs, shared = 8, 6, 3
    context = multiprocessing.get_context("fork")  # the parent has imported pandas and SQLAlchemy once
    procs = [context.Process(target=_writer, args=(db, w, runs, shared)) for w in range(writers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * writers  # no deadlock, no error
    assert count(server, db, "SELECT count(*) FROM bench_runs") == writers * runs + shared
    assert count(server, db, "SELECT count(DISTINCT run_id) FROM bench_rows") == writers * runs + shared
    assert count(server, db, "SELECT count(*) FROM bench_rows") == 5 * (writers * runs + shared)
    assert count(server, db, "SELECT count(*) FROM bench_workloads") == 5


# ---------------------------------------------------------------- reading
def test_run_records_into_postgresql_and_history_and_the_site_read_it(server, db, tmp_path, write_config, capsys):
    cfg = write_config(CONFIG)
    assert main(["run", str(cfg), *FAST, "--out", str(tmp_path / "o"), "--store", db]) == 0
    assert "rows added to postgresql+psycopg://bench:***@" in capsys.readouterr().err
    assert main(["history", "--store", db]) == 0
    assert capsys.readouterr().out.startswith("1 runs, 2 trends")
    assert main(["history", "site", "--store", db, "--out", str(tmp_path / "site")]) == 0
    assert (tmp_path / "site" / "index.html").is_file()
    rows = (tmp_path / "site" / "data" / "index.js").read_text()  # the index page lists the rows from here
    assert '"flat"' in rows and '"lin"' in rows


# ---------------------------------------------------------------- failures: one line, the run kept, imported once
def _import_once_later(url: str, run_dir, capsys) -> None:
    assert main(["history", "import", str(run_dir), "--store", url]) == 0
    assert capsys.readouterr().out.startswith("1 run(s) added (2 rows)")
    assert main(["history", "import", str(run_dir), "--store", url]) == 0
    assert capsys.readouterr().out.startswith("0 run(s) added (0 rows), 1 already")


def test_the_server_stopped_in_the_middle_of_a_run(server, db, tmp_path, write_config, capsys, one_line,
                                                   monkeypatch):
    measured = cli_run.execute

    def measure_then_stop_the_server(*args, **kwargs):  # after the store was opened, before the rows are added
        run = measured(*args, **kwargs)
        server.stop()
        return run

    monkeypatch.setattr(cli_run, "execute", measure_then_stop_the_server)
    try:
        status = main(["run", str(write_config(CONFIG)), *FAST, "--out", str(tmp_path / "o"), "--store", db])
    finally:
        server.start()
    assert status == 2
    err = one_line(capsys.readouterr().err.strip().splitlines()[-1], "--store", "bench history import")
    (kept,) = (tmp_path / "o").iterdir()
    assert str(kept) in err and bench.load(kept).complete
    _import_once_later(db, kept, capsys)


def test_a_wrong_password_is_one_line_without_the_password(server, db, run_dir, capsys, one_line):
    wrong = db.replace(pg_server.PASSWORD, "not-the-password")
    assert main(["history", "import", str(run_dir), "--store", wrong]) == 2
    err = one_line(capsys.readouterr().err, "password authentication failed", "--store")
    assert "not-the-password" not in err
    _import_once_later(db, run_dir, capsys)


def test_a_read_only_role_reads_and_cannot_write_in_one_line(server, db, run_dir, capsys, one_line):
    open_store(db).append(synthetic_run("before"))
    name, role = db.rsplit("/", 1)[1], f"reader_{uuid.uuid4().hex[:6]}"
    server.sql(f"CREATE ROLE {role} LOGIN PASSWORD 'r'", f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}",
               db=name)
    reader = server.url(name, user=role, password="r")
    assert main(["history", "--store", reader]) == 0
    assert capsys.readouterr().out.startswith("1 runs")
    assert main(["history", "import", str(run_dir), "--store", reader]) == 2
    one_line(capsys.readouterr().err, "permission denied", "--store")
    _import_once_later(db, run_dir, capsys)


def _mount_tiny_tmpfs(path) -> str:
    """Mount a 1 MiB tmpfs at path; "" when done, else why not."""
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(path)],
                              capture_output=True, text=True, timeout=30)
    except OSError as exc:
        return f"mount: {exc}"
    return "" if done.returncode == 0 else f"mount -t tmpfs: {done.stderr.strip()[:200]}"


def test_a_full_disk_on_the_server_is_one_line_and_the_run_is_added_once_later(server, db, run_dir, capsys,
                                                                                 one_line):
    store = open_store(db)
    folder = server.owned_folder(f"tiny_{uuid.uuid4().hex[:6]}")
    why = _mount_tiny_tmpfs(folder)
    if why:
        pytest.skip(f"no small filesystem for a tablespace ({why}): the full-disk case needs root and mount")
    try:
        import os
        import pwd

        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            os.chown(folder, entry.pw_uid, entry.pw_gid)
        name = db.rsplit("/", 1)[1]
        space = f"tiny_{uuid.uuid4().hex[:6]}"
        server.sql(f"CREATE TABLESPACE {space} LOCATION '{folder}'")
        server.sql(f"ALTER TABLE bench_rows SET TABLESPACE {space}", db=name)
        filler = store.append(pd.concat([synthetic_run(f"fill-{i}", rows=1000) for i in range(40)]))
        pytest.fail(f"1 MiB took {filler} rows without filling up")  # pragma: no cover
    except bench.BenchError as exc:
        assert "No space left on device" in str(exc) or "could not extend" in str(exc)
        assert main(["history", "import", str(run_dir), "--store", db]) == 2
        one_line(capsys.readouterr().err, "--store")
        server.sql("ALTER TABLE bench_rows SET TABLESPACE pg_default", db=name)
        server.sql(f"DROP TABLESPACE {space}")
        _import_once_later(db, run_dir, capsys)
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True, timeout=30)
