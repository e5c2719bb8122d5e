"""Contract section 2, the table of credentials: every route of the URL map, asked with each kind of
credential, answers what the table says; a refused request (401, 403) reaches no upstream.

The upstreams are one real local fake server (telephony, cc_agent, the CRM and ibizfone on one
port), so a request that got through shows in ``fake.seen``."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import jwt
import pytest

from middleware.auth import PUBLIC, WEBHOOK

from .conftest import (
    API_KEY,
    CC_AGENT_KEY,
    CRM_KEY,
    IBIZFONE_KEY,
    LOOKUP_KEY,
    TELEPHONY_TOKEN,
    TOKEN_SECRET,
)
from .fakeserver import Answer, FakeServer

OTHER_SECRET = "another-token-secret-7a6b5c4d3e2f1a0b9c8d"
JAMES = {"id": "c-1", "firstname": "James", "lastname": "May", "mobilephone": "0721234567"}
CREDENTIALS = (
    "full key",
    "lookup key",
    "token of 6000",
    "token of 6001",
    "supervisor token",
    "expired token",
    "token outliving the TTL",
    "token of another secret",
    "tampered token",
    "no credential",
)
# Who gets through to the view, per kind of route (the contract's table); the rest are refused
# with 401 (the last five) or 403 (a valid credential that may not).
FULL = {"full key"}
SUPERVISOR = {"full key", "supervisor token"}
LOOKUP = {"full key", "lookup key", "token of 6000", "token of 6001", "supervisor token"}
ANY_AGENT = {"full key", "token of 6000", "token of 6001"}
AGENT_6000 = {"full key", "token of 6000"}
EVERYONE = set(CREDENTIALS)
VALID = {"full key", "lookup key", "token of 6000", "token of 6001", "supervisor token"}
TTL = 43200  # CTI_TOKEN_TTL's default: the app under test keeps it


def token(agent: str, *, secret: str = TOKEN_SECRET, ttl: int = 3600, scope: str = "agent") -> str:
    now = int(time.time())
    claims = {"sub": agent, "scope": scope, "iat": now, "exp": now + ttl}
    return jwt.encode(claims, secret, algorithm="HS256")


def tampered() -> str:
    """A token of 6000 whose payload says 6001, the signature left as it was."""
    header, _, signature = token("6000").split(".")
    _, forged, _ = token("6001").split(".")
    return f"{header}.{forged}.{signature}"


def presented(kind: str) -> str | None:
    return {
        "full key": API_KEY,
        "lookup key": LOOKUP_KEY,
        "token of 6000": token("6000"),
        "token of 6001": token("6001"),
        "supervisor token": token("Thandi", scope="supervisor"),
        "expired token": token("6000", ttl=-60),
        # signed with the right secret, yet valid far longer than CTI_TOKEN_TTL allows
        "token outliving the TTL": token("6000", ttl=TTL + 3600),
        "token of another secret": token("6000", secret=OTHER_SECRET),
        "tampered token": tampered(),
        "no credential": None,
    }[kind]


@dataclass
class Sample:
    method: str
    path: str
    allowed: set  # the credentials that get the success status
    status: int  # the success status
    json: dict | None = None
    provider: str = "telephony"  # cc_agent for what only cc_agent offers
    upstream: bool = False  # the full key's request reaches an upstream
    marks: list = field(default_factory=list)


CALL_BODY = {"agent": "6000"}
SAMPLES = {
    "calls.create_call": [
        Sample(
            "POST",
            "/api/v1/calls",
            AGENT_6000,
            201,
            {"to": "0721234567", **CALL_BODY},
            upstream=True,
        )
    ],
    "calls.click_to_call": [
        Sample("GET", "/click-to-call?to=0721234567&agent=6000", AGENT_6000, 201, upstream=True)
    ],
    "agents.set_status": [
        Sample(
            "PUT",
            "/api/v1/agents/6000/status",
            AGENT_6000,
            200,
            {"status": "available"},
            upstream=True,
        )
    ],
    "agents.set_queues": [
        Sample(
            "PUT",
            "/api/v1/agents/6000/queues",
            AGENT_6000,
            200,
            {"queue_ids": [1]},
            "cc_agent",
            True,
        )
    ],
    "agents.list_queues": [
        Sample("GET", "/api/v1/agents/6000/queues", AGENT_6000, 200, None, "cc_agent", True)
    ],
    "agents.agent_status": [
        Sample("GET", "/api/v1/agents/6000/status", AGENT_6000 | SUPERVISOR, 200),
        Sample(
            "GET", "/api/v1/agents/6001/status", {"full key", "token of 6001"} | SUPERVISOR, 200
        ),
    ],
    "agents.wrapup": [
        Sample(
            "POST", "/api/v1/agents/6000/wrapup", AGENT_6000, 200, {"seconds": 30}, "cc_agent", True
        )
    ],
    "agents.active_calls": [
        Sample("GET", "/api/v1/agents/6000/calls", AGENT_6000, 200, upstream=True)
    ],
    "events.events": [Sample("GET", "/api/v1/agents/6000/events", AGENT_6000, 200)],
    "tokens.issue_token": [Sample("POST", "/api/v1/agents/6000/token", FULL, 201)],
    "tokens.issue_supervisor_token": [
        Sample("POST", "/api/v1/supervisors/token", FULL, 201, {"name": "Thandi"})
    ],
    "agents.hangup": [
        Sample("POST", "/api/v1/calls/c-1/hangup", AGENT_6000, 200, CALL_BODY, upstream=True)
    ],
    "agents.hold": [
        Sample("POST", "/api/v1/calls/c-1/hold", AGENT_6000, 200, CALL_BODY, upstream=True)
    ],
    "agents.retrieve": [
        Sample("POST", "/api/v1/calls/c-1/retrieve", AGENT_6000, 200, CALL_BODY, upstream=True)
    ],
    "agents.dispose": [
        Sample(
            "POST",
            "/api/v1/calls/c-1/dispose",
            AGENT_6000,
            200,
            {"result_code": "SALE", **CALL_BODY},
            upstream=True,
        )
    ],
    "agents.recording": [
        Sample(
            "PUT",
            "/api/v1/calls/c-1/recording",
            AGENT_6000,
            200,
            {"recording": False, **CALL_BODY},
            upstream=True,
        )
    ],
    "agents.result_codes": [
        Sample("GET", "/api/v1/result-codes?agent=6000", AGENT_6000, 200, upstream=True)
    ],
    "agents.lead_phones": [
        Sample("GET", "/api/v1/leads/L-1/phones?agent=6000", AGENT_6000, 200, upstream=True)
    ],
    "agents.change_lead": [
        Sample(
            "PUT",
            "/api/v1/calls/c-1/lead",
            AGENT_6000,
            200,
            {"lead_phone_id": "LP-1", **CALL_BODY},
            upstream=True,
        )
    ],
    "agents.create_lead": [
        Sample(
            "POST",
            "/api/v1/calls/c-1/lead",
            AGENT_6000,
            201,
            {"phone": "0721234567", **CALL_BODY},
            upstream=True,
        )
    ],
    "agents.connect_calls": [
        Sample(
            "POST",
            "/api/v1/calls/c-1/connect",
            AGENT_6000,
            200,
            {"other_call_id": "c-2", "result_code": "A", "other_result_code": "B", **CALL_BODY},
            upstream=True,
        )
    ],
    "contacts.lookup": [
        Sample("GET", "/api/v1/contacts/lookup?phone=0721234567", LOOKUP, 200, upstream=True)
    ],
    "contacts.pop": [Sample("GET", "/pop?phone=0721234567", LOOKUP, 200, upstream=True)],
    "contacts.search": [
        Sample(
            "GET",
            "/api/v1/contacts/search?term=James",
            ANY_AGENT | SUPERVISOR,
            200,
            upstream=True,
        )
    ],
    "contacts.create_contact": [
        Sample(
            "POST",
            "/api/v1/contacts",
            ANY_AGENT,
            201,
            {"first_name": "Nomsa", "last_name": "Dlamini", "phone": "0829876543"},
            upstream=True,
        )
    ],
    "journal.list_entries": [
        Sample("GET", "/api/v1/journal", SUPERVISOR, 200),
        Sample("GET", "/api/v1/journal?agent=6000", AGENT_6000 | SUPERVISOR, 200),
    ],
    "journal.retry_entry": [Sample("POST", "/api/v1/journal/1/retry", SUPERVISOR, 404)],
    "callbacks.list_callbacks": [
        Sample("GET", "/api/v1/callbacks", ANY_AGENT | SUPERVISOR, 200),
        Sample("GET", "/api/v1/callbacks?agent=6000", AGENT_6000 | SUPERVISOR, 200),
    ],
    "callbacks.assign_callback": [
        Sample("POST", "/api/v1/callbacks/1/assign", AGENT_6000 | SUPERVISOR, 404, CALL_BODY),
        Sample("POST", "/api/v1/callbacks/1/assign", SUPERVISOR, 404, {"agent": None}),
    ],
    "callbacks.dismiss_callback": [Sample("POST", "/api/v1/callbacks/1/dismiss", SUPERVISOR, 404)],
    "privacy.access": [Sample("GET", "/api/v1/privacy/numbers/0721234567", FULL, 200)],
    "privacy.erase": [Sample("DELETE", "/api/v1/privacy/numbers/0721234567", FULL, 200)],
    "board.board": [Sample("GET", "/api/v1/board", SUPERVISOR, 200)],
    "board.board_events": [Sample("GET", "/api/v1/board/events", SUPERVISOR, 200)],
    "reports.calls": [
        Sample("GET", "/api/v1/reports/calls?by=agent", SUPERVISOR, 200),
        Sample("GET", "/api/v1/reports/calls?format=csv", SUPERVISOR, 200),
    ],
    "schedule.set_holiday": [
        Sample("PUT", "/api/v1/schedule/holidays/2026-12-25", FULL, 200, upstream=True)
    ],
    "schedule.set_office_hours": [
        Sample(
            "PUT",
            "/api/v1/schedule/office-hours",
            FULL,
            200,
            {"day": "Monday", "start": "09:00", "end": "17:00"},
            upstream=True,
        )
    ],
    "webhooks.pbx": [
        Sample("POST", "/api/v1/webhooks/pbx", set(), 202, {"event": "call:ring", "id": "l-1"})
    ],
    "ivr_webhook.ibizfone": [
        Sample("GET", "/api/v1/webhooks/ibizfone?calllogid=1", set(), 200),
        Sample("POST", "/api/v1/webhooks/ibizfone", set(), 200),
    ],
    "ops.healthz": [Sample("GET", "/healthz", EVERYONE, 200)],
    "ops.readyz": [Sample("GET", "/readyz", EVERYONE, 200)],
    "ops.prometheus_metrics": [Sample("GET", "/metrics", EVERYONE, 200)],
    "ops.openapi": [Sample("GET", "/api/v1/openapi.json", EVERYONE, 200)],
    "agent_page.agent_page": [Sample("GET", "/agent", EVERYONE, 200)],
    "console_page.console_page": [Sample("GET", "/console", EVERYONE, 200)],
    "static": [Sample("GET", "/static/agent.js", EVERYONE, 200)],
}


def upstream_answer(seen) -> Answer:
    path = seen.path
    if path.startswith("/webservices/services/telephony/"):
        return Answer(200, {"Success": True, "Data": {"CallId": "c-1"}})
    if path.startswith("/api/cc_agent/"):
        return Answer(200, {"success": True, "uuid": "u-1"})
    if path.startswith("/api/user/"):
        return Answer(200, {"success": True, "data": {"id": 6000, "queues": [1]}})
    if path == "/api/cc_queue":
        return Answer(200, {"success": True, "data": [{"id": 1, "name": "Sales"}]})
    if path == "/calls/record":
        return Answer(200, {"status": True, "contact": JAMES})
    if path == "/calls/autocomplete":
        return Answer(200, [JAMES])
    if path == "/calls/create":
        return Answer(200, {"status": True, "contact": {**JAMES, "id": "c-2"}})
    if path == "/settings/handler.ashx":
        return Answer(200, "Success")
    return Answer(404, {"error": "no such path"})


@pytest.fixture(scope="module")
def fake():
    with FakeServer(upstream_answer) as server:
        yield server


def environment(fake_url: str, provider: str) -> dict:
    return {
        "CTI_LOOKUP_KEYS": LOOKUP_KEY,
        "CTI_TOKEN_SECRET": TOKEN_SECRET,
        "CTI_DIALER": provider,
        "CTI_AGENT_PROVIDER": provider,
        "CTI_TELEPHONY_URL": fake_url,
        "CTI_TELEPHONY_TOKEN": TELEPHONY_TOKEN,
        "CTI_CC_AGENT_URL": fake_url,
        "CTI_CC_AGENT_API_KEY": CC_AGENT_KEY,
        "CTI_CRM": "switchtransact",
        "CTI_CRM_URL": fake_url,
        "CTI_CRM_API_KEY": CRM_KEY,
        "CTI_IBIZFONE_URL": fake_url,
        "CTI_IBIZFONE_API_KEY": IBIZFONE_KEY,
        "CTI_IBIZFONE_CUSTID": "42",
        "CTI_DEDUPE_SECONDS": "0",
        "CTI_CALL_RATE": "1000/minute",
    }


def expected(sample: Sample, kind: str, auth: str) -> int:
    if kind in sample.allowed:
        return sample.status
    if auth == WEBHOOK or kind not in VALID:
        return 401
    return 403


CASES = [
    pytest.param(endpoint, index, sample, id=f"{endpoint}#{index}", marks=sample.marks)
    for endpoint, samples in SAMPLES.items()
    for index, sample in enumerate(samples)
]


def test_the_table_covers_every_route_of_the_url_map(make_app):
    app = make_app()
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}

    assert endpoints == set(SAMPLES)
    for endpoint in endpoints - {"static"}:
        view = app.view_functions[endpoint]
        assert getattr(view, "cti_auth", None) in (PUBLIC, WEBHOOK) or hasattr(
            view, "cti_access"
        ), f"{endpoint}: no @allow declaration next to its route"


@pytest.mark.parametrize("endpoint,index,sample", CASES)
def test_each_credential_gets_what_the_contract_table_says(make_app, fake, endpoint, index, sample):
    app = make_app(**environment(fake.url, sample.provider))
    client = app.test_client()
    auth = getattr(app.view_functions[endpoint], "cti_auth", None)
    got = {}
    for kind in CREDENTIALS:
        credential = presented(kind)
        headers = {"X-API-Key": credential} if credential else {}
        before = len(fake.seen)
        response = client.open(
            sample.path, method=sample.method, json=sample.json, headers=headers, buffered=False
        )
        got[kind] = response.status_code
        response.close()
        reached = len(fake.seen) - before
        if response.status_code in (401, 403):
            assert reached == 0, (
                f"{kind}: refused with {response.status_code}, yet reached upstream"
            )
            if endpoint != "ivr_webhook.ibizfone":  # the IVR reads plain text (contract, section 3)
                assert response.content_type == "application/problem+json"
                problem = response.get_json()
                assert problem["code"] == (
                    "unauthorized" if response.status_code == 401 else "forbidden"
                )
            assert not credential or credential not in response.get_data(as_text=True)
        if kind == "full key" and sample.upstream:
            assert reached >= 1, "the full key's request should have reached the fake upstream"

    assert got == {kind: expected(sample, kind, auth) for kind in CREDENTIALS}
