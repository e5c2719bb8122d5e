"""A real ``redis-server`` for the tests of the shared store (skipped where it is not installed).

``RedisServer`` runs one private instance on 127.0.0.1 at a free port, in its own temp directory,
with persistence off; ``stop()`` kills it and ``start()`` brings it back on the same port (the
outage tests). The ``redis_url`` fixture is one server per xdist worker for the whole session,
flushed before each test.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile

import pytest

from devtools.processes import free_port
from devtools.waiting import wait_until

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def redis_available() -> bool:
    return shutil.which("redis-server") is not None


class RedisServer:
    def __init__(self, port: int | None = None, password: str | None = None):
        self.port = port or free_port()
        self.password = password
        auth = f":{password}@" if password else ""
        self.url = f"redis://{auth}127.0.0.1:{self.port}/0"
        self.dir = tempfile.mkdtemp(prefix="cti-redis-")
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 10) -> RedisServer:
        args = [
            REDIS_SERVER,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--dir",
            self.dir,
        ]
        if self.password:
            args += ["--requirepass", self.password]
        self.process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.dir
        )

        def up() -> bool:
            if self.answers():
                return True
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited on port {self.port}")
            return False

        try:
            wait_until(up, timeout, f"redis-server did not start on port {self.port}")
        except BaseException:
            self.stop()
            raise
        return self

    def answers(self) -> bool:
        try:
            return self.command("PING") == "+PONG"
        except OSError:
            return False

    def command(self, *words: str) -> str:
        """One inline command over a raw socket; the first line of the reply."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
            if self.password:
                sock.sendall(f"AUTH {self.password}\r\n".encode())
            sock.sendall((" ".join(words) + "\r\n").encode())
            replies = sock.makefile("rb")
            if self.password:
                replies.readline()
            return replies.readline().decode().strip()

    def flush(self) -> None:
        self.command("FLUSHALL")

    def stop(self) -> None:
        """Kill the server at once (no shutdown save): an outage, as a crash would cause one."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server():
    """One redis-server per xdist worker, for the whole session."""
    if not redis_available():
        pytest.skip("redis-server is not installed")
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def redis_url(redis_server):
    """The URL of an empty Redis."""
    redis_server.flush()
    return redis_server.url


@pytest.fixture(params=["embedded", "postgresql", "redis"])
def shared_env(request):
    """CTI_* settings for each store a cross-worker promise must hold with: the embedded one
    (nothing to add), PostgreSQL and Redis (each skipped where its server is not installed)."""
    if request.param == "embedded":
        return {}
    if request.param == "postgresql":
        return {"CTI_DATABASE": request.getfixturevalue("postgres_url")}
    return {"CTI_REDIS_URL": request.getfixturevalue("redis_url")}
