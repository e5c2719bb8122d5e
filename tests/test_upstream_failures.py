"""Upstream failures map to 502 / 503 / 504 problems, with the upstream's words but no secret."""

from __future__ import annotations

import json
import time

import pytest

from devtools.processes import free_port

from .conftest import CC_AGENT_KEY, CC_AGENT_URL, DIALER_ENV, TELEPHONY_URL, ZAIN_URL
from .fakeserver import Answer, FakeServer
from .rawserver import RawServer

CALL = {"to": "0721234567", "agent": "6000"}
TELEPHONY_DIAL = f"{TELEPHONY_URL}/webservices/services/telephony/dial/user/6000/phone/0721234567"


def post_call(make_app, auth, **env):
    return make_app(**env).test_client().post("/api/v1/calls", json=CALL, headers=auth)


def test_upstream_401_is_upstream_auth(make_app, upstream, auth):
    upstream.get(
        f"{CC_AGENT_URL}/api/cc_agent/originate",
        status=401,
        json={"success": False, "msg": "Unauthorized"},
    )

    response = post_call(make_app, auth, **DIALER_ENV["cc_agent"])

    assert response.status_code == 502
    assert response.get_json()["code"] == "upstream_auth"
    assert response.content_type == "application/problem+json"


def test_upstream_500_is_upstream_error(make_app, upstream, auth):
    upstream.post(f"{ZAIN_URL}/api/InitiateCustomerCall", status=500, body="Internal Server Error")

    response = post_call(make_app, auth, **DIALER_ENV["zain"])

    assert response.status_code == 502
    assert response.get_json()["code"] == "upstream_error"
    assert "500" in response.get_json()["detail"]


def test_success_false_is_upstream_error_with_its_message(make_app, upstream, auth):
    upstream.get(
        TELEPHONY_DIAL,
        json={
            "Success": False,
            "Data": None,
            "ResponseCode": 12,
            "ResponseDetail": "Agent is not logged in",
        },
    )

    response = post_call(make_app, auth, **DIALER_ENV["telephony"])

    assert response.status_code == 502
    body = response.get_json()
    assert body["code"] == "upstream_error"
    assert "Agent is not logged in" in body["detail"]


def test_cc_agent_success_false_message_is_scrubbed(make_app, upstream, auth):
    upstream.get(
        f"{CC_AGENT_URL}/api/cc_agent/originate",
        json={"success": False, "msg": f"bad destination for key {CC_AGENT_KEY}"},
    )

    response = post_call(make_app, auth, **DIALER_ENV["cc_agent"])

    assert response.status_code == 502
    assert CC_AGENT_KEY not in response.get_data(as_text=True)
    assert "bad destination" in response.get_json()["detail"]


def test_non_json_answer_is_upstream_error(make_app, upstream, auth):
    upstream.post(f"{ZAIN_URL}/api/InitiateCustomerCall", body="<html>gateway</html>")

    response = post_call(make_app, auth, **DIALER_ENV["zain"])

    assert response.status_code == 502
    assert response.get_json()["code"] == "upstream_error"


def test_refused_connection_is_upstream_unavailable(make_app, auth):
    env = {**DIALER_ENV["cc_agent"], "CTI_CC_AGENT_URL": f"http://127.0.0.1:{free_port()}"}

    response = post_call(make_app, auth, **env)

    assert response.status_code == 503
    body = response.get_json()
    assert body["code"] == "upstream_unavailable"
    assert CC_AGENT_KEY not in response.get_data(as_text=True)
    assert "127.0.0.1" not in body["detail"]


def test_hanging_upstream_is_upstream_timeout_within_budget(make_app, auth):
    with FakeServer(lambda seen: Answer(hang=True)) as fake:
        env = {**DIALER_ENV["cc_agent"], "CTI_CC_AGENT_URL": fake.url, "CTI_UPSTREAM_TIMEOUT": "1"}
        started = time.monotonic()
        response = post_call(make_app, auth, **env)
        elapsed = time.monotonic() - started

    assert response.status_code == 504
    assert response.get_json()["code"] == "upstream_timeout"
    assert elapsed < 1 + 1
    assert fake.count() == 1  # a call that may have been placed is never retried


def test_dripping_upstream_is_cut_at_the_deadline(make_app, auth):
    body = {"Success": True, "uuid": "x" * 200}
    with FakeServer(lambda seen: Answer(200, body, drip=0.05)) as fake:
        env = {
            **DIALER_ENV["cc_agent"],
            "CTI_CC_AGENT_URL": fake.url,
            "CTI_UPSTREAM_TIMEOUT": "0.5",
        }
        started = time.monotonic()
        response = post_call(make_app, auth, **env)
        elapsed = time.monotonic() - started

    assert response.status_code == 504
    assert elapsed < 0.5 + 1


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_failed_call_is_not_remembered(make_app, upstream, auth, status):
    upstream.post(f"{ZAIN_URL}/api/InitiateCustomerCall", status=status, json={"status": "error"})
    client = make_app(**DIALER_ENV["zain"]).test_client()
    assert client.post("/api/v1/calls", json=CALL, headers=auth).status_code == 502

    upstream.replace(
        "POST",
        f"{ZAIN_URL}/api/InitiateCustomerCall",
        json={"status": "success", "callSessionId": "second"},
    )
    again = client.post("/api/v1/calls", json=CALL, headers=auth)

    assert again.status_code == 201
    assert again.get_json()["call_id"] == "second"
    assert len(upstream.calls) == 2


