"""gunicorn settings for the CTI middleware, each overridable from the environment.

Optional: ``gunicorn app:app`` without this file serves the whole service (metrics, the store and
the journal deliverer need no gunicorn hook). gunicorn reads ``./gunicorn.conf.py`` by itself when
started from this directory; command-line flags win over it.

- Workers are threaded (``gthread``): lookups and click-to-calls spend their time waiting on
  upstreams, and each live screen-pop stream (Server-Sent Events) holds one thread.
- ``graceful_timeout`` is well above the longest upstream deadline (``CTI_UPSTREAM_TIMEOUT``, 5 s
  by default; reads retry within the same deadline), so a restart or SIGTERM lets every request in
  flight finish. Raise ``GUNICORN_GRACEFUL_TIMEOUT`` if you raise the upstream timeout past it.
- Logs: gunicorn's own lines go through the same JSON formatter as the app's, so every line on
  stderr is one JSON object; the app writes one line per request, so gunicorn's access log is off.
"""

import os

from gunicorn.glogging import Logger


def _number(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


bind = os.environ.get("GUNICORN_BIND") or "{}:{}".format(
    os.environ.get("HOST") or ("0.0.0.0" if os.environ.get("PORT") else "127.0.0.1"),  # noqa: S104
    os.environ.get("PORT") or "8000",
)
workers = _number("WEB_CONCURRENCY", 2)
worker_class = "gthread"
# Each open screen-pop stream holds a thread; idle ones cost no CPU. 64 per worker keeps room for
# lookups beside 50 streams even if most land on one worker (see README, "Live screen pop").
threads = _number("GUNICORN_THREADS", 64)
graceful_timeout = _number("GUNICORN_GRACEFUL_TIMEOUT", 30)
timeout = _number("GUNICORN_TIMEOUT", 60)
keepalive = 5

errorlog = "-"


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
    "formatters": {"json": {"()": "middleware.logs.JsonFormatter"}},
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
