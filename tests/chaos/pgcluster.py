"""A throwaway PostgreSQL cluster: initdb into a temporary directory, its own port on
127.0.0.1, its unix socket in that directory, trust authentication; stopped and removed at
the end. The chaos suite restarts it at will without disturbing any other PostgreSQL.

Depends on nothing of ``titus``: the test suite and the benchmarks both use it. initdb and
the server refuse to run as root, so as root every command runs as the ``postgres`` OS user
(``runuser``) in a directory that user owns.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional

BIN_DIRS = ("/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin",
            "/usr/lib/postgresql/14/bin")
SUPERUSER = "titus"


class PostgresMissing(RuntimeError):
    """No PostgreSQL server binaries (initdb, pg_ctl) on this machine."""


def find_bin_dir() -> Optional[Path]:
    """The directory of initdb and pg_ctl: ``TITUS_PG_BIN``, a Debian layout, or PATH."""
    candidates = [os.environ.get("TITUS_PG_BIN", "")] + list(BIN_DIRS)
    for directory in candidates:
        if directory and (Path(directory) / "initdb").exists() \
                and (Path(directory) / "pg_ctl").exists():
            return Path(directory)
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).parent
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PgCluster:
    """One private PostgreSQL server. ``start()`` creates it, ``stop()`` removes everything.

    ``fsync`` is off: the faults here kill processes, never the machine, so what a server
    wrote is in the kernel's page cache either way and crash recovery still runs."""

    def __init__(self, bin_dir: Optional[Path] = None, port: int = 0):
        found = bin_dir or find_bin_dir()
        if found is None:
            raise PostgresMissing("no PostgreSQL server binaries (initdb, pg_ctl) found; "
                                  "install postgresql or set TITUS_PG_BIN")
        self.bin_dir = Path(found)
        self.port = port or _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="titus-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._as_postgres = os.geteuid() == 0
        self._databases = 0
        self.restarts = 0

    # -- processes ---------------------------------------------------------------------

    def _run(self, *argv: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
        command = [str(self.bin_dir / argv[0]), *argv[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        # a file, not a pipe: a server started by pg_ctl keeps its output open for ever
        with tempfile.TemporaryFile(mode="w+") as out:
            done = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=subprocess.STDOUT, text=True, timeout=timeout,
                                  cwd=self.root)
            out.seek(0)
            output = out.read()
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {output.strip()}"
                               f"\n{self.log_tail()}")
        return done

    def start(self) -> "PgCluster":
        """initdb and start the server; returns self once it accepts connections."""
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self.root.chmod(0o700)
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust",
                  "--no-sync", "-E", "UTF8", "--locale=C")
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c full_page_writes=off -c max_connections=200")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options,
                  "-w", "-t", "60", "start")
        return self

    def restart(self, mode: str = "fast") -> float:
        """``pg_ctl restart -m fast|immediate``; returns the seconds it was away."""
        began = time.monotonic()
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-m", mode, "-w",
                  "-t", "60", "restart")
        self.restarts += 1
        return time.monotonic() - began

    def stop(self) -> None:
        """Stop the server (immediately) and remove its directory."""
        if (self.data / "postmaster.pid").exists():
            try:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the server's log."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    # -- databases ----------------------------------------------------------------------

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of ``database`` (psycopg 3, TCP on 127.0.0.1)."""
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "titus") -> str:
        """A new empty database; returns its URL."""
        self._databases += 1
        name = f"{prefix}_{self._databases}"
        self.sql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop the database of ``url``, ending its sessions first."""
        name = url.rsplit("/", 1)[1]
        self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def sql(self, statement: str, database: str = "postgres") -> list[tuple]:
        """Run one statement in autocommit mode; returns its rows (empty if none)."""
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER,
                             dbname=database, autocommit=True, connect_timeout=10) as conn:
            cursor = conn.execute(statement)
            return cursor.fetchall() if cursor.description else []

    def __enter__(self) -> "PgCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
