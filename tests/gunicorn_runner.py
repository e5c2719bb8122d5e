"""Start the real service under gunicorn for tests that need several worker processes."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from .conftest import API_KEY, SECRETS, WEBHOOK_SECRET
from .fakeserver import free_port
from .processes import ROOT, clean_env, gunicorn_command, stop_group


def wait_healthy(
    name: str, process: subprocess.Popen, base: str, log_path: Path, timeout: float
) -> None:
    """Until ``GET base/healthz`` answers 200; a RuntimeError with the log's end if ``process``
    exits first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited: {log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} not ready: {log_path.read_text()[-2000:]}")
        time.sleep(0.1)


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
    """Serve ``app:app`` on a free port with ``env`` (CTI_* settings); yield the base URL.

    On exit, the server's whole log is checked for every test credential.
    """
    port = port or free_port()
    full_env = clean_env(env)
    args = gunicorn_command(
        "app:app",
        port,
        workers=workers,
        threads=threads,
        extra_args=("--graceful-timeout", "5", *extra_args),
    )
    log_path = Path(cwd or ROOT) / f"gunicorn-{port}.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed in finally
    process = subprocess.Popen(
        args, env=full_env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy("gunicorn", process, base, log_path, ready_timeout)
        yield base
    finally:
        stop_group(process)
        log.close()
    leaked = [secret for secret in SECRETS if secret in log_path.read_text()]
    assert not leaked, f"secret(s) in the gunicorn log {log_path}: {leaked}"


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
