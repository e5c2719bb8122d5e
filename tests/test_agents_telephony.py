"""telephony agent remote control: each operation's exact request, and its answers in XML or JSON."""

from __future__ import annotations

import codecs
from urllib.parse import parse_qsl, urlsplit

import pytest

from .conftest import TELEPHONY_TOKEN, TELEPHONY_URL

TELEPHONY = {
    "CTI_AGENT_PROVIDER": "telephony",
    "CTI_TELEPHONY_URL": TELEPHONY_URL,
    "CTI_TELEPHONY_TOKEN": TELEPHONY_TOKEN,
}
BASE = f"{TELEPHONY_URL}/webservices/services/telephony"
OK = {"Success": True, "Data": None, "ResponseCode": 0, "ResponseDetail": ""}


def xml(data: str, success: str = "true", detail: str = "") -> str:
    return (
        '<CallActionResponse xmlns="http://schemas.datacontract.org/2004/07/Telephony"'
        ' xmlns:i="http://www.w3.org/2001/XMLSchema-instance">'
        f"<Data>{data}</Data><ResponseCode>0</ResponseCode>"
        f"<ResponseDetail>{detail}</ResponseDetail><Success>{success}</Success>"
        "</CallActionResponse>"
    )


def call_xml(call_id: int, phone: str) -> str:
    return (
        f"<Call><CallId>{call_id}</CallId><CallStartTime>2025-07-05T10:15:00</CallStartTime>"
        "<CallState>2</CallState><CallStatus>1</CallStatus><CustomerName>Ann Lee</CustomerName>"
        f'<CustomerName2 i:nil="true"/><PhoneNumber>{phone}</PhoneNumber>'
        "<RecordingState>1</RecordingState></Call>"
    )


def expected_call(call_id: str, phone: str) -> dict:
    return {
        "call_id": call_id,
        "start_time": "2025-07-05T10:15:00",
        "state": 2,
        "status": 1,
        "customer_name": "Ann Lee",
        "customer_name2": None,
        "phone_number": phone,
        "recording_state": 1,
    }


def on_call(**fields) -> dict:
    """A call-control answer for agent 6000 on call 991: the call, the agent, the provider and
    what the operation adds (``fields``)."""
    return {"call_id": "991", "agent": "6000", **fields, "provider": "telephony"}


@pytest.fixture
def settings(tmp_path):
    agents = tmp_path / "agents.csv"
    agents.write_text(
        "extension,user_id,device_id,first_name,last_name,email\n6000,4711,,Ann,Agent,a@example.com\n"
        "bob,,,Bob,Botha,bob@example.com\n"
    )
    return {**TELEPHONY, "CTI_AGENTS_FILE": str(agents)}


def only_request(upstream):
    (call,) = upstream.calls
    assert call.request.method == "GET"
    assert call.request.headers["Cookie"] == f"TokenKey={TELEPHONY_TOKEN}"
    parts = urlsplit(call.request.url)
    return parts.path.removeprefix("/webservices/services/telephony"), dict(parse_qsl(parts.query))


def test_available_is_goready(client, upstream, auth):
    upstream.get(f"{BASE}/goready/user/4711", json=OK)

    response = client.put("/api/v1/agents/6000/status", json={"status": "available"}, headers=auth)

    assert response.status_code == 200
    assert response.get_json()["provider"] == "telephony"
    assert only_request(upstream) == ("/goready/user/4711", {})


@pytest.mark.parametrize(
    "data,calls",
    [
        (call_xml(31, "0721234567"), [expected_call("31", "+27721234567")]),
        (
            call_xml(31, "0721234567") + call_xml(32, "+27215550000"),
            [expected_call("31", "+27721234567"), expected_call("32", "+27215550000")],
        ),
        ("", []),
    ],
    ids=["one call", "two calls", "none"],
)
def test_getcalls_xml_lists_one_two_or_no_calls(client, upstream, auth, data, calls):
    upstream.get(f"{BASE}/getcalls/user/4711", body=xml(data), content_type="application/xml")

    response = client.get("/api/v1/agents/6000/calls", headers=auth)

    assert response.status_code == 200
    assert response.get_json() == {"calls": calls}
    assert only_request(upstream) == ("/getcalls/user/4711", {})


def with_bom(text: str, encoding: str) -> bytes:
    """An XML answer as a server may send it: a byte-order mark, the XML declaration, ``text``."""
    declared = "utf-8" if encoding == "utf-8-sig" else "utf-16"
    document = f'<?xml version="1.0" encoding="{declared}"?>\n{text}'
    if encoding == "utf-16-be":
        return codecs.BOM_UTF16_BE + document.encode(encoding)
    return document.encode(encoding)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-be"])
