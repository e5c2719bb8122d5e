"""The one gunicorn launcher of the tests and the benchmarks, and the wait for a served process
to answer."""

from __future__ import annotations

import http.client
import signal
import subprocess
from collections.abc import Container
from pathlib import Path
from urllib.parse import urlsplit

from .processes import ROOT, free_port, gunicorn_command, stop_group
from .waiting import wait_until

BELOW_500 = range(100, 500)


def wait_healthy(
    name: str,
    process: subprocess.Popen,
    base: str,
    log_path: Path | None,
    timeout: float,
    *,
    path: str = "/healthz",
    headers: dict | None = None,
    statuses: Container[int] = (200,),
) -> None:
    """Until ``GET base+path`` answers one of ``statuses``; a RuntimeError with the log's end if
    ``process`` exits first, an AssertionError with it if ``timeout`` seconds pass."""

    def log_end() -> str:
        return log_path.read_text()[-2000:] if log_path else "(no log)"

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited: {log_end()}")
        url = urlsplit(base)
        try:
            conn = http.client.HTTPConnection(url.hostname, url.port, timeout=2)
            try:
                conn.request("GET", path, headers=headers or {})
                return conn.getresponse().status in statuses
            finally:
                conn.close()
        except OSError:
            return False

    wait_until(answers, timeout, lambda: f"{name} not ready: {log_end()}", interval=0.1)


class Gunicorn:
    """``gunicorn APP`` on a free port (or ``port``), in a process group of its own.

    ``env`` is the whole environment (see ``processes.clean_env``). Serves the code of ``tree``
    (this checkout by default; another one to compare), started from ``cwd`` (the tree's root by
    default, so its ``gunicorn.conf.py`` applies as in a deployment; flags win over it; ``workers``
    or ``threads`` None leaves them to it); its output to ``log`` (a path) or nowhere. ``pid`` is
    the master's. ``stop()`` takes the whole process group down; ``terminate()`` is a graceful
    shutdown.
    """

    def __init__(
        self,
        env: dict,
        *,
        app: str = "app:app",
        workers: int | None = 2,
        threads: int | None = 4,
        log: Path | None = None,
        tree: Path = ROOT,
        cwd: Path | None = None,
        extra_args: tuple = (),
        port: int | None = None,
    ):
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        self._log = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 - closed in stop
        self.process = subprocess.Popen(
            gunicorn_command(
                app, self.port, workers=workers, threads=threads, extra_args=extra_args, tree=tree
            ),
            env={**env, "PYTHONPATH": str(tree)},  # its own code, not this checkout's
            cwd=cwd or tree,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pid = self.process.pid

    def wait_ready(
        self,
        path: str = "/healthz",
        headers: dict | None = None,
        timeout: float = 30,
        *,
        statuses: Container[int] = BELOW_500,
    ) -> None:
        """Until ``GET path`` is answered with one of ``statuses`` (any below 500 by default);
        stopped, and an error with the log's end, if it is not within ``timeout`` seconds."""
        try:
            wait_healthy(
                f"gunicorn on port {self.port}",
                self.process,
                self.base,
                self.log_path,
                timeout,
                path=path,
                headers=headers,
                statuses=statuses,
            )
        except BaseException:
            self.stop()
            raise

    def terminate(self, timeout: float = 20) -> int:
        """SIGTERM to the master alone (a graceful shutdown, as a supervisor sends it); its exit
        status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def stop(self, timeout: float = 15) -> None:
        stop_group(self.process, timeout=timeout)
        if self._log is not subprocess.DEVNULL:
            self._log.close()

    def __enter__(self) -> Gunicorn:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
