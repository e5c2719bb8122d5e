"""cc_agent receives exactly the agent requests its document describes, and ibizfone's ManageAgent."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from .conftest import CC_AGENT_KEY, CC_AGENT_URL, IBIZFONE_KEY, IBIZFONE_URL

CC_AGENT = {
    "CTI_AGENT_PROVIDER": "cc_agent",
    "CTI_CC_AGENT_URL": CC_AGENT_URL,
    "CTI_CC_AGENT_API_KEY": CC_AGENT_KEY,
}
IBIZFONE = {
    "CTI_AGENT_PROVIDER": "ibizfone",
    "CTI_IBIZFONE_URL": IBIZFONE_URL,
    "CTI_IBIZFONE_API_KEY": IBIZFONE_KEY,
    "CTI_IBIZFONE_CUSTID": "C-77",
}


def sent(call) -> tuple[str, list[tuple[str, str]]]:
    """The path and the query (in order) of an upstream request."""
    parts = urlsplit(call.request.url)
    return parts.path, parse_qsl(parts.query, keep_blank_values=True)


@pytest.fixture
def directory(tmp_path):
    agents = tmp_path / "agents.csv"
    agents.write_text(
        "extension,user_id,device_id,first_name,last_name,email\n"
        "6000,4711,,Thandi,Mokoena,thandi@example.com\n"
        "6001,4712,88,Sipho,Dlamini,sipho@example.com\n"
        "bob,,,Bob,Botha,bob@example.com\n"
    )
    return str(agents)


@pytest.fixture
def cc_client(make_app, upstream, directory):
    for method in ("setPause", "checkOut", "checkIn", "checkInDevice", "setQueues", "wrapup"):
        upstream.get(f"{CC_AGENT_URL}/api/cc_agent/{method}", json={"success": True})
    return make_app(**CC_AGENT, CTI_AGENTS_FILE=directory).test_client()


def test_cc_agent_available_is_set_pause_zero_with_the_directory_user_id(cc_client, upstream, auth):
    response = cc_client.put(
        "/api/v1/agents/6000/status", json={"status": "available"}, headers=auth
    )

    assert response.status_code == 200
    assert response.get_json() == {
        "agent": "6000",
        "status": "available",
        "pause_id": None,
        "provider": "cc_agent",
    }
    (call,) = upstream.calls
    assert call.request.method == "GET"
    assert sent(call) == (
        "/api/cc_agent/setPause",
        [("id", "0"), ("user_id", "4711"), ("api_key", CC_AGENT_KEY)],
    )


@pytest.mark.parametrize("pause_id,sent_id", [(None, "1"), (7, "7")])
def test_cc_agent_paused_is_set_pause_with_the_pause_id_or_one(
    cc_client, upstream, auth, pause_id, sent_id
):
    body = {"status": "paused"} if pause_id is None else {"status": "paused", "pause_id": pause_id}

    response = cc_client.put("/api/v1/agents/6000/status", json=body, headers=auth)

    assert response.status_code == 200
    assert response.get_json()["pause_id"] == int(sent_id)
    (call,) = upstream.calls
    assert sent(call) == (
        "/api/cc_agent/setPause",
        [("id", sent_id), ("user_id", "4711"), ("api_key", CC_AGENT_KEY)],
    )


def test_cc_agent_offline_is_check_out(cc_client, upstream, auth):
    response = cc_client.put("/api/v1/agents/6000/status", json={"status": "offline"}, headers=auth)

    assert response.status_code == 200
    (call,) = upstream.calls
    assert sent(call) == (
        "/api/cc_agent/checkOut",
        [("user_id", "4711"), ("api_key", CC_AGENT_KEY)],
    )


def test_cc_agent_checked_out_agent_is_checked_in_before_available(
    make_app, upstream, auth, directory
):
    upstream.get(f"{CC_AGENT_URL}/api/cc_agent/checkOut", json={"success": True})
    upstream.get(f"{CC_AGENT_URL}/api/cc_agent/checkIn", json={"success": True, "data": "***9477"})
    upstream.get(f"{CC_AGENT_URL}/api/cc_agent/setPause", json={"success": True})
    client = make_app(**CC_AGENT, CTI_AGENTS_FILE=directory).test_client()

    client.put("/api/v1/agents/6000/status", json={"status": "offline"}, headers=auth)
    back = client.put("/api/v1/agents/6000/status", json={"status": "available"}, headers=auth)
    again = client.put("/api/v1/agents/6000/status", json={"status": "available"}, headers=auth)

    assert back.status_code == 200
    assert back.get_json()["check_in_number"] == "***9477"
    assert "check_in_number" not in again.get_json()
    assert [sent(c) for c in upstream.calls] == [
        ("/api/cc_agent/checkOut", [("user_id", "4711"), ("api_key", CC_AGENT_KEY)]),
        ("/api/cc_agent/checkIn", [("user_id", "4711"), ("api_key", CC_AGENT_KEY)]),
        ("/api/cc_agent/setPause", [("id", "0"), ("user_id", "4711"), ("api_key", CC_AGENT_KEY)]),
        ("/api/cc_agent/setPause", [("id", "0"), ("user_id", "4711"), ("api_key", CC_AGENT_KEY)]),
    ]


def test_cc_agent_check_in_uses_the_directory_device(cc_client, upstream, auth):
    cc_client.put("/api/v1/agents/6001/status", json={"status": "offline"}, headers=auth)

    response = cc_client.put(
        "/api/v1/agents/6001/status", json={"status": "available"}, headers=auth
    )

    assert response.status_code == 200
    assert [sent(c) for c in upstream.calls][1:] == [
        (
            "/api/cc_agent/checkInDevice",
            [("user_id", "4712"), ("device_id", "88"), ("api_key", CC_AGENT_KEY)],
        ),
        ("/api/cc_agent/setPause", [("id", "0"), ("user_id", "4712"), ("api_key", CC_AGENT_KEY)]),
    ]


def test_cc_agent_queues_are_set_queues_with_comma_separated_ids(cc_client, upstream, auth):
    response = cc_client.put(
        "/api/v1/agents/6000/queues", json={"queue_ids": [3, 14, 15]}, headers=auth
    )

    assert response.status_code == 200
    assert response.get_json() == {
        "queue_ids": [3, 14, 15],
        "agent": "6000",
        "provider": "cc_agent",
    }
    (call,) = upstream.calls
    assert sent(call) == (
        "/api/cc_agent/setQueues",
        [("queue_ids", "3,14,15"), ("user_id", "4711"), ("api_key", CC_AGENT_KEY)],
    )


@pytest.mark.parametrize(
    "body,query",
    [
        ({"seconds": 30}, [("user_id", "4711"), ("seconds", "30"), ("api_key", CC_AGENT_KEY)]),
        (None, [("user_id", "4711"), ("api_key", CC_AGENT_KEY)]),
    ],
)
def test_cc_agent_wrapup_sends_seconds_or_leaves_the_default(
    cc_client, upstream, auth, body, query
):
    response = cc_client.post("/api/v1/agents/6000/wrapup", json=body, headers=auth)

    assert response.status_code == 200
    assert response.get_json()["seconds"] == (body or {}).get("seconds")
    (call,) = upstream.calls
    assert sent(call) == ("/api/cc_agent/wrapup", query)


def test_numeric_extension_without_directory_row_is_the_user_id(make_app, upstream, auth):
    upstream.get(f"{CC_AGENT_URL}/api/cc_agent/setPause", json={"success": True})
    client = make_app(**CC_AGENT).test_client()

    client.put("/api/v1/agents/205/status", json={"status": "available"}, headers=auth)

    assert ("user_id", "205") in sent(upstream.calls[0])[1]


def test_agent_without_user_id_is_refused_before_any_request(make_app, upstream, auth, directory):
    client = make_app(**CC_AGENT, CTI_AGENTS_FILE=directory).test_client()

    response = client.put("/api/v1/agents/bob/status", json={"status": "paused"}, headers=auth)

    assert response.status_code == 422
    assert response.get_json()["errors"] == {
        "extension": ["Unknown agent: add it to CTI_AGENTS_FILE."]
    }
    assert len(upstream.calls) == 0


def test_cc_agent_failure_is_502_with_its_message(make_app, upstream, auth):
    upstream.get(
        f"{CC_AGENT_URL}/api/cc_agent/setPause",
        json={"success": False, "msg": "Agent not checked in"},
    )
    client = make_app(**CC_AGENT).test_client()

    response = client.put("/api/v1/agents/205/status", json={"status": "available"}, headers=auth)

    assert response.status_code == 502
    assert response.get_json()["code"] == "upstream_error"
    assert response.get_json()["detail"] == "cc_agent: Agent not checked in"


@pytest.mark.parametrize(
    "status,sent_status", [("available", "AVAIL"), ("paused", "OFF"), ("offline", "OFF")]
)
def test_ibizfone_manage_agent_status(make_app, upstream, auth, tmp_path, status, sent_status):
    upstream.get(f"{IBIZFONE_URL}/settings/handler.ashx", body="Success")
    # An ibizfone agent is its phone number: listed in the directory, it keeps its leading zero
    # (digits the directory lacks are read as a number, contract section 4).
    agents = tmp_path / "agents.csv"
    agents.write_text("extension,user_id,device_id,first_name,last_name,email\n0821234567,,,,,\n")
    client = make_app(**IBIZFONE, CTI_AGENTS_FILE=str(agents)).test_client()

    response = client.put("/api/v1/agents/0821234567/status", json={"status": status}, headers=auth)

    assert response.status_code == 200
    assert response.get_json() == {
        "agent": "0821234567",
        "status": status,
        "pause_id": None,
        "provider": "ibizfone",
    }
    (call,) = upstream.calls
    assert sent(call) == (
        "/settings/handler.ashx",
        [
            ("apikey", IBIZFONE_KEY),
            ("custid", "C-77"),
            ("action", "ManageAgent"),
            ("agentnum", "0821234567"),
            ("status", sent_status),
        ],
    )


def test_ibizfone_answer_other_than_success_is_502_with_its_text(make_app, upstream, auth):
    upstream.get(f"{IBIZFONE_URL}/settings/handler.ashx", body="Invalid Agent\r\n")
    client = make_app(**IBIZFONE).test_client()

    response = client.put("/api/v1/agents/6000/status", json={"status": "offline"}, headers=auth)

    assert response.status_code == 502
    assert response.get_json()["detail"] == "ibizfone: Invalid Agent"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"status": "away"},
        {"status": "available", "pause_id": 2},
        {"status": "paused", "pause_id": 0},
        {"status": "paused", "pause_id": "2"},
        {"status": "paused", "extra": 1},
    ],
)
def test_malformed_status_is_422(make_app, upstream, auth, body):
    client = make_app(**CC_AGENT).test_client()

    response = client.put("/api/v1/agents/6000/status", json=body, headers=auth)

    assert response.status_code == 422
    assert response.get_json()["code"] == "validation_error"
    assert len(upstream.calls) == 0


def test_malformed_extension_in_path_is_422(make_app, upstream, auth):
    client = make_app(**CC_AGENT).test_client()

    response = client.put("/api/v1/agents/60%2000/status", json={"status": "paused"}, headers=auth)

    assert response.status_code == 422
    assert "extension" in response.get_json()["errors"]
    assert len(upstream.calls) == 0
