"""A throwaway PostgreSQL server for the store's tests and tests/perf/fleet_eval.py: Debian's binaries, initdb in
a temporary folder, started with pg_ctl on a free localhost port, removed at the end.

PostgreSQL refuses to run as root: as root the server runs as the `postgres` user the Debian package creates
(runuser), in a folder that user owns. The superuser is `bench` with a password (scram-sha-256 over TCP), so a
wrong password is refused as on a team's server. fsync is off: the tests check what the store does, not the
durability of this throwaway server.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SUPERUSER, PASSWORD = "bench", "bench-secret"


def binaries() -> Path | None:
    """The folder of initdb and pg_ctl (the newest Debian PostgreSQL), or None when none is installed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def why_not() -> str:
    """Why no server can be started here ("" when one can)."""
    if binaries() is None:
        return "no PostgreSQL binaries (apt-get install postgresql; .ci/run installs them)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and no `postgres` user to run the server as"
    try:
        import psycopg  # noqa: F401 - only whether the driver imports
    except ImportError:
        return "no psycopg (pip install -e '.[postgres]')"
    return ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A running throwaway server: `url(db)` for SQLAlchemy, `sql(...)` to run statements as the superuser."""

    folder: Path
    port: int
    bin: Path

    def _as_owner(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return subprocess.run([*prefix, *argv], capture_output=True, text=True, check=check, timeout=60)

    def url(self, db: str = "postgres", *, user: str = SUPERUSER, password: str = PASSWORD) -> str:
        return f"postgresql+psycopg://{user}:{password}@127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=120")
        self._as_owner(str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), "-o", options,
                       "-l", str(self.folder / "server.log"), "-w", "start")

    def stop(self) -> None:
        self._as_owner(str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop",
                       check=False)

    def sql(self, *statements: str, db: str = "postgres") -> list:
        """Run statements as the superuser (autocommit: CREATE DATABASE needs it); the last one's rows, if any."""
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, password=PASSWORD, dbname=db,
                             autocommit=True) as conn:
            rows: list = []
            for statement in statements:
                cur = conn.execute(statement)
                rows = cur.fetchall() if cur.description else []
            return rows

    def new_database(self, name: str) -> str:
        self.sql(f"CREATE DATABASE {name}")
        return self.url(name)

    def owned_folder(self, name: str) -> Path:
        """A folder under the server's, owned by the server's user (for a tablespace)."""
        path = self.folder / name
        path.mkdir()
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            os.chown(path, entry.pw_uid, entry.pw_gid)
        return path

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def start_server() -> Server:
    """initdb and start a server in a new temporary folder (a few seconds)."""
    binary = binaries()
    folder = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    os.chmod(folder, 0o755)
    (folder / "pw").write_text(PASSWORD + "\n")
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(folder, entry.pw_uid, entry.pw_gid)
        os.chown(folder / "pw", entry.pw_uid, entry.pw_gid)
    server = Server(folder=folder, port=free_port(), bin=binary)
    server._as_owner(str(binary / "initdb"), "-D", str(folder / "data"), "-U", SUPERUSER, "--pwfile",
                     str(folder / "pw"), "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                     "--no-sync", "--no-instructions")
    server.start()
    return server
