"""Structured logs: one JSON object per line, one line per request, a request id end to end.

Each request gets an id (the caller's ``X-Request-ID`` when it is a plain token, else a new one),
echoed in the ``X-Request-ID`` answer header and written on every line logged while serving it.
The formatter writes the message as the scrubber left it (``secrets.py`` masks every record as it
is made) and scrubs the structured fields too, so no line can carry a credential or a whole phone
number (``masking.py``).
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import re
import time
from datetime import UTC, datetime

from flask import g, has_request_context, request

from . import metrics, secrets
from .forks import PerProcess
from .secrets import scrub_log

REQUEST_ID = "X-Request-ID"
REQUEST_START = "X-Request-Start"  # set by the proxy (deploy/nginx.conf): when it took the request
REQUEST_ID_ENVIRON, REQUEST_START_ENVIRON = "HTTP_X_REQUEST_ID", "HTTP_X_REQUEST_START"  # WSGI's
_REQUEST_ID_FORM = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}\Z")

request_log = logging.getLogger("middleware.request")
_encoder = json.JSONEncoder(default=str, ensure_ascii=False)  # made once, not per line
_NOTHING: dict = {}


def fields(**values) -> dict:
    """``extra=`` for a structured log call: ``log.info("upstream", extra=fields(status=200))``."""
    return {"cti": values}


def info(logger: logging.Logger, message: str, args: tuple, **values) -> None:
    """``logger.info(message, *args, extra=fields(**values))`` for the lines of every request.

    Where every handler the line would reach is a plain ``StreamHandler`` writing this module's
    ``JsonFormatter`` (the factory's configuration, and gunicorn.conf.py's), the line is formatted
    once and written under each handler's lock: the same JSON, scrubbed and masked the same way,
    without a ``LogRecord`` (its making, the record factory, the handler chain). Any other
    configuration (another handler, a filter, a test's capture) gets the record as before, made
    and handled directly, without the caller lookup ``Logger.info`` makes."""
    if not logger.isEnabledFor(logging.INFO):
        return
    handlers = _json_streams(logger)
    if handlers:
        scrubbed = {key: scrub_log(v) if isinstance(v, str) else v for key, v in values.items()}
        created, text = time.time(), scrub_log(message % args)
        name = logger.name
        _write(
            handlers,
            lambda formatter: formatter.line(created, "INFO", name, text, scrubbed),
            lambda: _record(logger, message, args, values),
        )
        return
    logger.handle(_record(logger, message, args, values))


def _write(handlers: list[logging.StreamHandler], line, record) -> None:
    """Write ``line(formatter)`` to each handler's stream under its lock; ``record()`` is what a
    handler's ``handleError`` is given when the stream fails, as ``emit`` does (a broken stream
    never fails the request)."""
    for handler in handlers:
        text = line(handler.formatter)
        handler.acquire()
        try:
            handler.stream.write(text + handler.terminator)
            handler.flush()
        except Exception:
            handler.handleError(record())
        finally:
            handler.release()


def _record(logger: logging.Logger, message: str, args: tuple, values: dict) -> logging.LogRecord:
    return logger.makeRecord(
        logger.name, logging.INFO, __file__, 0, message, args, None, extra=fields(**values)
    )


def _json_streams(logger: logging.Logger) -> list[logging.StreamHandler] | None:
    """The handlers an INFO record of ``logger`` reaches (``Logger.callHandlers``' walk), when each
    is a plain ``StreamHandler`` with a ``JsonFormatter`` (not a subclass, whose lines may differ)
    and nothing on the way filters; else None."""
    found = []
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters or current.disabled:
            return None
        for handler in current.handlers:
            if (
                type(handler) is not logging.StreamHandler
                or type(handler.formatter) is not JsonFormatter
                or handler.filters
                or handler.level > logging.INFO
            ):
                return None
            found.append(handler)
        current = current.parent if current.propagate else None
    return found or None


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, request id, structured fields."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._second = (None, "")  # the formatted time of the last whole second seen

    def timestamp(self, created: float) -> str:
        """``created`` as the line's ``ts``: ISO 8601 UTC to the millisecond."""
        second = int(created)
        if self._second[0] != second:
            self._second = (
                second,
                datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            )
        return f"{self._second[1]}.{int((created - second) * 1000):03d}+00:00"

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if message is not getattr(record, "cti_scrubbed", None):  # made without our factory
            message = scrub_log(message)
        extra = getattr(record, "cti", None)
        if isinstance(extra, dict):
            extra = {k: scrub_log(v) if isinstance(v, str) else v for k, v in extra.items()}
        else:
            extra = _NOTHING
        entry = self.entry(record.created, record.levelname, record.name, message, extra)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = scrub_log(record.exc_text)
        if record.stack_info:
            entry["stack"] = scrub_log(self.formatStack(record.stack_info))
        return _encoder.encode(entry)

    def entry(self, created: float, level: str, name: str, message: str, extra: dict) -> dict:
        """The line's object: ``message`` and the structured fields ``extra`` already scrubbed."""
        entry = {"ts": self.timestamp(created), "level": level, "logger": name, "message": message}
        if "request_id" not in extra and has_request_context() and "request_id" in g:
            entry["request_id"] = g.request_id
        entry.update(extra)
        return entry

    def line(self, created: float, level: str, name: str, message: str, extra: dict) -> str:
        """``format`` of a record without exception or stack (``info``'s direct write)."""
        return _encoder.encode(self.entry(created, level, name, message, extra))


def _id_source() -> tuple[str, itertools.count]:
    """Unique request ids without a random read per request: a random prefix, made once per
    process (again in a forked child), and a counter."""
    return os.urandom(8).hex(), itertools.count()


_ids = PerProcess(_id_source)


def start() -> None:
    """Time the request and give it an id: the caller's ``X-Request-ID`` when it is a plain token.

    Behind a proxy that sets ``X-Request-Start``, the time the request waited before a thread took
    it is known too (``queue_seconds``); gunicorn alone tells the application nothing of the time
    a connection spent queued for a thread, so without the header the wait is not measured.
    """
    context = g._get_current_object()
    context.request_started = time.perf_counter()
    now = time.time()
    environ = request._get_current_object().environ  # the two headers, as WSGI gives them
    context.request_id = request_id(environ.get(REQUEST_ID_ENVIRON))
    context.queue_seconds = queued = queue_seconds(environ.get(REQUEST_START_ENVIRON), now)
    context.arrived_at = now if queued is None else now - queued


def request_id(given: str | None) -> str:
    """The caller's ``X-Request-ID`` when it is a plain token, else a new id."""
    if given and _REQUEST_ID_FORM.match(given):
        return given
    prefix, counter = _ids.get()
    return f"{prefix}{next(counter):016x}"


MAX_QUEUE_SECONDS = 3600.0  # a stamp further back than this is a broken clock, not a queue


def queue_seconds(header: str | None, now: float) -> float | None:
    """The wait since the proxy's ``X-Request-Start`` stamp: ``t=<seconds>`` with a fraction
    (nginx ``$msec``), or whole milliseconds or microseconds since the epoch (Heroku's router,
    Apache's ``%t``); None when absent or unreadable. A stamp slightly ahead of this host's clock
    counts as no wait."""
    if not header:
        return None
    value = header.strip().removeprefix("t=")
    try:
        stamp = float(value)
    except ValueError:
        return None
    if not math.isfinite(stamp) or stamp <= 0:
        return None
    if stamp > 1e14:
        stamp /= 1e6
    elif stamp > 1e11:
        stamp /= 1e3
    waited = now - stamp
    if waited > MAX_QUEUE_SECONDS:
        return None
    return max(0.0, waited)


def queued() -> float | None:
    """Seconds the current request waited before a thread took it (None: not known)."""
    return getattr(g, "queue_seconds", None) if has_request_context() else None


def arrived_at() -> float:
    """When the current request reached us (the proxy's stamp when known), as ``time.time()``;
    outside a request, now."""
    if has_request_context():
        arrived = getattr(g, "arrived_at", None)
        if arrived is not None:
            return arrived
    return time.time()


def note(**values) -> bool:
    """Put ``values`` on the current request's log line; False outside a request, where the
    caller logs a line of its own. What a request did is read on its one line (the journal entry
    a webhook stored, say), which also spares a second line per request."""
    if not has_request_context():
        return False
    context = g._get_current_object()
    noted = getattr(context, "log_fields", None)
    if noted is None:
        context.log_fields = values
    else:
        noted.update(values)
    return True


def finish(response):
    """The request's last step (the factory's after-request hook): its ``X-Request-ID`` header,
    its metrics and its one log line."""
    context = g._get_current_object()
    started = getattr(context, "request_started", None)
    if started is None:  # a hook before ours refused the request
        start()
        started = context.request_started
    seconds = time.perf_counter() - started
    current = request._get_current_object()
    rule = current.url_rule
    route = rule.rule if rule is not None else "(unmatched)"
    method, status = current.method, response.status_code
    response.headers[REQUEST_ID] = context.request_id
    waited = getattr(context, "queue_seconds", None)
    served(
        method,
        route,
        status,
        seconds,
        context.request_id,
        waited,
        getattr(context, "log_fields", _NOTHING),
    )
    return response


def served(method, route, status, seconds, request_id, waited, noted=_NOTHING) -> None:
    """A request's metrics and its one log line (``finish``'s, and the lookup's WSGI hit path's,
    which has no Flask request: ``api/lookup_hits.py``). ``waited``: its ``queue_seconds``."""
    metrics.observe_request(method, route, status, seconds)
    if waited is not None:
        metrics.observe_queue(waited)
    _log_request(
        method,
        route,
        status,
        request_id,
        round(seconds * 1000, 2),
        None if waited is None else round(waited * 1000, 2),
        noted,
    )


def _log_request(method, route, status, request_id, duration_ms, queue_ms, noted) -> None:
    """The request's one line: ``method route status`` with its fields (what the request noted
    first: a noted name the line's own fields also use is overwritten, never a duplicate).

    A line with nothing noted and a standard method, written straight to JSON streams (``info``),
    is made from the parts every request of its method, route and status shares, scrubbed once
    (``_request_parts``), and the request's own id (scrubbed), duration and wait: the same text
    ``info`` writes. Any other line is ``info``'s."""
    handlers = None
    if not noted and method in metrics.HTTP_METHODS and request_log.isEnabledFor(logging.INFO):
        handlers = _json_streams(request_log)
    if handlers is None:
        info(
            request_log,
            "%s %s %s",
            (method, route, status),
            **_request_fields(method, route, status, request_id, duration_ms, queue_ms, noted),
        )
        return
    head, tail = _request_parts(method, route, status)
    rest = (
        f'{head}, "request_id": {_encoder.encode(scrub_log(request_id))}, {tail}, '
        f'"duration_ms": {duration_ms!r}'
    )
    if queue_ms is not None:
        rest += f', "queue_ms": {queue_ms!r}'
    created = time.time()
    _write(
        handlers,
        lambda formatter: f'{{"ts": "{formatter.timestamp(created)}", {rest}}}',
        lambda: _record(
            request_log,
            "%s %s %s",
            (method, route, status),
            _request_fields(method, route, status, request_id, duration_ms, queue_ms, noted),
        ),
    )


def _request_fields(method, route, status, request_id, duration_ms, queue_ms, noted) -> dict:
    return {
        **noted,
        "request_id": request_id,
        "method": method,
        "route": route,
        "status": status,
        "duration_ms": duration_ms,
        **({} if queue_ms is None else {"queue_ms": queue_ms}),
    }


# (method, route, status) kept prepared: bounded sets each, but beyond this, made afresh
PREPARED_LINES = 4096
_prepared: dict[tuple[str, str, int], tuple[tuple[str, ...], str, str]] = {}


def _request_parts(method: str, route: str, status: int) -> tuple[str, str]:
    """The JSON of a request line's fields shared by every request of one method, route and
    status, scrubbed as ``info`` scrubs each: the message (after ``ts``) and the method, route and
    status (after ``request_id``). Made again once the registered secrets change."""
    key = (method, route, status)
    registered = secrets.registered()  # read first: a change while we make them is seen next time
    found = _prepared.get(key)
    if found is not None and found[0] is registered:
        return found[1], found[2]
    message = scrub_log(f"{method} {route} {status}")
    head = _encoder.encode({"level": "INFO", "logger": request_log.name, "message": message})
    tail = _encoder.encode(
        {"method": scrub_log(method), "route": scrub_log(route), "status": status}
    )
    found = (registered, head[1:-1], tail[1:-1])
    if len(_prepared) < PREPARED_LINES or key in _prepared:
        _prepared[key] = found
    return found[1], found[2]
