"""Start the real service under gunicorn (the launcher the benchmarks use too,
``devtools.gunicorn``) and the stream server, for tests that need real processes; each checks its
whole log for the test credentials when it stops."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

from devtools.gunicorn import Gunicorn, wait_healthy
from devtools.processes import ROOT, clean_env, free_port, stop_group

from .conftest import API_KEY, SECRETS, WEBHOOK_SECRET


@contextlib.contextmanager
def gunicorn(
    env: dict,
    *,
    workers: int = 2,
    threads: int = 1,
    cwd: Path | None = None,
    extra_args: tuple = (),
    ready_timeout: float = 20,
    port: int | None = None,
):
    """Serve ``app:app`` on a free port with ``env`` (CTI_* settings), from ``cwd`` (the test's
    directory by default: no ``gunicorn.conf.py``); yield the base URL.

    On exit, the server's whole log is checked for every test credential.
    """
    port = port or free_port()
    log_path = Path(cwd or ROOT) / f"gunicorn-{port}.log"
    server = Gunicorn(
        clean_env(env),
        workers=workers,
        threads=threads,
        log=log_path,
        cwd=cwd or Path.cwd(),
        extra_args=("--graceful-timeout", "5", *extra_args),
        port=port,
    )
    try:
        server.wait_ready(timeout=ready_timeout, statuses=(200,))
        yield server.base
    finally:
        server.stop(timeout=10)
    leaked = [secret for secret in SECRETS if secret in log_path.read_text()]
    assert not leaked, f"secret(s) in the gunicorn log {log_path}: {leaked}"


def host_env(tmp_path: Path, **settings) -> dict:
    """The settings of gunicorn and the stream server on one host, as ``make run`` runs them: the
    test key and secret, one store and one metrics directory of their own, and ``settings``."""
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    return {
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
        "CTI_API_KEYS": API_KEY,
        "CTI_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "CTI_DATABASE": str(tmp_path / "cti.sqlite3"),
        **settings,
    }


@contextlib.contextmanager
def streaming_server(tmp_path: Path, env: dict | None = None):
    """The middleware for screen-pop stream tests: two threaded workers, the test key and secret,
    a private store; open streams end at a 1 s graceful timeout (browsers resume them)."""
    settings = {
        "CTI_API_KEYS": API_KEY,
        "CTI_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "CTI_DATABASE": str(tmp_path / "cti.sqlite3"),
        **(env or {}),
    }
    with gunicorn(
        settings, workers=2, threads=32, cwd=tmp_path, extra_args=("--graceful-timeout", "1")
    ) as base:
        yield base


class StreamServerProcess:
    """The stream server (``python -m middleware.commands.stream_server``) as a real process."""

    def __init__(self, env: dict, cwd: Path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        full_env = clean_env(env)
        self.log_path = Path(cwd) / f"stream-server-{self.port}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop
        self.process = subprocess.Popen(
            [sys.executable, "-m", "middleware.commands.stream_server", "--port", str(self.port)],
            env=full_env,
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 20) -> None:
        wait_healthy("stream server", self.process, self.base, self.log_path, timeout)

    def stop(self) -> None:
        stop_group(self.process)
        self._log.close()

    def threads(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(next(line for line in status.splitlines() if line.startswith("Threads:"))[8:])


@contextlib.contextmanager
def stream_server(env: dict, cwd: Path):
    """The stream server on a free port with ``env``; yields the process (``.base`` its URL).

    On exit its whole log is checked for every test credential."""
    server = StreamServerProcess(env, cwd)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
    leaked = [secret for secret in SECRETS if secret in server.log_path.read_text()]
    assert not leaked, f"secret(s) in the stream server log {server.log_path}: {leaked}"
