"""Structured logs: one JSON object per line, one line per request, a request id end to end.

Each request gets an id (the caller's ``X-Request-ID`` when it is a plain token, else a new one),
echoed in the ``X-Request-ID`` answer header and written on every line logged while serving it.
The formatter writes the message as the scrubber left it (``secrets.py`` masks every record as it
is made) and scrubs the structured fields too, so no line can carry a credential.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from datetime import UTC, datetime

from flask import Flask, g, has_request_context, request

from . import metrics
from .secrets import scrub

REQUEST_ID = "X-Request-ID"
_REQUEST_ID_FORM = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}\Z")

request_log = logging.getLogger("middleware.request")


def fields(**values) -> dict:
    """``extra=`` for a structured log call: ``log.info("upstream", extra=fields(status=200))``."""
    return {"cti": values}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, request id, structured fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        if has_request_context() and "request_id" in g:
            entry["request_id"] = g.request_id
        extra = getattr(record, "cti", None)
        if isinstance(extra, dict):
            for key, value in extra.items():
                entry[key] = scrub(value) if isinstance(value, str) else value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = scrub(record.exc_text)
        if record.stack_info:
            entry["stack"] = scrub(self.formatStack(record.stack_info))
        return json.dumps(entry, default=str, ensure_ascii=False)


def install(app: Flask) -> None:
    """Time every request and log it; register before any hook that may refuse a request."""
    app.before_request(_start)
    app.after_request(_finish)


def _start() -> None:
    g.request_started = time.perf_counter()
    given = request.headers.get(REQUEST_ID, "")
    g.request_id = given if _REQUEST_ID_FORM.match(given) else uuid.uuid4().hex


def _finish(response):
    started = g.get("request_started")
    if started is None:  # a hook before ours refused the request
        _start()
        started = g.request_started
    seconds = time.perf_counter() - started
    rule = request.url_rule
    route = rule.rule if rule is not None else "(unmatched)"
    response.headers[REQUEST_ID] = g.request_id
    metrics.observe_request(request.method, route, response.status_code, seconds)
    request_log.info(
        "%s %s %s",
        request.method,
        route,
        response.status_code,
        extra=fields(
            request_id=g.request_id,
            method=request.method,
            route=route,
            status=response.status_code,
            duration_ms=round(seconds * 1000, 2),
        ),
    )
    return response
