"""Start the real service under gunicorn for tests that need several worker processes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from .conftest import API_KEY, SECRETS, WEBHOOK_SECRET
from .fakeserver import free_port

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))


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
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CTI_")}
    full_env.update(env)
    full_env["PYTHONPATH"] = str(ROOT)
    args = [
        GUNICORN,
        "app:app",
        "--chdir",
        str(ROOT),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--graceful-timeout",
        "5",
        *extra_args,
    ]
    log_path = Path(cwd or ROOT) / f"gunicorn-{port}.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed in finally
    process = subprocess.Popen(
        args, env=full_env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=1) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn not ready: {log_path.read_text()[-2000:]}")
            time.sleep(0.1)
        yield base
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
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
    """The stream server (``python -m middleware.stream_server``) as a real process."""

    def __init__(self, env: dict, cwd: Path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("CTI_")}
        full_env.update(env)
        full_env["PYTHONPATH"] = str(ROOT)
        self.log_path = Path(cwd) / f"stream-server-{self.port}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop
        self.process = subprocess.Popen(
            [sys.executable, "-m", "middleware.stream_server", "--port", str(self.port)],
            env=full_env,
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"stream server exited: {self.log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=1) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"stream server not ready: {self.log_path.read_text()[-2000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
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