@pytest.mark.parametrize(
    "style, status, code",
    [("reset", 502, "upstream_error"), ("slow_first_byte", 504, "upstream_timeout")],
)
def test_a_call_whose_answer_was_lost_may_have_been_placed_and_is_not_dialed_again(
    make_app, auth, style, status, code
):
    with RawServer(style, {"Success": True, "uuid": "lost"}, pause=3) as dialer:
        env = {
            **DIALER_ENV["cc_agent"],
            "CTI_CC_AGENT_URL": dialer.url,
            "CTI_UPSTREAM_TIMEOUT": "1",
        }
        client = make_app(**env).test_client()
        first = client.post("/api/v1/calls", json=CALL, headers=auth)
        again = client.post("/api/v1/calls", json={**CALL, "to": "+27 72 123 4567"}, headers=auth)
        received = dialer.received

    assert first.status_code == status
    assert first.get_json()["code"] == code
    assert "may have been placed" in first.get_json()["detail"]
    assert again.status_code == status
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert received == 1


def test_a_call_that_never_reached_the_dialer_is_forgotten_at_once(make_app, auth):
    port = free_port()
    env = {**DIALER_ENV["cc_agent"], "CTI_CC_AGENT_URL": f"http://127.0.0.1:{port}"}
    client = make_app(**env).test_client()
    first = client.post("/api/v1/calls", json=CALL, headers=auth)
    assert first.status_code == 503
    assert "may have been placed" not in first.get_json()["detail"]

    with RawServer("close", {"Success": True, "uuid": "second"}, port=port) as dialer:
        again = client.post("/api/v1/calls", json=CALL, headers=auth)
        assert dialer.received == 1
    assert again.status_code == 201
    assert again.get_json()["call_id"] == "second"


NO_CALL_ID_XML = (
    '<CallActionResponse xmlns="http://schemas.datacontract.org/2004/07/Telephony"'
    ' xmlns:i="http://www.w3.org/2001/XMLSchema-instance">'
    "<Data{data}<ResponseCode>0</ResponseCode><ResponseDetail/><Success>true</Success>"
    "</CallActionResponse>"
)


@pytest.mark.parametrize(
    "dialer, method, url, body, answer",
    [
        pytest.param(
            "cc_agent",
            "GET",
            f"{CC_AGENT_URL}/api/cc_agent/originate"
            f"?destination=27721234567&extension=6000&api_key={CC_AGENT_KEY}",
            None,
            {"json": {"Success": True}},
            id="cc_agent without uuid",
        ),
        pytest.param(
            "cc_agent",
            "GET",
            f"{CC_AGENT_URL}/api/cc_agent/originate"
            f"?destination=27721234567&extension=6000&api_key={CC_AGENT_KEY}",
            None,
            {"json": {"success": True, "uuid": ""}},
            id="cc_agent empty uuid",
        ),
        pytest.param(
            "zain",
            "POST",
            f"{ZAIN_URL}/api/InitiateCustomerCall",
            {"domainName": "example.com", "customerNumber": "0721234567", "agentExtension": "6000"},
            {"json": {"status": "success", "message": "Call initiated and being routed to agent."}},
            id="zain without callSessionId",
        ),
        pytest.param(
            "telephony",
            "GET",
            TELEPHONY_DIAL,
            None,
            {"json": {"Success": True, "Data": None, "ResponseCode": 0, "ResponseDetail": ""}},
            id="telephony json Data null",
        ),
        pytest.param(
            "telephony",
            "GET",
            TELEPHONY_DIAL,
            None,
            {"json": {"Success": True, "Data": {"PhoneNumber": "0721234567"}}},
            id="telephony json without CallId",
        ),
        pytest.param(
            "telephony",
            "GET",
            TELEPHONY_DIAL,
            None,
            {"body": NO_CALL_ID_XML.format(data=' i:nil="true"/>'), "content_type": "text/xml"},
            id="telephony xml Data nil",
        ),
        pytest.param(
            "telephony",
            "GET",
            TELEPHONY_DIAL,
            None,
            {
                "body": NO_CALL_ID_XML.format(data="><PhoneNumber>0721234567</PhoneNumber></Data>"),
                "content_type": "application/xml",
            },
            id="telephony xml without CallId",
        ),
    ],
)
def test_a_success_without_a_call_id_may_have_been_placed_and_is_not_dialed_again(
    make_app, upstream, auth, dialer, method, url, body, answer
):
    upstream.add(method, url.split("?")[0], **answer)
    client = make_app(**DIALER_ENV[dialer]).test_client()

    first = client.post("/api/v1/calls", json=CALL, headers=auth)
    again = client.post("/api/v1/calls", json={**CALL, "to": "+27 72 123 4567"}, headers=auth)

    assert first.status_code == 502
    problem = first.get_json()
    assert problem["code"] == "upstream_error"
    assert problem["detail"].startswith(f"{dialer}: ")
    assert "may have been placed" in problem["detail"]
    assert again.status_code == 502
    assert again.get_json() == problem
    assert again.headers["Idempotent-Replayed"] == "true"
    (call,) = upstream.calls  # the second click dialed nothing
    assert (call.request.method, call.request.url) == (method, url)
    assert (json.loads(call.request.body) if call.request.body else None) == body
