"""The history store on PostgreSQL: writers that take turns, psycopg as the driver, a missing driver in one line.

docs/fleet.md describes a team's store; tests/test_postgres.py runs these against a real server.
"""
from __future__ import annotations

from bench.errors import BenchError, Problem


def _problem(url: str, expected: str, found: str) -> BenchError:
    from sqlalchemy.engine import make_url

    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown as given, it holds no parsed password
        shown = url
    return BenchError(Problem(where=shown, field="--store", expected=expected, found=found))


# The key of the PostgreSQL advisory lock that writers of one store take for the length of a transaction.
WRITER_LOCK_KEY = 0x62656E6368  # "bench"


def serialize(conn) -> None:
    """On PostgreSQL, wait for the other writers of the store: appends are a check then an insert (a run already
    there is skipped) and replace bench_workloads' rows, which two concurrent transactions would do twice or
    deadlock on. A transaction-level advisory lock makes them take turns (released at commit or rollback; an
    append holds it for milliseconds). SQLite serializes its writers itself."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy import text

        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), dict(key=WRITER_LOCK_KEY))


def driver_url(url: str) -> str:
    """The URL SQLAlchemy connects with: a PostgreSQL URL without a driver uses psycopg (version 3, the
    `postgres` extra) rather than SQLAlchemy's default psycopg2. psycopg's own log records (a pipeline it
    abandons after the error bench reports in one line) go to a NullHandler, not to stderr as a second line."""
    if url.startswith(("postgresql", "postgres:")):
        import logging

        quiet = logging.getLogger("psycopg")
        if not quiet.handlers:
            quiet.addHandler(logging.NullHandler())
    for plain_scheme in ("postgresql://", "postgres://"):
        if url.startswith(plain_scheme):
            return "postgresql+psycopg://" + url[len(plain_scheme):]
    return url


def missing_driver(url: str, exc: ImportError) -> BenchError:
    """A database driver that is not installed, as one line naming what to install."""
    module = exc.name or str(exc)
    if url.startswith(("postgresql", "postgres")):
        return _problem(url, "the PostgreSQL driver psycopg (pip install 'layerbench[postgres]')",
                        f"no module {module}")
    return _problem(url, "the database driver the URL names installed", f"no module {module}")