def test_getcalls_xml_with_a_byte_order_mark(client, upstream, auth, encoding):
    data = call_xml(31, "0721234567") + call_xml(32, "+27215550000")
    upstream.get(
        f"{BASE}/getcalls/user/4711", body=with_bom(xml(data), encoding), content_type="text/xml"
    )

    response = client.get("/api/v1/agents/6000/calls", headers=auth)

    assert response.status_code == 200
    assert response.get_json() == {
        "calls": [expected_call("31", "+27721234567"), expected_call("32", "+27215550000")]
    }
    assert only_request(upstream) == ("/getcalls/user/4711", {})


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_success_false_xml_with_a_byte_order_mark_keeps_its_response_detail(
    client, upstream, auth, encoding
):
    answer = xml("", success="false", detail="Call not found")
    upstream.get(f"{BASE}/hold/user/4711/call/991", body=with_bom(answer, encoding))

    response = client.post("/api/v1/calls/991/hold", json={"agent": "6000"}, headers=auth)

    assert response.status_code == 502
    assert response.get_json()["code"] == "upstream_error"
    assert response.get_json()["detail"] == "telephony: Call not found"
    assert only_request(upstream) == ("/hold/user/4711/call/991", {})


def test_getcalls_json_lists_calls(client, upstream, auth):
    upstream.get(
        f"{BASE}/getcalls/user/4711",
        json={
            "Success": True,
            "Data": [
                {
                    "CallId": 31,
                    "CallStartTime": "2025-07-05T10:15:00",
                    "CallState": 2,
                    "CallStatus": 1,
                    "CustomerName": "Ann Lee",
                    "CustomerName2": None,
                    "PhoneNumber": "not a number",
                    "RecordingState": 1,
                }
            ],
            "ResponseCode": 0,
            "ResponseDetail": "",
        },
    )

    response = client.get("/api/v1/agents/6000/calls", headers=auth)

    assert response.get_json() == {"calls": [expected_call("31", "not a number")]}


@pytest.mark.parametrize("action", ["hangup", "hold", "retrieve"])
def test_call_actions_send_user_and_call(client, upstream, auth, action):
    upstream.get(f"{BASE}/{action}/user/4711/call/991", json=OK)

    response = client.post(f"/api/v1/calls/991/{action}", json={"agent": "6000"}, headers=auth)

    assert response.status_code == 200
    assert response.get_json() == on_call(action=action)
    assert only_request(upstream) == (f"/{action}/user/4711/call/991", {})


def test_dispose_sends_the_result_code(client, upstream, auth):
    upstream.get(f"{BASE}/dispose/user/4711/call/991", json=OK)

    response = client.post(
        "/api/v1/calls/991/dispose", json={"agent": "6000", "result_code": "SALE 2"}, headers=auth
    )

    assert response.status_code == 200
    assert response.get_json()["result_code"] == "SALE 2"
    assert only_request(upstream) == ("/dispose/user/4711/call/991", {"resultcode": "SALE 2"})


@pytest.mark.parametrize("recording,method", [(False, "stoprecord"), (True, "startrecord")])
def test_recording_stops_and_starts(client, upstream, auth, recording, method):
    upstream.get(f"{BASE}/{method}/user/4711/call/991", json=OK)

    response = client.put(
        "/api/v1/calls/991/recording", json={"agent": "6000", "recording": recording}, headers=auth
    )

    assert response.status_code == 200
    assert response.get_json()["recording"] is recording
    assert only_request(upstream) == (f"/{method}/user/4711/call/991", {})


def test_result_codes_from_xml_with_a_single_code(client, upstream, auth):
    code = (
        "<ResultCode><Code>SALE</Code><Description>Sale</Description>"
        "<IsAgentViewable>true</IsAgentViewable><IsCallAgain>false</IsCallAgain>"
        "<IsCallback>false</IsCallback><IsSuccess>true</IsSuccess>"
        "<IsSystemResultCode>false</IsSystemResultCode><IsTransfer>false</IsTransfer>"
        "<ResultCodeID>12</ResultCodeID><Sales>1</Sales><StatusID>3</StatusID>"
        "<SuccessType>1</SuccessType></ResultCode>"
    )
    upstream.get(f"{BASE}/resultcodes/user/4711", body=xml(code), content_type="text/xml")

    response = client.get("/api/v1/result-codes?agent=6000", headers=auth)

    assert response.status_code == 200
    assert response.get_json() == {
        "result_codes": [
            {
                "code": "SALE",
                "description": "Sale",
                "result_code_id": 12,
                "is_success": True,
                "is_callback": False,
                "is_call_again": False,
                "is_transfer": False,
                "is_agent_viewable": True,
                "is_system_result_code": False,
                "sales": 1,
                "status_id": 3,
                "success_type": 1,
            }
        ]
    }
    assert only_request(upstream) == ("/resultcodes/user/4711", {})


def test_result_codes_from_json(client, upstream, auth):
    upstream.get(
        f"{BASE}/resultcodes/user/4711",
        json={"Success": True, "Data": [{"Code": "NI", "IsSuccess": False}, {"Code": "CB"}]},
    )

    response = client.get("/api/v1/result-codes", query_string={"agent": "6000"}, headers=auth)

    codes = response.get_json()["result_codes"]
    assert [c["code"] for c in codes] == ["NI", "CB"]
    assert codes[0]["is_success"] is False and codes[1]["is_success"] is None


