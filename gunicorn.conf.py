"""gunicorn settings for the CTI middleware, each overridable from the environment.

Optional: ``gunicorn app:app`` without this file serves the whole service (metrics, the store and
the journal deliverer need no gunicorn hook). gunicorn reads ``./gunicorn.conf.py`` by itself when
started from this directory; command-line flags win over it.

- Workers are threaded (``gthread``): lookups and click-to-calls spend their time waiting on
  upstreams. Screen-pop streams belong on the stream server (``middleware/commands/stream_server.py``);
  one a worker serves holds a thread, so a worker holds at most ``CTI_STREAMS_PER_WORKER`` (16)
  and answers 503 ``busy`` beyond: keep ``threads`` well above it.
- ``graceful_timeout`` is well above the longest upstream deadline (``CTI_UPSTREAM_TIMEOUT``, 5 s
  by default; reads retry within the same deadline), so a restart or SIGTERM lets every request in
  flight finish. Raise ``GUNICORN_GRACEFUL_TIMEOUT`` if you raise the upstream timeout past it.
- CPU affinity (``GUNICORN_CPU_AFFINITY``: ``auto`` by default, ``on`` or ``off``): when the
  workers are as many as the CPUs this process may run on (``os.sched_getaffinity``: a VM or a
  container sized for the service), each worker is held to one CPU of its own; ``on`` does so
  with any count (round robin). A worker's threads then hand work to each other on one CPU: a
  lookup miss passes from the request thread to the lookup pool and back, and on a VM each such
  hand-off to an idle CPU waits for that CPU to wake (about 0.15 ms on the benchmarks' 2-core VM:
  docs/benchmarks.md). ``auto`` leaves the workers free on a shared host of many CPUs, where
  every service pinning its workers to the first CPUs would crowd them.
- Logs: gunicorn's own lines go through the same JSON formatter as the app's, so every line on
  stderr is one JSON object; the app writes one line per request, so gunicorn's access log is off.
"""

import os

from gunicorn.glogging import Logger


def _number(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


# Loopback unless HOST says otherwise: gunicorn is never exposed directly, only behind a proxy
# (deploy/nginx.conf; in a container, HOST=0.0.0.0 for the proxy's container alone).
bind = os.environ.get("GUNICORN_BIND") or "{}:{}".format(
    os.environ.get("HOST") or "127.0.0.1", os.environ.get("PORT") or "8000"
)
workers = _number("WEB_CONCURRENCY", 2)
worker_class = "gthread"
# A stream served here holds a thread (at most CTI_STREAMS_PER_WORKER of them, 16 by default):
# 64 per worker leaves 48 for lookups, click-to-calls and webhooks.
threads = _number("GUNICORN_THREADS", 64)
graceful_timeout = _number("GUNICORN_GRACEFUL_TIMEOUT", 30)
timeout = _number("GUNICORN_TIMEOUT", 60)
keepalive = 5

errorlog = "-"

AFFINITY = (os.environ.get("GUNICORN_CPU_AFFINITY") or "auto").strip().lower()
if AFFINITY not in ("auto", "on", "off"):
    raise SystemExit(f"GUNICORN_CPU_AFFINITY must be auto, on or off, not {AFFINITY!r}")
_CPU_OF_AGE: dict[int, int] = {}  # the master's: the CPU each worker (by its age) was given


def pre_fork(server, worker):
    """In the master, before a worker is forked: the CPU it will be held to, if any (the one
    fewest live workers hold, so a worker respawned takes the CPU its predecessor had)."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if AFFINITY == "off" or not cpus or (AFFINITY == "auto" and server.num_workers != len(cpus)):
        return
    live = {w.age for w in server.WORKERS.values()}
    for age in [age for age in _CPU_OF_AGE if age not in live]:
        del _CPU_OF_AGE[age]
    held = [list(_CPU_OF_AGE.values()).count(cpu) for cpu in cpus]
    _CPU_OF_AGE[worker.age] = cpus[held.index(min(held))]


def post_worker_init(worker):
    """Tell the app this worker's thread count: its screen-pop streams hold at most half of them
    (``middleware/runtime/capacity.py``), whatever ``--threads`` overrode here."""
    from middleware.runtime.capacity import set_worker_threads

    set_worker_threads(worker.cfg.threads)


def post_fork(server, worker):
    """In the new worker: hold it (and every thread it starts) to the CPU ``pre_fork`` chose."""
    cpu = _CPU_OF_AGE.get(worker.age)
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})


class AppLogger(Logger):
    """gunicorn's logger without its access line: with ``logconfig_dict`` set, gunicorn builds
    every request's access-log fields (a dict of some 30 entries) only for the ``gunicorn.access``
    logger below to drop them. ``--access-logfile`` still turns it on."""

    def access(self, resp, req, environ, request_time):
        if self.cfg.accesslog:
            super().access(resp, req, environ, request_time)


logger_class = AppLogger
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "middleware.runtime.logs.JsonFormatter"}},
    "handlers": {
        "json": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"level": "INFO", "handlers": ["json"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
        "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": False},
    },
}
