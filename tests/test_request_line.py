"""The request's one log line, written straight to a JSON stream from parts prepared once per
method, route and status (``logs._log_request``), is the line the record path writes for the same
request: the same fields in the same order, scrubbed and masked the same way."""

from __future__ import annotations

import io
import json
import logging
import re
import time

import pytest

from middleware.runtime import logs, secrets

from .conftest import API_KEY, LOOKUP_KEY

KNOWN = "0721234567"
CONTACT = {"id": "c-1", "firstname": "James", "lastname": "Smith", "mobilephone": "+27721234567"}


class Captured(logging.StreamHandler):
    """A stream handler that is not plain ``StreamHandler``: lines go the record way."""


@pytest.fixture
def settings(upstream):
    upstream.get("http://crm.test/calls/record", json={"status": True, "contact": CONTACT})
    return {
        "CTI_LOOKUP_KEYS": LOOKUP_KEY,
        "CTI_CRM": "switchtransact",
        "CTI_CRM_URL": "http://crm.test",
        "CTI_CRM_API_KEY": "crm-key-6a4d",
    }


@pytest.fixture
def request_lines():
    """``write(handler_class)``: the request lines the app writes while that handler, with a
    ``JsonFormatter``, is the only one the request logger reaches."""
    logger = logging.getLogger("middleware.request")
    saved = logger.handlers[:], logger.propagate, logger.level

    def lines(handler_class, serve) -> list[str]:
        stream = io.StringIO()
        handler = handler_class(stream)
        handler.setFormatter(logs.JsonFormatter())
        logger.handlers[:] = [handler]
        logger.propagate = False
        logger.setLevel(logging.INFO)
        serve()
        return stream.getvalue().splitlines()

    yield lines
    logger.handlers[:], logger.propagate = saved[0], saved[1]
    logger.setLevel(saved[2])


def _requests(client):
    """A hit with each kind of key and answer, a refused and an unknown route, a caller's request
    id holding a key and a number, a proxy's queue stamp, a method outside the standard ones."""
    lookup = f"/api/v1/contacts/lookup?phone={KNOWN}"
    client.get(lookup, headers={"X-API-Key": API_KEY, "X-Request-ID": "r-0"})  # fills the cache
    yield client.get(lookup, headers={"X-API-Key": API_KEY, "X-Request-ID": "r-1"})
    yield client.get(lookup, headers={"X-API-Key": LOOKUP_KEY, "X-Request-ID": "r-2"})
    yield client.get(
        lookup + "&format=text",
        headers={"Authorization": f"Bearer {LOOKUP_KEY}", "X-Request-ID": "r-3"},
    )
    yield client.get(lookup, headers={"X-Request-ID": f"r-{API_KEY}-+27721234567"})
    yield client.get("/api/v1/journal", headers={"X-API-Key": LOOKUP_KEY, "X-Request-ID": "r-4"})
    yield client.get("/nowhere", headers={"X-Request-ID": "r-5"})
    start = f"t={time.time() - 0.25:.3f}"
    yield client.get(
        lookup, headers={"X-API-Key": API_KEY, "X-Request-ID": "r-6", "X-Request-Start": start}
    )
    yield client.open("/healthz", method="BREW", headers={"X-Request-ID": "r-7"})


def _steady(line: str) -> str:
    """The line without what differs between two runs of one request (its time, its duration)."""
    line = re.sub(r'"ts": "[^"]+"', '"ts": "T"', line)
    return re.sub(r'"(duration|queue)_ms": [0-9.e-]+', r'"\1_ms": 0', line)


def test_prepared_lines_are_the_record_path_lines(app, request_lines):
    statuses = []

    def serve():
        statuses[:] = [response.status_code for response in _requests(app.test_client())]

    prepared = request_lines(logging.StreamHandler, serve)
    recorded = request_lines(Captured, serve)
    assert statuses == [200, 200, 200, 401, 403, 404, 200, 405]
    assert len(prepared) == len(recorded) == 9  # the filling miss, then one line per request
    assert [_steady(line) for line in prepared] == [_steady(line) for line in recorded]
    hit = json.loads(prepared[1])
    assert list(hit) == [
        "ts", "level", "logger", "message", "request_id", "method", "route", "status",
        "duration_ms",
    ]  # fmt: skip
    assert hit["message"] == "GET /api/v1/contacts/lookup 200" and hit["request_id"] == "r-1"
    refused = json.loads(prepared[4])
    assert refused["request_id"] == "r-***-+27*******4567"
    assert "queue_ms" in json.loads(prepared[7])
    assert all(API_KEY not in line and LOOKUP_KEY not in line for line in prepared)


def test_prepared_parts_follow_a_newly_registered_secret(app, request_lines, monkeypatch):
    """A secret registered after a line was prepared is scrubbed from the next line: the parts
    are made again (a route that holds it is written as the record path writes it)."""
    monkeypatch.setattr(secrets, "_secrets", secrets.registered())  # restored after the test
    client = app.test_client()
    lookup = f"/api/v1/contacts/lookup?phone={KNOWN}"
    client.get(lookup, headers={"X-API-Key": API_KEY})

    def serve():
        client.get(lookup, headers={"X-API-Key": API_KEY, "X-Request-ID": "r-8"})

    before = json.loads(request_lines(logging.StreamHandler, serve)[0])
    assert before["route"] == "/api/v1/contacts/lookup"
    secrets.register(["contacts"])
    after = request_lines(logging.StreamHandler, serve)
    recorded = request_lines(Captured, serve)
    assert json.loads(after[0])["route"] == "/api/v1/***/lookup"
    assert json.loads(after[0])["message"] == "GET /api/v1/***/lookup 200"
    assert _steady(after[0]) == _steady(recorded[0])


def test_a_noted_field_takes_the_record_path_and_joins_the_line(app, request_lines):
    def serve():
        with app.test_request_context("/healthz", headers={"X-Request-ID": "r-9"}):
            logs.start()
            logs.note(journal_entry=3)
            logs.finish(app.response_class("ok"))

    (line,) = request_lines(logging.StreamHandler, serve)
    fields = json.loads(line)
    assert fields["journal_entry"] == 3 and fields["request_id"] == "r-9"
    assert list(fields)[4:6] == ["journal_entry", "request_id"]
