"""The child processes the tests and the benchmarks start: a free port, their environment,
gunicorn's command line, and a stop that takes the whole process group down (SIGTERM, then
SIGKILL)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))


def clean_env(settings: dict | None = None) -> dict:
    """This process's environment without its CTI_* variables, with ``settings``, and the
    checkout importable (``PYTHONPATH``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTI_")}
    env.update(settings or {})
    env["PYTHONPATH"] = str(ROOT)
    return env


def gunicorn_command(
    app: str,
    port: int,
    *,
    workers: int | None,
    threads: int | None,
    extra_args: tuple = (),
    tree: Path = ROOT,
) -> list[str]:
    """``gunicorn APP`` from the checkout (or another ``tree``), bound to 127.0.0.1:``port``;
    ``workers`` and ``threads`` as a config file or gunicorn's defaults say when None."""
    return [
        GUNICORN,
        app,
        "--chdir",
        str(tree),
        "--bind",
        f"127.0.0.1:{port}",
        *(("--workers", str(workers)) if workers is not None else ()),
        *(("--threads", str(threads)) if threads is not None else ()),
        *extra_args,
    ]


def stop_group(process: subprocess.Popen, timeout: float = 10) -> None:
    """SIGTERM to the process group of ``process`` (started with ``start_new_session``), SIGKILL
    if it has not ended after ``timeout`` seconds."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