def test_lead_phones_of_a_lead(client, upstream, auth):
    phones = (
        "<LeadPhone><LeadId>555</LeadId><PhoneNumber>0721234567</PhoneNumber>"
        "<RecordType>Mobile</RecordType><RecordTypeId>2</RecordTypeId></LeadPhone>"
    )
    upstream.get(f"{BASE}/leadphones/user/4711/lead/555", body=xml(phones))

    response = client.get("/api/v1/leads/555/phones?agent=6000", headers=auth)

    assert response.status_code == 200
    assert response.get_json() == {
        "lead_id": "555",
        "phones": [
            {
                "lead_phone_id": None,
                "lead_id": "555",
                "phone_number": "+27721234567",
                "record_type": "Mobile",
                "record_type_id": 2,
            }
        ],
    }
    assert only_request(upstream) == ("/leadphones/user/4711/lead/555", {})


def test_change_lead_of_a_call(client, upstream, auth):
    upstream.get(f"{BASE}/changelead/user/4711/call/991/leadphone/8080", json=OK)

    response = client.put(
        "/api/v1/calls/991/lead", json={"agent": "6000", "lead_phone_id": "8080"}, headers=auth
    )

    assert response.status_code == 200
    assert response.get_json() == on_call(lead_phone_id="8080")
    assert only_request(upstream) == ("/changelead/user/4711/call/991/leadphone/8080", {})


def test_create_lead_for_a_call_sends_the_national_number(client, upstream, auth):
    upstream.get(
        f"{BASE}/createnewlead/user/4711/call/991/phone/0721234567",
        json={"Success": True, "Data": {"LeadId": 9001}},
    )

    response = client.post(
        "/api/v1/calls/991/lead", json={"agent": "6000", "phone": "+27 72 123 4567"}, headers=auth
    )

    assert response.status_code == 201
    assert response.get_json() == on_call(phone="+27721234567", lead_id="9001")
    assert only_request(upstream) == ("/createnewlead/user/4711/call/991/phone/0721234567", {})


def test_connect_calls_is_a_warm_transfer(client, upstream, auth):
    upstream.get(f"{BASE}/connectcalls/user/4711", json=OK)

    response = client.post(
        "/api/v1/calls/991/connect",
        json={
            "agent": "6000",
            "other_call_id": "992",
            "result_code": "XFER",
            "other_result_code": "XFER3P",
            "notes": "to billing",
            "other_sales": 1,
        },
        headers=auth,
    )

    assert response.status_code == 200
    assert response.get_json() == on_call(other_call_id="992", action="connect")
    path, params = only_request(upstream)
    assert path == "/connectcalls/user/4711"
    assert params == {
        "call1": "991",
        "call2": "992",
        "resultcode1": "XFER",
        "resultcode2": "XFER3P",
        "notes1": "to billing",
        "numsales2": "1",
    }


@pytest.mark.parametrize("form", ["json", "xml"])
def test_success_false_is_502_with_its_response_detail(client, upstream, auth, form):
    url = f"{BASE}/hold/user/4711/call/991"
    if form == "json":
        upstream.get(
            url, json={"Success": False, "ResponseCode": 4, "ResponseDetail": "Call not found"}
        )
    else:
        upstream.get(url, body=xml("", success="false", detail="Call not found"))

    response = client.post("/api/v1/calls/991/hold", json={"agent": "6000"}, headers=auth)

    assert response.status_code == 502
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.get_json()["code"] == "upstream_error"
    assert response.get_json()["detail"] == "telephony: Call not found"


def test_telephony_agent_without_user_id_is_422(client, upstream, auth):
    response = client.post("/api/v1/calls/991/hangup", json={"agent": "bob"}, headers=auth)

    assert response.status_code == 422
    assert response.get_json()["errors"] == {"agent": ["Unknown agent: add it to CTI_AGENTS_FILE."]}
    assert len(upstream.calls) == 0


@pytest.mark.parametrize(
    "path,body",
    [
        ("/api/v1/calls/99%201/hangup", {"agent": "6000"}),
        ("/api/v1/calls/991/hangup", {}),
        ("/api/v1/calls/991/dispose", {"agent": "6000"}),
        ("/api/v1/calls/991/recording", {"agent": "6000", "recording": 0}),
        ("/api/v1/calls/991/lead", {"agent": "6000", "phone": "12"}),
        ("/api/v1/calls/991/connect", {"agent": "6000", "other_call_id": "992"}),
    ],
)
def test_malformed_call_requests_are_422(client, upstream, auth, path, body):
    method = client.put if path.endswith("recording") else client.post

    response = method(path, json=body, headers=auth)

    assert response.status_code == 422
    assert len(upstream.calls) == 0
