"""The agent's own status (``GET /api/v1/agents/{extension}/status``, its board entry) and its
changes on the agent's stream (``event: status``), and the queues an agent may join
(``GET /api/v1/agents/{extension}/queues``: cc_agent's ``/api/user/{id}`` and ``/api/cc_queue``,
exactly as cc-agent-pbx.txt writes them; 501 where the provider lists none)."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlsplit

import pytest

from .conftest import CC_AGENT_KEY, CC_AGENT_URL, TOKEN_SECRET
from .journal_fakes import HOOK
from .test_credentials_table import token

CC_AGENT = {
    "CTI_AGENT_PROVIDER": "cc_agent",
    "CTI_CC_AGENT_URL": CC_AGENT_URL,
    "CTI_CC_AGENT_API_KEY": CC_AGENT_KEY,
}
ZEROS = {"calls": 0, "answered": 0, "missed": 0, "talk_seconds": 0}
# journal_fakes.AGENTS_CSV: 6001 is user 101 (Ayanda Dlamini), 6002 user 102 (Pieter Botha)
AYANDA = {"extension": "6001", "name": "Ayanda Dlamini", "call": None, "today": ZEROS}


@pytest.fixture
def app(journal_app, shared_env):
    """The agents file and a CRM fake, on the embedded store, PostgreSQL and Redis in turn."""
    return journal_app(CTI_TOKEN_SECRET=TOKEN_SECRET, **shared_env)


def push(client, event: dict) -> None:
    response = client.post("/api/v1/webhooks/pbx", json=event, headers=HOOK)
    assert response.status_code == 202, response.get_json()


def status_of(client, extension: str, headers: dict) -> dict:
    response = client.get(f"/api/v1/agents/{extension}/status", headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def stream(client, extension: str, headers: dict) -> list[tuple[str, str, dict]]:
    """Every message of the agent's stream from the start (a test client has no threads: the
    stream answers what is there and ends): (id, event, data)."""
    answer = client.get(
        f"/api/v1/agents/{extension}/events", headers={**headers, "Last-Event-ID": "0"}
    )
    assert answer.status_code == 200
    messages = []
    for block in answer.get_data(as_text=True).split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            messages.append((lines["id"], lines["event"], json.loads(lines["data"])))
    return messages


def test_the_status_is_the_agents_board_entry_kept_by_the_pbx_pushes(client, auth):
    own = {"Authorization": f"Bearer {token('6001')}"}
    seen = [status_of(client, "6001", own)]
    for event in (
        {"event": "agent:checkin", "user_id": 101, "device_id": 201},
        {"event": "agent:status", "user_id": 101, "activity_id": 1, "pause_id": 3},
        {"event": "agent:status", "user_id": "101", "pause_id": "0", "in_calls": 1},
        {"event": "agent:checkout", "user_id": 101},
    ):
        push(client, event)
        seen.append(status_of(client, "6001", own))

    assert [entry["status"] for entry in seen] == [
        "unknown",
        "available",
        "paused",
        "available",
        "offline",
    ]
    assert seen[-1] == {**AYANDA, "status": "offline"}
    board = client.get("/api/v1/board", headers=auth).get_json()["agents"]
    assert board[0] == seen[-1]  # the board's entry, as the supervisors see it
    supervisor = {"Authorization": f"Bearer {token('Thandi', scope='supervisor')}"}
    assert status_of(client, "6001", supervisor) == seen[-1]
    assert status_of(client, "6002", auth)["status"] == "unknown"


def test_a_status_set_through_the_api_is_shown_too(client, auth):
    response = client.put("/api/v1/agents/6002/status", json={"status": "paused"}, headers=auth)

    assert response.status_code == 200
    assert status_of(client, "6002", auth)["status"] == "paused"


def test_each_status_change_reaches_the_agents_own_stream_only(client, auth):
    push(client, {"event": "agent:checkin", "user_id": 101})
    push(client, {"event": "agent:status", "user_id": 101, "pause_id": 0})  # no change: no event
    push(client, {"event": "agent:status", "user_id": 101, "pause_id": 7})
    client.put("/api/v1/agents/6002/status", json={"status": "offline"}, headers=auth)

    own = {"Authorization": f"Bearer {token('6001')}"}
    mine = stream(client, "6001", own)
    theirs = stream(client, "6002", auth)

    # each message is the entry as it is when sent: the latest status, whatever the event
    assert [(name, data) for _, name, data in mine] == [
        ("status", {**AYANDA, "status": "paused"})
    ] * 2
    assert int(mine[0][0]) < int(mine[1][0])
    assert [(name, data["extension"], data["status"]) for _, name, data in theirs] == [
        ("status", "6002", "offline")
    ]
    after_first = client.get(
        "/api/v1/agents/6001/events", headers={**own, "Last-Event-ID": mine[0][0]}
    ).get_data(as_text=True)
    assert after_first.count("event: status") == 1  # resumes after what it saw


def test_the_status_of_another_agent_is_forbidden_to_an_agent_token(client):
    response = client.get(
        "/api/v1/agents/6002/status", headers={"Authorization": f"Bearer {token('6001')}"}
    )

    assert response.status_code == 403
    assert response.get_json()["code"] == "forbidden"


def test_a_malformed_extension_is_422(client, auth):
    response = client.get("/api/v1/agents/60%2001/status", headers=auth)

    assert response.status_code == 422
    assert response.get_json()["code"] == "validation_error"


# queues ------------------------------------------------------------------------------------------


def sent(call) -> tuple[str, list[tuple[str, str]]]:
    parts = urlsplit(call.request.url)
    return parts.path, parse_qsl(parts.query, keep_blank_values=True)


@pytest.fixture
def cc_client(make_app, upstream, tmp_path):
    agents = tmp_path / "agents.csv"
    agents.write_text("extension,user_id,device_id,first_name,last_name,email\n6000,4711,,,,\n")
    return make_app(**CC_AGENT, CTI_AGENTS_FILE=str(agents)).test_client()


def user_and_queues(upstream, user: dict, queues) -> None:
    upstream.get(f"{CC_AGENT_URL}/api/user/4711", json={"success": True, "data": user})
    upstream.get(f"{CC_AGENT_URL}/api/cc_queue", json={"success": True, "data": queues})


QUEUES = [
    {"id": 3, "account_id": 9, "name": "Sales", "strategy": "ring-all"},
    {"id": 14, "account_id": 9, "name": "Support", "strategy": "longest-idle-agent"},
    {"id": 15, "account_id": 9, "name": "Billing", "strategy": "round-robin"},
]


def test_cc_agent_lists_the_permitted_queues_with_the_joined_ones(cc_client, upstream, auth):
    user = {
        "id": 4711,
        "name": "Thandi",
        "pause_id": 0,
        "queue_perms": [[14, 4, 10, 1, None], [3, 4, 10, 1, None]],
        "queues": [14, 22],  # joined; 22 is not permitted (any more) but the agent is in it
    }
    user_and_queues(upstream, user, QUEUES)

    response = cc_client.get("/api/v1/agents/6000/queues", headers=auth)

    assert response.status_code == 200
    assert response.get_json() == {
        "agent": "6000",
        "queues": [
            {"queue_id": 14, "name": "Support", "joined": True},
            {"queue_id": 3, "name": "Sales", "joined": False},
            {"queue_id": 22, "name": None, "joined": True},
        ],
        "provider": "cc_agent",
    }
    assert [(call.request.method, sent(call)) for call in upstream.calls] == [
        ("GET", ("/api/user/4711", [("api_key", CC_AGENT_KEY)])),
        ("GET", ("/api/cc_queue", [("api_key", CC_AGENT_KEY)])),
    ]


def test_cc_agent_without_queue_perms_lists_every_queue(cc_client, upstream, auth):
    user_and_queues(upstream, {"id": 4711, "queues": "15"}, QUEUES)

    response = cc_client.get("/api/v1/agents/6000/queues", headers=auth)

    assert response.get_json()["queues"] == [
        {"queue_id": 3, "name": "Sales", "joined": False},
        {"queue_id": 14, "name": "Support", "joined": False},
        {"queue_id": 15, "name": "Billing", "joined": True},
    ]


def test_cc_agent_failure_to_list_is_502_with_its_message(cc_client, upstream, auth):
    upstream.get(f"{CC_AGENT_URL}/api/user/4711", json={"success": False, "msg": "No such user"})

    response = cc_client.get("/api/v1/agents/6000/queues", headers=auth)

    assert response.status_code == 502
    assert response.get_json()["code"] == "upstream_error"
    assert "No such user" in response.get_json()["detail"]
    assert len(upstream.calls) == 1


def test_the_sandbox_lists_sample_queues(make_app, auth):
    response = make_app().test_client().get("/api/v1/agents/6000/queues", headers=auth)

    assert response.get_json() == {
        "agent": "6000",
        "queues": [
            {"queue_id": 1, "name": "Sales", "joined": False},
            {"queue_id": 2, "name": "Support", "joined": False},
            {"queue_id": 3, "name": "Billing", "joined": False},
        ],
        "provider": "sandbox",
    }
