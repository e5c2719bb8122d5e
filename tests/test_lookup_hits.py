"""The caller lookup's WSGI path (``middleware/api/lookup_hits.py``) answers a fresh hit and a plain
miss as the normal path answers them (status, headers, body), with the same log line and metrics,
and sends every other request to Flask (a failed lookup with its failure, the CRM not asked
again): the same requests served by one app with it and without it (its ``app.wsgi_app`` set back
to Flask's) are compared."""

from __future__ import annotations

import io
import json
import logging
import re
import time
from contextlib import contextmanager
from urllib.parse import parse_qsl, urlsplit

import pytest
from flask import request_started

from middleware.runtime import logs

from .conftest import API_KEY, CRM_KEY, CRM_URL, LOOKUP_KEY, TOKEN_SECRET
from .contacts import JAMES

LOOKUP = "/api/v1/contacts/lookup"
RECORD = f"{CRM_URL}/calls/record"
KNOWN, UNKNOWN, STALE, MISS = "0721234567", "0729999999", "0725555555", "0723333333"
FAILING = "0724444444"  # never cached: the CRM fails it
FOUND = {KNOWN: JAMES, STALE: {**JAMES, "id": "c-stale"}}
ID = re.compile(r"[0-9a-f]{32}\Z")  # a request id made here (logs.request_id), not the caller's


@pytest.fixture
def crm(upstream):
    """The fake CRM: ``FOUND`` by the number's last nine digits, else not found; a number in
    ``failing`` fails (502)."""
    state = {"failing": {FAILING}, "asked": []}

    def answer(prepared):
        asked = dict(parse_qsl(urlsplit(prepared.url).query))
        if "email" in asked:  # James by his address, nobody else
            state["asked"].append(asked["email"])
            found = asked["email"] == JAMES["email"]
            return (
                200,
                {},
                json.dumps({"status": True, "contact": JAMES} if found else {"status": False}),
            )
        phone = asked["phone"]
        digits = "0" + "".join(filter(str.isdigit, phone))[-9:]
        state["asked"].append(digits)
        if digits in state["failing"]:
            return 200, {}, json.dumps({"status": False, "error": "database is down"})
        contact = FOUND.get(digits)
        found = {"status": True, "contact": contact} if contact else {"status": False}
        return 200, {}, json.dumps(found)

    upstream.add_callback("GET", RECORD, callback=answer)
    return state


@pytest.fixture
def settings(crm):
    return {
        "CTI_CRM": "switchtransact",
        "CTI_CRM_URL": CRM_URL,
        "CTI_CRM_API_KEY": CRM_KEY,
        "CTI_LOOKUP_KEYS": LOOKUP_KEY,
        "CTI_TOKEN_SECRET": TOKEN_SECRET,
        "CTI_CACHE_REVALIDATE_TTL": 0,  # a stale entry is served only when the CRM fails: at once
    }


@contextmanager
def flask_only(app):
    """``app`` without its WSGI hit path: every request through Flask."""
    hits = app.wsgi_app
    app.wsgi_app = hits.wsgi_app
    try:
        yield
    finally:
        app.wsgi_app = hits


@pytest.fixture
def flask_requests():
    """The requests Flask itself serves (its ``request_started`` signal), as ``method path``."""
    seen = []

    def started(sender, **extra):
        from flask import request

        seen.append(f"{request.method} {request.path}")

    request_started.connect(started)
    yield seen
    request_started.disconnect(started)


def matrix(app) -> list[tuple[str, str, dict]]:
    credentials = app.extensions["cti"].credentials
    agent, _ = credentials.issue("101")
    supervisor, _ = credentials.issue_supervisor("Thandi")
    expired, _ = credentials.issue("101", now=time.time() - 10 * credentials.token_ttl)
    full, lookup = {"X-API-Key": API_KEY}, {"X-API-Key": LOOKUP_KEY}
    known = f"{LOOKUP}?phone={KNOWN}"
    stamp = {"X-Request-Start": f"t={time.time() - 0.25:.3f}"}
    return [
        ("GET", known, full),
        ("GET", known, {**full, "X-Request-ID": "r-1"}),
        ("GET", known, {**full, "X-Request-ID": "bad id!"}),  # not a plain token: a new id
        ("GET", known, lookup),
        ("GET", known, {"Authorization": f"Bearer {LOOKUP_KEY}"}),
        ("GET", f"{known}&api_key={LOOKUP_KEY}", {}),
        ("GET", known, {"Authorization": f"Bearer {agent}"}),
        ("GET", known, {"X-API-Key": supervisor}),
        ("GET", known, {**lookup, "Accept": "text/plain"}),
        ("GET", known, {**lookup, "Accept": "text/plain;q=0.5, application/json"}),
        ("GET", f"{known}&format=text", lookup),
        ("GET", f"{known}&format=json", {**lookup, "Accept": "text/plain"}),
        ("GET", f"{LOOKUP}?phone=%2B27721234567", full),  # another spelling of the same entry
        ("GET", known, {**full, **stamp}),
        ("HEAD", known, full),
        ("GET", f"{known}&extra=1", full),
        ("GET", f"{LOOKUP}?phone=12", full),  # a bad number: 422
        ("GET", f"{LOOKUP}?phone=12&format=text", full),
        ("GET", f"{LOOKUP}?phone={UNKNOWN}", full),  # a fresh "not found" entry
        ("GET", f"{LOOKUP}?phone={UNKNOWN}&format=text", full),
        ("GET", f"{LOOKUP}?phone={STALE}", full),  # stale, the CRM failing: served stale
        ("GET", f"{LOOKUP}?phone={MISS}", full),  # a miss: the CRM asked
        ("GET", f"{LOOKUP}?phone={FAILING}", full),  # a miss the CRM fails: 502, asked once
        ("GET", f"{LOOKUP}?email={JAMES['email']}", full),  # a miss by email: the CRM asked
        ("GET", known, {}),  # 401
        ("GET", known, {"X-API-Key": "wrong"}),  # 401
        ("GET", known, {"Authorization": f"Bearer {expired}"}),  # 401
        ("GET", f"{known}&format=text", {"X-API-Key": "wrong"}),  # 401, empty
        ("GET", "/api/v1/journal", lookup),  # 403
        ("GET", f"{LOOKUP}/?phone={KNOWN}", full),  # not the path
        ("POST", known, full),  # 405
    ]


