"""Each dialer receives exactly the request its document describes, whatever spelling was typed."""

from __future__ import annotations

import codecs
import json
from urllib.parse import parse_qsl, urlsplit

import pytest

from .conftest import (
    CC_AGENT_KEY,
    CC_AGENT_URL,
    DIALER_ENV,
    TELEPHONY_TOKEN,
    TELEPHONY_URL,
    ZAIN_TOKEN,
    ZAIN_URL,
)

SPELLINGS = ["072 123 4567", "+27 72 123 4567", "0027721234567"]


def query(call):
    return dict(parse_qsl(urlsplit(call.request.url).query))


def click(client, auth, to: str, **fields):
    """``POST /api/v1/calls`` to ``to`` for agent 6000, with any further body ``fields``."""
    return client.post("/api/v1/calls", json={"to": to, "agent": "6000", **fields}, headers=auth)


def initiated(call_id: str, *, dialed: str, provider: str) -> dict:
    """The 201 answer to a click-to-call to +27 72 123 4567 for agent 6000."""
    return {
        "call_id": call_id,
        "status": "initiated",
        "to": "+27721234567",
        "dialed": dialed,
        "agent": "6000",
        "provider": provider,
    }


@pytest.mark.parametrize("typed", SPELLINGS)
def test_cc_agent_originate_request_and_answer(make_app, upstream, auth, typed):
    upstream.get(
        f"{CC_AGENT_URL}/api/cc_agent/originate",
        json={"Success": True, "uuid": "70b27a69-1363-42e1-9c37-4f9c159beb3b"},
    )
    client = make_app(**DIALER_ENV["cc_agent"]).test_client()

    response = click(client, auth, typed)

    assert response.status_code == 201
    assert response.get_json() == initiated(
        "70b27a69-1363-42e1-9c37-4f9c159beb3b", dialed="27721234567", provider="cc_agent"
    )
    (call,) = upstream.calls
    assert call.request.method == "GET"
    assert urlsplit(call.request.url).path == "/api/cc_agent/originate"
    assert query(call) == {
        "destination": "27721234567",
        "extension": "6000",
        "api_key": CC_AGENT_KEY,
    }


def test_cc_agent_sends_caller_id_and_lead_id(make_app, upstream, auth):
    upstream.get(f"{CC_AGENT_URL}/api/cc_agent/originate", json={"success": True, "uuid": "u-1"})
    client = make_app(**DIALER_ENV["cc_agent"]).test_client()

    response = click(client, auth, "0721234567", lead_id="L-42", caller_id="021 555 0000")

    assert response.status_code == 201
    assert query(upstream.calls[0]) == {
        "destination": "27721234567",
        "extension": "6000",
        "api_key": CC_AGENT_KEY,
        "cid": "27215550000",
        "lead_id": "L-42",
    }


@pytest.mark.parametrize("typed", SPELLINGS)
def test_zain_initiate_customer_call_request_and_answer(make_app, upstream, auth, typed):
    upstream.post(
        f"{ZAIN_URL}/api/InitiateCustomerCall",
        json={
            "status": "success",
            "message": "Call initiated and being routed to agent.",
            "callSessionId": "xyz-7890",
        },
    )
    client = make_app(**DIALER_ENV["zain"], CTI_ZAIN_LOCALE="ar").test_client()

    response = click(client, auth, typed)

    assert response.status_code == 201
    assert response.get_json() == initiated("xyz-7890", dialed="0721234567", provider="zain")
    (call,) = upstream.calls
    assert call.request.method == "POST"
    assert call.request.url == f"{ZAIN_URL}/api/InitiateCustomerCall"
    assert call.request.headers["Token"] == ZAIN_TOKEN
    assert call.request.headers["locale"] == "ar"
    assert call.request.headers["Content-Type"] == "application/json"
    assert json.loads(call.request.body) == {
        "domainName": "example.com",
        "customerNumber": "0721234567",
        "agentExtension": "6000",
    }


@pytest.mark.parametrize("typed", SPELLINGS)
def test_telephony_dial_request_and_answer(make_app, upstream, auth, typed):
    upstream.get(
        f"{TELEPHONY_URL}/webservices/services/telephony/dial/user/6000/phone/0721234567",
        json={
            "Success": True,
            "Data": {"CallId": 991, "PhoneNumber": "0721234567"},
            "ResponseCode": 0,
            "ResponseDetail": "",
        },
    )
    client = make_app(**DIALER_ENV["telephony"]).test_client()

    response = click(client, auth, typed)

    assert response.status_code == 201
    assert response.get_json() == initiated("991", dialed="0721234567", provider="telephony")
    (call,) = upstream.calls
    assert call.request.method == "GET"
    assert urlsplit(call.request.url).query == ""
    assert call.request.headers["Cookie"] == f"TokenKey={TELEPHONY_TOKEN}"
    assert call.request.headers["Content-Type"] == "application/json"


def test_telephony_uses_directory_user_id_and_lead_id(make_app, upstream, auth, tmp_path):
    agents = tmp_path / "agents.csv"
    agents.write_text(
        "extension,user_id,device_id,first_name,last_name,email\n"
        "6000,4711,,Thandi,Mokoena,thandi@example.com\n"
    )
    upstream.get(
        f"{TELEPHONY_URL}/webservices/services/telephony/dial/user/4711/phone/0721234567",
        json={"Success": True, "Data": {"CallId": 5}},
    )
    client = make_app(**DIALER_ENV["telephony"], CTI_AGENTS_FILE=str(agents)).test_client()

    response = click(client, auth, "0721234567", lead_id="123")

    assert response.status_code == 201
    assert query(upstream.calls[0]) == {"leadid": "123"}


