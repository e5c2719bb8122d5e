"""Each provider offers what its document has; every other operation answers 501 and sends nothing."""

from __future__ import annotations

import pytest

from middleware.upstreams import AGENT_OPERATIONS

from .conftest import (
    CC_AGENT_KEY,
    CC_AGENT_URL,
    IBIZFONE_KEY,
    IBIZFONE_URL,
    TELEPHONY_TOKEN,
    TELEPHONY_URL,
)

PROVIDER_ENV = {
    "cc_agent": {"CTI_CC_AGENT_URL": CC_AGENT_URL, "CTI_CC_AGENT_API_KEY": CC_AGENT_KEY},
    "telephony": {"CTI_TELEPHONY_URL": TELEPHONY_URL, "CTI_TELEPHONY_TOKEN": TELEPHONY_TOKEN},
    "ibizfone": {
        "CTI_IBIZFONE_URL": IBIZFONE_URL,
        "CTI_IBIZFONE_API_KEY": IBIZFONE_KEY,
        "CTI_IBIZFONE_CUSTID": "C-77",
    },
    "sandbox": {},
}

# One well-formed request per operation: (method, path, JSON body or None).
REQUESTS = {
    "available": ("PUT", "/api/v1/agents/6000/status", {"status": "available"}),
    "paused": ("PUT", "/api/v1/agents/6000/status", {"status": "paused", "pause_id": 2}),
    "offline": ("PUT", "/api/v1/agents/6000/status", {"status": "offline"}),
    "queues": ("PUT", "/api/v1/agents/6000/queues", {"queue_ids": [1, 2]}),
    "queue_list": ("GET", "/api/v1/agents/6000/queues", None),
    "wrapup": ("POST", "/api/v1/agents/6000/wrapup", {"seconds": 10}),
    "calls": ("GET", "/api/v1/agents/6000/calls", None),
    "hangup": ("POST", "/api/v1/calls/991/hangup", {"agent": "6000"}),
    "hold": ("POST", "/api/v1/calls/991/hold", {"agent": "6000"}),
    "retrieve": ("POST", "/api/v1/calls/991/retrieve", {"agent": "6000"}),
    "dispose": ("POST", "/api/v1/calls/991/dispose", {"agent": "6000", "result_code": "SALE"}),
    "recording": ("PUT", "/api/v1/calls/991/recording", {"agent": "6000", "recording": False}),
    "result_codes": ("GET", "/api/v1/result-codes?agent=6000", None),
    "lead_phones": ("GET", "/api/v1/leads/555/phones?agent=6000", None),
    "change_lead": ("PUT", "/api/v1/calls/991/lead", {"agent": "6000", "lead_phone_id": "8"}),
    "create_lead": ("POST", "/api/v1/calls/991/lead", {"agent": "6000", "phone": "0721234567"}),
    "connect_calls": (
        "POST",
        "/api/v1/calls/991/connect",
        {"agent": "6000", "other_call_id": "992", "result_code": "A", "other_result_code": "B"},
    ),
}

# What each provider offers, from the contract's table and the vendor documents.
OFFERED = {
    "cc_agent": {"available", "paused", "offline", "queues", "queue_list", "wrapup"},
    "telephony": set(AGENT_OPERATIONS) - {"paused", "offline", "queues", "queue_list", "wrapup"},
    "ibizfone": {"available", "paused", "offline"},
    "sandbox": set(AGENT_OPERATIONS),
}
UNSUPPORTED = [
    (operation, provider)
    for provider, offered in OFFERED.items()
    for operation in AGENT_OPERATIONS
    if operation not in offered
]


def send(client, operation, auth):
    method, path, body = REQUESTS[operation]
    return client.open(path, method=method, json=body, headers=auth)


def test_every_operation_has_a_request_in_this_table():
    assert set(REQUESTS) == set(AGENT_OPERATIONS)


@pytest.mark.parametrize("operation,provider", UNSUPPORTED)
def test_unsupported_operation_answers_501_and_sends_nothing(
    make_app, upstream, auth, operation, provider
):
    client = make_app(CTI_AGENT_PROVIDER=provider, **PROVIDER_ENV[provider]).test_client()

    response = send(client, operation, auth)

    assert response.status_code == 501
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.get_json()["code"] == "unsupported"
    assert provider in response.get_json()["detail"]
    assert len(upstream.calls) == 0


@pytest.mark.parametrize("operation", sorted(OFFERED["sandbox"]))
def test_sandbox_accepts_every_operation_without_upstreams(client, upstream, auth, operation):
    response = send(client, operation, auth)

    assert response.status_code in (200, 201)
    assert len(upstream.calls) == 0


@pytest.mark.parametrize(
    "method,path,body",
    [
        ("PUT", "/api/v1/agents/6000/status", {"status": "paused", "pause_id": -1}),
        ("PUT", "/api/v1/agents/6000/queues", {"queue_ids": "1,2"}),
        ("POST", "/api/v1/calls/991/hold", {"agent": ""}),
        ("GET", "/api/v1/result-codes", None),
        ("GET", "/api/v1/agents/6%20000/calls", None),
        ("GET", "/api/v1/agents/6%20000/queues", None),
    ],
)
def test_malformed_request_to_an_unsupported_operation_is_422_not_501(
    make_app, upstream, auth, method, path, body
):
    client = make_app(CTI_AGENT_PROVIDER="ibizfone", **PROVIDER_ENV["ibizfone"]).test_client()

    response = client.open(path, method=method, json=body, headers=auth)

    assert response.status_code == 422
    assert response.get_json()["code"] == "validation_error"
    assert len(upstream.calls) == 0


def test_agent_endpoints_need_an_api_key(client):
    response = client.put("/api/v1/agents/6000/status", json={"status": "available"})

    assert response.status_code == 401