# One hit of each kind the path answers, and a miss: the rows of ``matrix`` it must answer itself.
HITS = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 18, 19)
MISSES = (21, 23)


def steady_line(line: str) -> dict:
    fields = json.loads(line)
    fields.pop("ts")
    fields.pop("duration_ms")
    if "queue_ms" in fields:
        fields["queue_ms"] = "Q"
    if ID.match(fields.get("request_id", "")):
        fields["request_id"] = "ID"
    return fields


def steady_answer(response) -> tuple:
    headers = [
        (name, "ID" if name == "X-Request-ID" and ID.match(value) else value)
        for name, value in response.headers.items()
    ]
    return response.status, headers, response.get_data()


COUNTED = ("cti_lookups_total", "cti_http_request_seconds_count", "cti_http_queue_seconds_count")


def counts(client) -> dict[str, float]:
    found = {}
    for line in client.get("/metrics").text.splitlines():
        name, _, value = line.rpartition(" ")
        if line.startswith(COUNTED) and 'route="/metrics"' not in name:
            found[name] = float(value)
    return found


def serve(app, client, crm, requests, handler) -> tuple[list, list, dict]:
    """Each request once, from the same cache state: the stale number's entry made stale and the
    CRM failing it, the missed number forgotten. The answers, the request lines, the counts."""
    lookup = app.extensions["cti"].lookup
    entry = lookup.cache.get("+27725555555")
    entry.fresh_until = entry.revalidate_until = time.monotonic() - 1
    crm["failing"].add(STALE)
    lookup.cache.forget("+27723333333")
    lookup.forget_email(JAMES["email"])
    del crm["asked"][:]
    logger = logging.getLogger("middleware.request")
    stream = io.StringIO()
    captured = handler(stream)
    captured.setFormatter(logs.JsonFormatter())
    saved = logger.handlers[:], logger.propagate, logger.level
    logger.handlers[:], logger.propagate = [captured], False
    logger.setLevel(logging.INFO)
    before = counts(client)
    try:
        answers = [
            steady_answer(client.open(path, method=method, headers=headers))
            for method, path, headers in requests
        ]
    finally:
        logger.handlers[:], logger.propagate = saved[0], saved[1]
        logger.setLevel(saved[2])
    after = counts(client)
    crm["failing"].discard(STALE)
    delta = {name: value - before.get(name, 0) for name, value in after.items()}
    lines = [steady_line(line) for line in stream.getvalue().splitlines()]
    counted = {name: value for name, value in delta.items() if value}
    return answers, lines, counted, sorted(crm["asked"])


class Recorded(logging.StreamHandler):
    """Not a plain ``StreamHandler``: the request line goes the record way (``logs.info``)."""