def test_telephony_xml_answer_is_understood(make_app, upstream, auth):
    xml = (
        '<CallActionResponse xmlns="http://schemas.datacontract.org/2004/07/Telephony"'
        ' xmlns:i="http://www.w3.org/2001/XMLSchema-instance">'
        '<Data><CallId>77</CallId><CustomerName i:nil="true"/></Data>'
        "<ResponseCode>0</ResponseCode><ResponseDetail/><Success>true</Success>"
        "</CallActionResponse>"
    )
    upstream.get(
        f"{TELEPHONY_URL}/webservices/services/telephony/dial/user/6000/phone/0721234567",
        body=xml,
        content_type="application/xml",
    )
    client = make_app(**DIALER_ENV["telephony"]).test_client()

    response = click(client, auth, "0721234567")

    assert response.status_code == 201
    assert response.get_json()["call_id"] == "77"


def encoded(text: str, encoding: str) -> bytes:
    """``text`` in ``encoding``, after its byte-order mark (``utf-8-sig``, ``utf-16`` and
    ``utf-16-be``, whose codec writes none, get one)."""
    if encoding == "utf-16-be":
        return codecs.BOM_UTF16_BE + text.encode(encoding)
    return text.encode(encoding)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-be"])
def test_telephony_xml_answer_with_a_byte_order_mark_is_understood(
    make_app, upstream, auth, encoding
):
    declared = "utf-8" if encoding == "utf-8-sig" else "utf-16"
    xml = (
        f'<?xml version="1.0" encoding="{declared}"?>\r\n'
        '<CallActionResponse xmlns="http://schemas.datacontract.org/2004/07/Telephony"'
        ' xmlns:i="http://www.w3.org/2001/XMLSchema-instance">'
        "<Data><CallId>77</CallId><CustomerName>Zoë Ndlovu</CustomerName></Data>"
        "<ResponseCode>0</ResponseCode><ResponseDetail/><Success>true</Success>"
        "</CallActionResponse>"
    )
    url = f"{TELEPHONY_URL}/webservices/services/telephony/dial/user/6000/phone/0721234567"
    upstream.get(url, body=encoded(xml, encoding), content_type="application/xml")
    client = make_app(**DIALER_ENV["telephony"]).test_client()

    response = click(client, auth, "0721234567")

    assert response.status_code == 201
    assert response.get_json() == initiated("77", dialed="0721234567", provider="telephony")
    (call,) = upstream.calls
    assert (call.request.method, call.request.url) == ("GET", url)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_telephony_json_answer_with_a_byte_order_mark_is_understood(
    make_app, upstream, auth, encoding
):
    answer = json.dumps({"Success": True, "Data": {"CallId": 78}, "ResponseCode": 0})
    url = f"{TELEPHONY_URL}/webservices/services/telephony/dial/user/6000/phone/0721234567"
    upstream.get(url, body=encoded(answer, encoding), content_type="application/json")
    client = make_app(**DIALER_ENV["telephony"]).test_client()

    response = click(client, auth, "0721234567")

    assert response.status_code == 201
    assert response.get_json() == initiated("78", dialed="0721234567", provider="telephony")
    (call,) = upstream.calls
    assert (call.request.method, call.request.url) == ("GET", url)


def test_telephony_agent_without_user_id_is_refused_before_dialing(make_app, upstream, auth):
    client = make_app(**DIALER_ENV["telephony"]).test_client()

    response = client.post("/api/v1/calls", json={"to": "0721234567", "agent": "bob"}, headers=auth)

    assert response.status_code == 422
    assert response.get_json()["code"] == "validation_error"
    assert len(upstream.calls) == 0


@pytest.mark.parametrize(
    "fmt,dialed",
    [("e164", "+27721234567"), ("international", "27721234567"), ("national", "0721234567")],
)
def test_dial_format_setting(make_app, upstream, auth, fmt, dialed):
    upstream.post(
        f"{ZAIN_URL}/api/InitiateCustomerCall", json={"status": "success", "callSessionId": "s"}
    )
    client = make_app(**DIALER_ENV["zain"], CTI_DIAL_FORMAT=fmt).test_client()

    response = click(client, auth, "072 123 4567")

    assert response.get_json()["dialed"] == dialed
    assert json.loads(upstream.calls[0].request.body)["customerNumber"] == dialed


def test_national_format_applies_to_home_region_only(make_app, upstream, auth):
    upstream.post(
        f"{ZAIN_URL}/api/InitiateCustomerCall", json={"status": "success", "callSessionId": "s"}
    )
    client = make_app(**DIALER_ENV["zain"], CTI_ALLOWED_COUNTRIES="ZA,GB").test_client()

    response = click(client, auth, "+44 20 7946 0958")

    assert response.status_code == 201
    assert response.get_json()["dialed"] == "442079460958"


@pytest.mark.parametrize("field", ["caller_id", "lead_id"])
def test_zain_cannot_take_caller_id_or_lead_id(make_app, upstream, auth, field):
    client = make_app(**DIALER_ENV["zain"]).test_client()
    value = "0215550000" if field == "caller_id" else "42"

    response = click(client, auth, "0721234567", **{field: value})

    assert response.status_code == 501
    assert response.get_json()["code"] == "unsupported"
    assert len(upstream.calls) == 0


def test_sandbox_places_a_call_without_any_upstream(client, auth):
    response = click(client, auth, "072 123 4567")

    assert response.status_code == 201
    body = response.get_json()
    assert body["provider"] == "sandbox" and body["to"] == "+27721234567" and body["call_id"]
