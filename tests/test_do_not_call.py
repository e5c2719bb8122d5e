"""CTI_DNC_LIST_ID: click-to-call refuses numbers on the cc_agent phone list; the dialer hears nothing."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from .conftest import CC_AGENT_KEY, CC_AGENT_URL, DIALER_ENV, ZAIN_URL

LEADS = f"{CC_AGENT_URL}/api/phone_list/31/lead"
DNC = {
    "CTI_DNC_LIST_ID": "31",
    "CTI_CC_AGENT_URL": CC_AGENT_URL,
    "CTI_CC_AGENT_API_KEY": CC_AGENT_KEY,
}


def lead(phone: str) -> dict:
    return {"id": phone, "phone": phone, "lead_id": "3", "priority": 1, "name": "x", "tags": None}


@pytest.fixture
def settings(upstream):
    upstream.get(
        LEADS,
        json={
            "Success": True,
            "data": [lead("27721234567"), lead("0215550000"), lead("+447911123456")],
        },
    )
    upstream.post(
        f"{ZAIN_URL}/api/InitiateCustomerCall", json={"status": "success", "callSessionId": "s1"}
    )
    return {**DIALER_ENV["zain"], **DNC, "CTI_ALLOWED_COUNTRIES": "ZA,GB"}


def dialer_calls(upstream):
    return [c for c in upstream.calls if c.request.url.startswith(ZAIN_URL)]


@pytest.mark.parametrize(
    "typed", ["072 123 4567", "+27 72 123 4567", "021 555 0000", "+44 7911 123456"]
)
def test_number_on_the_list_is_refused_and_the_dialer_receives_nothing(
    client, upstream, auth, typed
):
    response = client.post("/api/v1/calls", json={"to": typed, "agent": "6000"}, headers=auth)

    assert response.status_code == 403
    assert response.get_json()["code"] == "destination_not_allowed"
    assert dialer_calls(upstream) == []


def test_list_is_read_from_the_phone_list_leads(client, upstream, auth):
    client.post("/api/v1/calls", json={"to": "0721234567", "agent": "6000"}, headers=auth)

    (call,) = upstream.calls
    parts = urlsplit(call.request.url)
    assert call.request.method == "GET"
    assert parts.path == "/api/phone_list/31/lead"
    assert dict(parse_qsl(parts.query)) == {"api_key": CC_AGENT_KEY}


def test_number_not_on_the_list_is_dialed(client, upstream, auth):
    response = client.post(
        "/api/v1/calls", json={"to": "0731234567", "agent": "6000"}, headers=auth
    )

    assert response.status_code == 201
    assert len(dialer_calls(upstream)) == 1


def test_list_is_cached_briefly(client, upstream, auth):
    for to in ("0721234567", "0731234567", "0741234567"):
        client.post("/api/v1/calls", json={"to": to, "agent": "6000"}, headers=auth)

    assert [c.request.url.startswith(LEADS) for c in upstream.calls].count(True) == 1


def test_unreadable_list_places_no_call(make_app, upstream, auth):
    upstream.get(LEADS, json={"success": False, "msg": "No such list"}, status=404)
    client = make_app(**DIALER_ENV["zain"], **DNC).test_client()

    response = client.post(
        "/api/v1/calls", json={"to": "0731234567", "agent": "6000"}, headers=auth
    )

    assert response.status_code == 502
    assert response.get_json()["detail"] == "cc_agent: No such list"
    assert dialer_calls(upstream) == []
