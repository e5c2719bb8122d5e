"""One command for both servers of one host: gunicorn (every endpoint) and the stream server.

    python -m middleware.commands.serve        (``make run``; the Dockerfile's command)

gunicorn serves ``HOST:PORT`` with ``gunicorn.conf.py``; the stream server serves ``STREAM_HOST``
(default ``HOST``) on ``STREAM_PORT`` (default ``PORT`` + 1). Both read the same environment, so
they share the settings and the store. The soft limit on open files is raised to the hard one
first (a thousand streams are a thousand sockets), and both write their metrics into one
directory, so ``/metrics`` on either sums them.

If the stream server dies it is started again (pops resume: browsers reconnect with
``Last-Event-ID``); gunicorn keeps serving meanwhile. If gunicorn exits, or a settings error stops
either (exit status 3), everything stops with that status. SIGTERM or SIGINT stops both gracefully.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ..factory import CONFIG_ERROR_EXIT
from ..runtime import metrics
from .stream_server import raise_open_files_limit

log = logging.getLogger("middleware.serve")
RESTART_SECONDS = (1, 2, 5, 10)  # delays before starting a dead stream server again
ROOT = Path(__file__).resolve().parents[2]


def _gunicorn() -> list[str]:
    gunicorn = Path(sys.executable).with_name("gunicorn")
    command = [str(gunicorn) if gunicorn.exists() else "gunicorn", "app:app"]
    config = Path.cwd() / "gunicorn.conf.py"
    return command + (["--config", str(config)] if config.is_file() else [])


def _stream_server(env: dict) -> list[str]:
    host = env.get("STREAM_HOST") or env.get("HOST") or "127.0.0.1"
    port = env.get("STREAM_PORT") or str(int(env.get("PORT") or 8000) + 1)
    return [
        sys.executable,
        "-m",
        "middleware.commands.stream_server",
        "--host",
        host,
        "--port",
        port,
    ]


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="cti-middleware: %(message)s")
    raise_open_files_limit()
    env = dict(os.environ)
    if not env.get(metrics.MULTIPROC_ENV):  # one metrics directory for both servers
        with contextlib.suppress(OSError):
            env[metrics.MULTIPROC_ENV] = metrics.server_directory()
    web = subprocess.Popen(_gunicorn(), env=env)  # noqa: S603 - our own command lines
    streams = subprocess.Popen(_stream_server(env), env=env)  # noqa: S603
    stopping = False

    def stop(signum, _frame):
        nonlocal stopping
        stopping = True
        for child in (web, streams):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    restarts = 0
    while True:
        if web.poll() is not None:
            stop(None, None)
            streams.wait()
            return 0 if stopping else web.returncode
        code = streams.poll()
        if code is not None and not stopping:
            if code == CONFIG_ERROR_EXIT:
                stop(None, None)
                web.wait()
                return code
            delay = RESTART_SECONDS[min(restarts, len(RESTART_SECONDS) - 1)]
            log.warning("the stream server exited (%s); starting it again in %s s", code, delay)
            time.sleep(delay)
            restarts += 1
            streams = subprocess.Popen(_stream_server(env), env=env)  # noqa: S603
        time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main())
