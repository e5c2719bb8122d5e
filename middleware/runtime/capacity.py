"""How many threads this process's gunicorn worker runs requests on, so that open screen-pop
streams hold at most half of them (``services/events.StreamSlots``) and lookups, click-to-calls
and webhooks always find one free: with ``--threads 4`` and the default ``CTI_STREAMS_PER_WORKER``
of 16, four streams once took every thread and nothing else was answered.

gunicorn does not tell the application its thread count. ``gunicorn.conf.py`` does
(``post_worker_init``: the worker's own ``cfg.threads``, ``set_worker_threads``); without that
file, the ``--threads`` option of gunicorn's command line or of ``GUNICORN_CMD_ARGS`` (which the
command line overrides, as gunicorn reads them) says it. None when neither does (another server,
or a configuration file of one's own): then ``CTI_STREAMS_PER_WORKER`` alone bounds the streams.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys

_threads: int | None = None


def set_worker_threads(count: int) -> None:
    """This worker's thread count, from gunicorn's configuration (``gunicorn.conf.py``)."""
    global _threads
    _threads = max(1, int(count))


def worker_threads() -> int | None:
    """This worker's thread count, when gunicorn's configuration or command line says it."""
    return _threads if _threads is not None else _threads_option()


def stream_room(configured: int) -> int:
    """How many streams this worker may hold: ``configured``, and at most half its threads."""
    threads = worker_threads()
    return configured if threads is None else max(0, min(configured, threads // 2))


def _threads_option() -> int | None:
    program = sys.argv[0] if sys.argv else ""
    run_as = (os.path.basename(program), os.path.basename(os.path.dirname(program)))
    if not run_as[0].startswith("gunicorn") and run_as[1] != "gunicorn":  # or python -m gunicorn
        return None
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--threads", type=int)
    found = None
    for argv in (shlex.split(os.environ.get("GUNICORN_CMD_ARGS", "")), sys.argv[1:]):
        try:
            known, _ = parser.parse_known_args(argv)
        except (SystemExit, ValueError):  # not ours to judge: gunicorn parsed it already
            continue
        if known.threads:
            found = known.threads
    return found
