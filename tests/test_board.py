"""GET /api/v1/board (contract section 4, supervisor console): every agent of the directory and every
one seen, its status (PUT status the provider accepted, the cc_agent agent pushes), its call in
progress (its legs' ring, answer and end) and its calls of today; on SQLite, PostgreSQL and Redis."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from .conftest import CC_AGENT_KEY, CC_AGENT_URL
from .journal_fakes import HOOK, call_end, journal_env
from .redis_server import RedisServer, redis_available

CC_AGENT = {
    "CTI_AGENT_PROVIDER": "cc_agent",
    "CTI_CC_AGENT_URL": CC_AGENT_URL,
    "CTI_CC_AGENT_API_KEY": CC_AGENT_KEY,
}
# journal_fakes.AGENTS_CSV: 6001 is user 101 (Ayanda Dlamini), 6002 user 102 (Pieter Botha)
ZEROS = {"calls": 0, "answered": 0, "missed": 0, "talk_seconds": 0}


def noon_zone() -> str:
    """A fixed-offset zone where it is about noon now: "today" there is hours from changing."""
    offset = (12 - datetime.now(UTC).hour + 12) % 24 - 12  # -12 .. +11
    return f"Etc/GMT{-offset:+d}" if offset else "UTC"


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def entry(extension, name=None, status="unknown", call=None, today=None) -> dict:
    return {
        "extension": extension,
        "name": name,
        "status": status,
        "call": call,
        "today": today or ZEROS,
    }


def push(client, event: dict) -> None:
    response = client.post("/api/v1/webhooks/pbx", json=event, headers=HOOK)
    assert response.status_code == 202, response.get_json()


def board(client, auth) -> dict:
    response = client.get("/api/v1/board", headers=auth)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def agents(client, auth) -> dict[str, dict]:
    return {agent["extension"]: agent for agent in board(client, auth)["agents"]}


def leg(event: str, leg_id: str, ts: float, **fields) -> dict:
    """A leg event of an inbound call to 6001 (user 101) from 072 123 4567."""
    body = {
        "event": event,
        "id": leg_id,
        "call_id": "call-1",
        "type": "inbound",
        "cid_num": "0721234567",
        "dst_num": "27215550000",
        "dst_user_id": 101,
        "ts": ts,
    }
    return {**body, **fields}


@pytest.fixture
def settings(upstream, tmp_path, shared_env):
    """The agents file and a CRM fake, on the embedded store, PostgreSQL and Redis in turn."""
    return {**journal_env(upstream, tmp_path), **shared_env}


def test_board_lists_the_directory_and_every_agent_seen_sorted_by_extension(client, auth):
    push(client, {"event": "agent:status", "user_id": "7000", "pause_id": 4})
    push(client, {"event": "agent:checkin", "user_id": "950"})
    before = time.time()

    answer = board(client, auth)

    assert answer["agents"] == [
        entry("950", status="available"),
        entry("6001", "Ayanda Dlamini"),
        entry("6002", "Pieter Botha"),
        entry("7000", status="paused"),
    ]
    at = datetime.strptime(answer["at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before - 1 <= at.timestamp() <= time.time()
    assert set(answer) == {"agents", "at"}


def test_agent_pushes_set_the_status_of_the_directory_agent_of_their_user_id(client, auth):
    seen = []
    for event in (
        {"event": "agent:checkin", "user_id": 101, "device_id": 201},
        {"event": "agent:status", "user_id": 101, "activity_id": 1, "pause_id": 3},
        {"event": "agent:status", "user_id": "101", "pause_id": "0", "in_calls": 1},
        {"event": "agent:status", "user_id": 101, "pause_id": 12},
        {"event": "agent:checkout", "user_id": 101},
    ):
        push(client, event)
        seen.append(agents(client, auth)["6001"]["status"])

    assert seen == ["available", "paused", "available", "paused", "offline"]
    assert agents(client, auth)["6002"]["status"] == "unknown"


def test_an_agent_push_without_a_user_id_or_with_an_unknown_name_is_ignored(client, auth):
    push(client, {"event": "agent:checkin"})
    push(client, {"event": "agent:checkout", "user_id": "not-a-number"})

    assert list(agents(client, auth)) == ["6001", "6002"]


def test_a_status_the_provider_accepted_shows_and_a_refused_one_leaves_it(
    journal_app, shared_env, upstream, auth
):
    client = journal_app(**CC_AGENT, **shared_env).test_client()
    set_pause = f"{CC_AGENT_URL}/api/cc_agent/setPause"
    upstream.get(set_pause, json={"success": True})
    upstream.get(f"{CC_AGENT_URL}/api/cc_agent/checkOut", json={"success": True})

    steps = []
    for status in ("paused", "available", "offline"):
        answer = client.put("/api/v1/agents/6001/status", json={"status": status}, headers=auth)
        steps.append((answer.status_code, agents(client, auth)["6001"]["status"]))
    upstream.replace("GET", set_pause, json={"success": False, "error": "no such pause"})
    refused = client.put("/api/v1/agents/6001/status", json={"status": "paused"}, headers=auth)

    assert steps == [(200, "paused"), (200, "available"), (200, "offline")]
    assert refused.status_code == 502
    assert agents(client, auth)["6001"]["status"] == "offline"


def test_the_latest_status_wins_whichever_way_it_came(journal_app, shared_env, upstream, auth):
    client = journal_app(**CC_AGENT, **shared_env).test_client()
    upstream.get(f"{CC_AGENT_URL}/api/cc_agent/setPause", json={"success": True})

    client.put("/api/v1/agents/6001/status", json={"status": "paused"}, headers=auth)
    push(client, {"event": "agent:status", "user_id": 101, "pause_id": 0})
    pushed = agents(client, auth)["6001"]["status"]
    client.put("/api/v1/agents/6001/status", json={"status": "paused"}, headers=auth)

    assert (pushed, agents(client, auth)["6001"]["status"]) == ("available", "paused")


def test_a_call_rings_is_answered_and_ends_on_the_agents_board_entry(client, auth):
    start = int(time.time()) - 30
    push(client, leg("call:ring", "leg-1", start))
    ringing = agents(client, auth)["6001"]["call"]
    push(client, leg("call:answer", "leg-1", start + 8))
    talking = agents(client, auth)["6001"]["call"]
    push(client, leg("call:end", "leg-1", start + 20, durationms=20000, billms=12000))

    assert ringing == {
        "call_id": "call-1",
        "direction": "inbound",
        "number": "+27721234567",
        "state": "ringing",
        "since": iso(start),
    }
    assert talking == {**ringing, "state": "talking", "since": iso(start + 8)}
    assert agents(client, auth)["6001"]["call"] is None


def test_an_outbound_call_is_the_agent_of_its_source_and_the_number_it_dialed(client, auth):
    start = int(time.time()) - 5
    push(
        client,
        {
            "event": "call:answer",
            "id": "out-1",
            "type": "outbound",
            "src_user_id": 102,
            "dst_num": "0829876543",
            "cid_num": "27215550000",
            "ts": start,
        },
    )

    assert agents(client, auth)["6002"]["call"] == {
        "call_id": "out-1",
        "direction": "outbound",
        "number": "+27829876543",
        "state": "talking",
        "since": iso(start),
    }
    assert agents(client, auth)["6001"]["call"] is None


def test_a_number_that_is_no_number_is_null_and_a_user_without_a_row_is_its_extension(client, auth):
    start = int(time.time())
    push(client, leg("call:ring", "leg-x", start, cid_num="anonymous", dst_user_id="7007"))

    assert agents(client, auth)["7007"]["call"] == {
        "call_id": "call-1",
        "direction": "inbound",
        "number": None,
        "state": "ringing",
        "since": iso(start),
    }


def test_a_leg_never_goes_back_a_late_ring_neither_revives_nor_undoes_it(client, auth):
    start = int(time.time()) - 60
    push(client, leg("call:answer", "leg-1", start + 5))
    push(client, leg("call:ring", "leg-1", start))  # late: the leg is talking already
    talking = agents(client, auth)["6001"]["call"]
    push(client, leg("call:end", "leg-2", start + 9))  # another leg ends before it rang
    push(client, leg("call:ring", "leg-2", start + 1))

    assert talking["state"] == "talking"
    assert talking["since"] == iso(start + 5)
    assert agents(client, auth)["6001"]["call"]["call_id"] == "call-1"
    assert agents(client, auth)["6001"]["call"]["state"] == "talking"


def test_a_queue_call_rings_two_agents_and_stays_with_the_one_who_answers(client, auth):
    start = int(time.time()) - 20
    push(client, leg("call:ring", "to-6001", start, type="queue"))
    push(client, leg("call:ring", "to-6002", start, type="queue", dst_user_id=102))
    both = [agents(client, auth)[ext]["call"]["state"] for ext in ("6001", "6002")]
    push(client, leg("call:answer", "to-6002", start + 4, type="queue", dst_user_id=102))
    push(client, leg("call:end", "to-6001", start + 4, type="queue", durationms=4000))

    assert both == ["ringing", "ringing"]
    assert agents(client, auth)["6001"]["call"] is None
    assert agents(client, auth)["6002"]["call"]["state"] == "talking"


def test_a_leg_without_an_end_is_dropped_four_hours_after_it_started(client, auth):
    now = int(time.time())
    push(client, leg("call:ring", "stale", now - 4 * 3600 - 60))
    dropped = agents(client, auth)["6001"]["call"]
    push(client, leg("call:answer", "recent", now - 4 * 3600 + 60, dst_user_id=102))

    assert dropped is None
    assert agents(client, auth)["6002"]["call"]["state"] == "talking"


def test_internal_calls_and_legs_without_an_agent_leave_the_board_alone(client, auth):
    now = int(time.time())
    push(client, leg("call:ring", "internal", now, type="internal"))
    push(client, {**leg("call:ring", "no-agent", now), "dst_user_id": None})

    assert [a["call"] for a in board(client, auth)["agents"]] == [None, None]


def test_today_counts_the_calls_logged_for_the_agent_that_started_today_locally(
    journal_app, shared_env, auth
):
    zone = noon_zone()
    client = journal_app(CTI_TIMEZONE=zone, **shared_env).test_client()
    today = datetime.now(ZoneInfo(zone)).date()
    yesterday = today - timedelta(days=1)
    pushes = [
        ("a", today, "ANSWER", "6001", 125),
        ("b", today, "ANSWER", "6001", 40),
        ("c", today, "MISSED", "6001", 0),
        ("d", yesterday, "ANSWER", "6001", 300),  # not today
        ("e", today, "ANSWER", "6002", 77),  # another agent
        ("f", today, "DROPPED", None, 0),  # no agent
    ]
    for call_id, day, status, agent, seconds in pushes:
        push_ivr = {
            "calllogid": call_id,
            "callnumber": "0721234567",
            "date": day.isoformat(),
            "time": "09:30:00",
            "callstatus": status,
            "callduration": seconds,
        }
        if agent:
            push_ivr["agentnumber"] = agent
        response = client.post("/api/v1/webhooks/ibizfone", data=push_ivr, headers=HOOK)
        assert response.status_code == 200
    # a cc_agent call of 6001 that ended a minute ago: answered, 95 s of talk
    push(client, call_end(id="pbx-1", ts=int(time.time()) - 60, durationms=100000, billms=95000))

    entries = agents(client, auth)

    assert entries["6001"]["today"] == {
        "calls": 4,
        "answered": 3,
        "missed": 1,
        "talk_seconds": 125 + 40 + 95,
    }
    assert entries["6002"]["today"] == {"calls": 1, "answered": 1, "missed": 0, "talk_seconds": 77}


def test_the_board_refuses_what_the_contract_table_refuses(client):
    for method in ("post", "put", "delete"):
        response = getattr(client, method)("/api/v1/board", headers={"X-API-Key": "x"})
        assert response.status_code == 405
    assert client.get("/api/v1/board").status_code == 401


@pytest.mark.skipif(not redis_available(), reason="redis-server is not installed")
@pytest.mark.slow  # starts a server process of its own
def test_a_board_that_cannot_be_written_fails_no_webhook_and_no_status(journal_app, auth):
    """Redis down: the journal's webhooks and a status change still succeed; the board itself
    answers 503 until Redis is back, and shows the next change then."""
    redis = RedisServer().start()
    try:
        client = journal_app(CTI_REDIS_URL=redis.url).test_client()
        redis.stop()
        down = [
            client.post("/api/v1/webhooks/pbx", json=call_end(), headers=HOOK).status_code,
            client.post(
                "/api/v1/webhooks/pbx",
                json={"event": "agent:checkin", "user_id": 101},
                headers=HOOK,
            ).status_code,
            client.put(
                "/api/v1/agents/6001/status", json={"status": "paused"}, headers=auth
            ).status_code,
        ]
        board_down = client.get("/api/v1/board", headers=auth)
        redis.start()
        push(client, {"event": "agent:status", "user_id": 101, "pause_id": 0})
        back = agents(client, auth)["6001"]
    finally:
        redis.close()

    assert down == [202, 202, 200]
    assert (board_down.status_code, board_down.get_json()["code"]) == (503, "upstream_unavailable")
    assert back["status"] == "available"
    assert back["today"]["calls"] == 0  # the call of 2025-07-05 is not today


def test_a_leg_holds_its_customers_number_until_it_ends_or_is_erased(app, client, auth):
    """Privacy: the number of a call in progress goes with an erasure of that number, and an ended
    leg keeps none."""
    now = int(time.time())
    push(client, leg("call:ring", "to-6001", now))
    push(client, leg("call:ring", "to-6002", now, dst_user_id=102, cid_num="0829876543"))
    push(client, leg("call:end", "to-6002", now + 1, dst_user_id=102, cid_num="0829876543"))
    board_part = app.extensions["cti"].store.board
    held = [(found.leg, found.number) for found in board_part.for_number("+27829876543")]

    erased = client.delete("/api/v1/privacy/numbers/0721234567", headers=auth)

    assert held == []  # ended: the leg is kept (a late ring cannot revive it), its number is not
    assert erased.status_code == 200
    assert agents(client, auth)["6001"]["call"] is None
    assert board_part.for_number("+27721234567") == []
