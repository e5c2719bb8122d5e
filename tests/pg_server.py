"""A real PostgreSQL server for the tests, from the distribution's packages.

One server per test session (per xdist worker): ``initdb`` into a temporary directory, listening
on 127.0.0.1 at a free port with its unix socket in that directory and ``fsync`` on (the store's
durability promises are tested as configured in production). Each test gets a database of its own.
As root the server runs as the ``postgres`` user (PostgreSQL refuses to run as root). Tests that use
it are skipped where PostgreSQL is not installed; ``.ci/run`` installs it.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from devtools.processes import free_port

USER = "cti"
PASSWORD = "pg-password-4e7d"  # trust auth ignores it; it is here to prove it never leaks


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class PostgresServer:
    def __init__(self, bin_dir: Path):
        self.bin = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="cti-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.as_postgres: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            self.as_postgres = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run(
            [*self.as_postgres, *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=60,
        )

    def start(self) -> None:
        """Create the cluster (the first time) and start the server."""
        if not self.data.exists():
            self._init()
        options = (
            f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=on -c max_connections=200"
            " -c shared_buffers=16MB"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.root / "server.log"),
            "-o",
            options,
            "-w",
            "-t",
            "30",
            "start",
        )

    def _init(self) -> None:
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            USER,
            "--auth=trust",
            "--no-instructions",
            "--encoding=UTF8",
        )

    def pause(self) -> None:
        """Stop the server, keeping its data, as an outage would."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def stop(self) -> None:
        """Stop the server and remove everything it had."""
        try:
            if (self.data / "postmaster.pid").exists():
                self.pause()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A fresh, empty database; its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop a test's database, closing whatever connections it left open."""
        import psycopg

        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_server():
    """The session's PostgreSQL server; the tests that use it are skipped where it is missing."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    server = PostgresServer(bin_dir)
    try:
        server.start()
    except (subprocess.SubprocessError, OSError) as exc:
        server.stop()
        pytest.fail(f"PostgreSQL did not start: {exc}")
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server):
    """A URL of an empty database of this test's own, dropped afterwards."""
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_database(request, tmp_path) -> str:
    """``CTI_DATABASE`` for each SQL backend in turn: a SQLite path, then a PostgreSQL URL."""
    if request.param == "sqlite":
        return str(tmp_path / "cti.sqlite3")
    return request.getfixturevalue("postgres_url")