@pytest.mark.parametrize("handler", [logging.StreamHandler, Recorded])
def test_every_request_is_answered_as_flask_answers_it(app, client, crm, flask_requests, handler):
    requests = matrix(app)
    for method, path, headers in requests:  # the query memo and the cache filled
        client.open(path, method=method, headers=headers)
    with flask_only(app):
        flask = serve(app, client, crm, requests, handler)
    del flask_requests[:]
    fast = serve(app, client, crm, requests, handler)
    for kind, normal, hit in zip(("answers", "lines"), flask[:2], fast[:2], strict=True):
        for n, (one, other) in enumerate(zip(normal, hit, strict=True)):
            assert one == other, f"{kind} of {requests[n][:2]} differ"
    assert fast[2] == flask[2]  # the metrics counts
    assert flask[2]['cti_lookups_total{result="hit"}'] == len(HITS) + 1  # and HEAD's, by Flask
    assert flask[2]['cti_lookups_total{result="miss"}'] == 2
    assert flask[2]['cti_lookups_total{result="error"}'] == 1  # the failing miss
    # the CRM asked the same: the miss in each of its two forms (not found), the failing miss once
    # (not again by Flask), the stale number once, the address once
    assert fast[3] == flask[3] == sorted([MISS, MISS, FAILING, STALE, JAMES["email"]])
    # the hits and the miss answered here, everything else by Flask (and the two scrapes)
    answered_by_flask = [f"{method} {urlsplit(path).path}" for method, path, _ in requests]
    for n in sorted(HITS + MISSES, reverse=True):
        del answered_by_flask[n]
    assert flask_requests == ["GET /metrics", *answered_by_flask, "GET /metrics"]
    statuses = [answer[0] for answer in fast[0]]
    assert [statuses[n] for n in HITS] == ["200 OK"] * 14 + ["200 OK", "204 NO CONTENT"]
    assert [statuses[n] for n in MISSES] == ["200 OK"] * 2
    assert statuses[MISSES[0] + 1] == "502 BAD GATEWAY"
    assert json.loads(fast[0][MISSES[1]][2])["contact"]["id"] == JAMES["id"]
    text = fast[0][8]
    assert dict(text[1])["Content-Type"] == "text/plain; charset=utf-8"
    assert text[2] == b"James May (My Company name)"
    assert dict(fast[0][1][1])["X-Request-ID"] == "r-1"


def test_a_hit_after_an_erasure_asks_the_crm(app, client, crm, flask_requests):
    full = {"X-API-Key": API_KEY}
    known = f"{LOOKUP}?phone={KNOWN}"
    first = client.get(known, headers=full).json
    assert client.get(known, headers=full).json == {**first, "cached": True}
    assert crm["asked"] == [KNOWN] and flask_requests == [f"GET {LOOKUP}"]
    assert client.delete(f"/api/v1/privacy/numbers/{KNOWN}", headers=full).status_code == 200
    served = len(flask_requests)
    again = client.get(known, headers=full)
    assert again.json == first and again.json["cached"] is False
    assert crm["asked"] == [KNOWN, KNOWN]
    assert len(flask_requests) == served  # a plain miss now: answered by the WSGI path


def test_a_query_string_never_seen_is_loaded_here_and_only_a_refusal_or_failure_reaches_flask(
    app, client, crm, flask_requests
):
    """After Flask's first request, a lookup of a number never asked, in a spelling never seen,
    is loaded by the route's schema here and the CRM asked once; the next is a hit. A bad number
    is the normal path's 422 (nothing asked), a failing CRM the normal path's 502 (asked once)."""
    full = {"X-API-Key": API_KEY}
    assert client.get(f"{LOOKUP}?phone={KNOWN}", headers=full).status_code == 200
    assert flask_requests == [f"GET {LOOKUP}"] and crm["asked"] == [KNOWN]
    spelled = f"{LOOKUP}?phone=%2B27%2072%20555%205555"
    miss = client.get(spelled, headers=full)
    assert miss.status_code == 200 and miss.json["cached"] is False
    assert miss.json["contact"]["id"] == "c-stale" and miss.json["phone"] == "+27725555555"
    hit = client.get(f"{LOOKUP}?phone={STALE}", headers=full)
    assert hit.json == {**miss.json, "cached": True}
    assert crm["asked"] == [KNOWN, STALE] and flask_requests == [f"GET {LOOKUP}"]
    refused = client.get(f"{LOOKUP}?phone=13", headers=full)
    assert refused.status_code == 422 and refused.json["type"].endswith("invalid_number")
    assert crm["asked"] == [KNOWN, STALE] and flask_requests == [f"GET {LOOKUP}"] * 2
    failed = client.get(f"{LOOKUP}?phone={FAILING}&format=text", headers=full)
    assert failed.status_code == 502 and failed.data == b""  # the PBX's form: no problem text
    assert crm["asked"] == [KNOWN, STALE, FAILING] and flask_requests == [f"GET {LOOKUP}"] * 3


def test_an_app_with_another_hook_is_served_by_flask_alone(make_app, settings, flask_requests):
    """A hook the factory did not register (here an extension's after-request hook) runs on every
    request: the hit path, which would skip it, leaves the app to Flask."""
    app = make_app(**settings)

    @app.after_request
    def tagged(response):
        response.headers["X-Tagged"] = "yes"
        return response

    client = app.test_client()
    known = f"{LOOKUP}?phone={KNOWN}"
    answers = [client.get(known, headers={"X-API-Key": API_KEY}) for _ in range(3)]
    assert [answer.headers.get("X-Tagged") for answer in answers] == ["yes"] * 3
    assert [answer.json["cached"] for answer in answers] == [False, True, True]
    assert flask_requests == [f"GET {LOOKUP}"] * 3
