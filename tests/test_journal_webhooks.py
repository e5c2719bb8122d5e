"""The PBX and IVR webhooks: secret checked, stored once per call before the answer, never a 500."""

from __future__ import annotations

import json
import logging
import sqlite3
import time

import pytest

from devtools.waiting import wait_until
from middleware.runtime.logs import JsonFormatter
from middleware.store.sql import SqlStore

from .conftest import API_KEY, WEBHOOK_SECRET
from .journal_fakes import HOOK, IVR_PUSH, call_end, deliver, entries, journal_env, sent_logs


@pytest.fixture
def settings(upstream, tmp_path):
    return journal_env(upstream, tmp_path)


def test_pbx_call_end_answers_202_accepted(client):
    response = client.post("/api/v1/webhooks/pbx", json=call_end(), headers=HOOK)

    assert response.status_code == 202
    assert response.get_json() == {"accepted": True}


def test_the_answer_is_flasks_json_encoding(client):
    response = client.post("/api/v1/webhooks/pbx", json=call_end(), headers=HOOK)

    assert response.headers["Content-Type"] == "application/json"
    assert response.data == b'{"accepted":true}\n'


def test_a_stored_call_is_named_on_the_webhooks_one_log_line(client, caplog, auth):
    caplog.set_level(logging.INFO)
    for request_id in ("hook-1", "hook-2"):  # the second is the same call: nothing stored
        client.post(
            "/api/v1/webhooks/pbx", json=call_end(), headers={**HOOK, "X-Request-ID": request_id}
        )

    lines = [
        json.loads(JsonFormatter().format(r))
        for r in caplog.records
        if r.name in ("middleware.request", "middleware.services.journal")
    ]
    assert [(line["logger"], line["request_id"]) for line in lines] == [
        ("middleware.request", "hook-1"),
        ("middleware.request", "hook-2"),
    ]
    (entry,) = entries(client, auth)
    assert lines[0]["journal_entry"] == entry["id"]
    assert lines[0]["journal_source"] == "pbx" and lines[0]["journal_key"] == call_end()["id"]
    assert lines[0]["status"] == 202 and lines[0]["route"] == "/api/v1/webhooks/pbx"
    assert "journal_entry" not in lines[1]


def test_a_call_stored_outside_a_request_gets_a_line_of_its_own(app, caplog):
    caplog.set_level(logging.INFO)
    with app.app_context():
        entry = app.extensions["cti"].journal.record_pbx_leg(call_end(id="cli-1"))

    (record,) = [r for r in caplog.records if r.name == "middleware.services.journal"]
    assert record.getMessage() == f"journal: stored pbx call cli-1 as entry {entry.id}"


def test_entry_is_on_disk_before_the_answer(app, client, tmp_path):
    response = client.post("/api/v1/webhooks/pbx", json=call_end(), headers=HOOK)

    assert response.status_code == 202
    other = sqlite3.connect(tmp_path / "cti.sqlite3")  # another connection, as another process
    assert other.execute("SELECT source, key, status FROM journal").fetchall() == [
        ("pbx", call_end()["id"], "pending")
    ]
    other.close()


def test_same_pbx_webhook_twice_gives_one_crm_log(app, client, upstream, auth):
    for _ in range(2):
        assert client.post("/api/v1/webhooks/pbx", json=call_end(), headers=HOOK).status_code == 202
    deliver(app)
    assert client.post("/api/v1/webhooks/pbx", json=call_end(), headers=HOOK).status_code == 202
    deliver(app, later=3600)

    assert len(sent_logs(upstream)) == 1
    assert len(entries(client, auth)) == 1


def test_same_ibizfone_push_twice_gives_one_crm_log(app, client, upstream, auth):
    for _ in range(2):
        response = client.get("/api/v1/webhooks/ibizfone", query_string=IVR_PUSH, headers=HOOK)
        assert (response.status_code, response.data) == (200, b"Accepted")
    deliver(app, later=3600)

    assert len(sent_logs(upstream)) == 1
    (entry,) = entries(client, auth)
    assert (entry["source"], entry["key"]) == ("ibizfone", "IVR-77")


def test_pbx_and_ibizfone_keys_do_not_collide(app, client, auth):
    client.post("/api/v1/webhooks/pbx", json=call_end(id="X-1"), headers=HOOK)
    client.get(
        "/api/v1/webhooks/ibizfone", query_string={**IVR_PUSH, "calllogid": "X-1"}, headers=HOOK
    )

    assert sorted(e["source"] for e in entries(client, auth)) == ["ibizfone", "pbx"]


@pytest.mark.parametrize("token", [None, "wrong"])
def test_pbx_webhook_needs_the_secret(client, token, auth):
    headers = {"X-Webhook-Token": token} if token else {}

    response = client.post("/api/v1/webhooks/pbx", json=call_end(), headers=headers)

    assert response.status_code == 401
    assert response.content_type == "application/problem+json"
    assert response.get_json()["code"] == "unauthorized"
    assert entries(client, auth) == []


def test_webhook_secret_in_query_parameter(client):
    response = client.post(f"/api/v1/webhooks/pbx?token={WEBHOOK_SECRET}", json=call_end())

    assert response.status_code == 202


def test_webhooks_answer_401_without_a_configured_secret(make_app):
    client = make_app(CTI_WEBHOOK_SECRET=None).test_client()

    assert client.post("/api/v1/webhooks/pbx", json=call_end()).status_code == 401
    response = client.get("/api/v1/webhooks/ibizfone", query_string=IVR_PUSH)
    assert response.status_code == 401


def assert_invalid_data(response) -> None:
    """The IVR's answer to a push that is not stored: plain text it reads, never problem+json."""
    assert (response.status_code, response.mimetype, response.data) == (
        400,
        "text/plain",
        b"Invalid Data",
    )


def test_ibizfone_without_the_secret_answers_401_in_plain_text(client):
    response = client.get("/api/v1/webhooks/ibizfone", query_string={**IVR_PUSH, "token": "no"})

    assert response.status_code == 401
    assert response.mimetype == "text/plain"
    assert response.data == b"Unauthorized"


def test_ibizfone_push_as_form_body(client, auth):
    response = client.post(
        "/api/v1/webhooks/ibizfone", data=IVR_PUSH, query_string={"token": WEBHOOK_SECRET}
    )

    assert (response.status_code, response.mimetype, response.data) == (
        200,
        "text/plain",
        b"Accepted",
    )
    assert len(entries(client, auth)) == 1


@pytest.mark.parametrize("missing", ["calllogid", "callnumber", "date", "time", "callstatus"])
def test_ibizfone_push_without_a_required_field_is_invalid_data(client, auth, missing):
    push = {k: v for k, v in IVR_PUSH.items() if k != missing}

    response = client.get("/api/v1/webhooks/ibizfone", query_string=push, headers=HOOK)

    assert_invalid_data(response)
    assert entries(client, auth) == []


@pytest.mark.parametrize(
    "bad",
    [
        {"date": "05/07/2025"},
        {"date": "2025-02-30"},
        {"time": "25:00:00"},
        {"time": "10:15"},
        {"callstatus": "BUSY"},
        {"callduration": "1:75:00"},
        {"ivrduration": "-5"},
        {"callduration": "abc"},
        {"calllogid": "x" * 200},
        {"callnumber": "\x00"},
    ],
)
def test_malformed_ibizfone_push_is_invalid_data_never_problem_json(client, bad):
    response = client.get(
        "/api/v1/webhooks/ibizfone", query_string={**IVR_PUSH, **bad}, headers=HOOK
    )

    assert_invalid_data(response)


@pytest.mark.parametrize("body", [b"\x8fz\x15\x7f not json", b"[1, 2]", b'"text"'])
def test_an_ibizfone_post_whose_json_body_is_no_object_is_invalid_data(client, auth, body):
    """The query string alone would be a whole push: a JSON body beside it that is no JSON
    object is malformed, not silently dropped."""
    response = client.post(
        "/api/v1/webhooks/ibizfone",
        query_string=IVR_PUSH,
        data=body,
        content_type="application/json",
        headers=HOOK,
    )

    assert_invalid_data(response)
    assert entries(client, auth) == []


def test_an_ibizfone_post_of_the_query_string_and_an_empty_json_body_is_accepted(client, auth):
    response = client.post(
        "/api/v1/webhooks/ibizfone",
        query_string=IVR_PUSH,
        data=b"",
        content_type="application/json",
        headers=HOOK,
    )

    assert (response.status_code, response.data) == (200, b"Accepted")
    assert len(entries(client, auth)) == 1


def test_ibizfone_body_too_large_is_invalid_data(client, auth):
    response = client.post(
        "/api/v1/webhooks/ibizfone",
        data={**IVR_PUSH, "department": "x" * 70_000},
        headers=HOOK,
    )

    assert_invalid_data(response)
    assert entries(client, auth) == []


@pytest.mark.parametrize(
    "event",
    [
        {"event": "call:answer", "id": "a"},
        {"event": "call:start", "id": "a"},
        {"event": "agent:checkin", "user_id": 101},
        {"event": "queue:join", "user_id": 101, "queues": [1, 2]},
        call_end(type="internal"),
        call_end(type="fax"),
        call_end(type="conf"),
    ],
)
def test_other_pbx_events_are_accepted_and_ignored(client, auth, event):
    response = client.post("/api/v1/webhooks/pbx", json=event, headers=HOOK)

    assert response.status_code == 202
    assert response.get_json() == {"accepted": True}
    assert entries(client, auth) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({k: v for k, v in call_end().items() if k != "id"}, "id"),
        ({k: v for k, v in call_end().items() if k != "ts"}, "ts"),
        ({k: v for k, v in call_end().items() if k != "type"}, "type"),
        (call_end(ts="yesterday"), "ts"),
        (call_end(durationms=-1), "durationms"),
        (call_end(billms="lots"), "billms"),
        (call_end(dst_user_id={"a": 1}), "dst_user_id"),
        (call_end(id="\n"), "id"),
        ({"id": "no-event"}, "event"),
    ],
)
def test_malformed_pbx_event_is_a_validation_error(client, auth, body, field):
    response = client.post("/api/v1/webhooks/pbx", json=body, headers=HOOK)

    assert response.status_code == 422
    problem = response.get_json()
    assert problem["code"] == "validation_error"
    assert field in problem["errors"]
    assert entries(client, auth) == []


@pytest.mark.parametrize(
    "raw",
    [b"", b"not json", b"[1, 2]", b'"call:end"', b"null", b'{"event": 5}', b"\xff\xfe"],
)
def test_pbx_body_that_is_not_an_event_is_a_validation_error(client, raw):
    response = client.post(
        "/api/v1/webhooks/pbx", data=raw, headers={**HOOK, "Content-Type": "application/json"}
    )

    assert response.status_code == 422
    assert response.get_json()["code"] == "validation_error"


def test_call_ring_stores_a_screen_pop_event_and_warms_the_cache(app, client, upstream):
    ring = {
        "event": "call:ring",
        "id": "ring-1",
        "call_id": "call-1",
        "ts": 1751710332,
        "type": "inbound",
        "cid_num": "0721234567",
        "cid_name": "JAMES",
        "dst_user_id": 101,
    }

    before = time.time()
    response = client.post("/api/v1/webhooks/pbx", json=ring, headers=HOOK)

    assert response.status_code == 202
    store = app.extensions["cti"].store
    (event,) = store.events.after(0, agent="6001")
    assert event.kind == "call:ring"
    received_at = event.payload.pop("received_at")  # the webhook's arrival, for ring-to-pop
    assert before <= received_at <= event.created_at
    assert event.payload == {
        "id": "ring-1",
        "call_id": "call-1",
        "agent": "6001",
        "phone": "+27721234567",
        "cid_name": "JAMES",
        "ts": 1751710332,
    }
    wait_until(
        lambda: any("/calls/record" in c.request.url for c in upstream.calls),
        3,
        "the ring did not warm the caller lookup",
        interval=0.02,
    )
    lookup = app.extensions["cti"].lookup
    from middleware.numbers import parse

    wait_until(  # the warmed entry serves the next lookup from the cache
        lambda: lookup.lookup_phone(parse("0721234567", "ZA")).cached,
        3,
        "the warmed entry to serve a lookup from the cache",
        interval=0.02,
    )


def test_a_ring_is_one_commit_its_leg_its_board_leg_and_its_screen_pop(app, client):
    """The board's leg and the pop's event ride the journal's transaction of the leg (SQL)."""
    from sqlalchemy import Engine
    from sqlalchemy import event as sa_event

    ring = {
        "event": "call:ring",
        "id": "ring-2",
        "call_id": "call-2",
        "ts": int(time.time()),
        "type": "inbound",
        "cid_num": "0721234567",
        "dst_user_id": 101,
    }
    commits = []

    def counted(conn):
        commits.append(conn)

    sa_event.listen(Engine, "commit", counted)
    try:
        response = client.post("/api/v1/webhooks/pbx", json=ring, headers=HOOK)
    finally:
        sa_event.remove(Engine, "commit", counted)

    assert response.status_code == 202
    assert len(commits) == 1
    store = app.extensions["cti"].store
    assert [e.kind for e in store.events.after(0)] == ["call:ring", "board"]
    (entry,) = store.journal.list(limit=5)
    assert (entry.key, entry.legs[0]["id"]) == ("call-2", "ring-2")
    board = client.get("/api/v1/board", headers={"X-API-Key": API_KEY}).get_json()
    (agent,) = [a for a in board["agents"] if a["extension"] == "6001"]
    assert (agent["call"]["call_id"], agent["call"]["state"]) == ("call-2", "ringing")


def test_call_ring_agent_comes_from_the_device_or_the_dialed_extension(app, client):
    store = app.extensions["cti"].store
    client.post(
        "/api/v1/webhooks/pbx",
        json={"event": "call:ring", "id": "r1", "cid_num": "x", "dst_device_id": "202"},
        headers=HOOK,
    )
    client.post(
        "/api/v1/webhooks/pbx",
        json={"event": "call:ring", "id": "r2", "cid_num": "x", "dst_num": "6010"},
        headers=HOOK,
    )

    assert [e.agent for e in store.events.after(0)] == ["6002", "6010"]


def test_event_ids_increase_across_store_connections(tmp_path):
    path = str(tmp_path / "events.sqlite3")
    first, second = SqlStore(path), SqlStore(path)

    ids = [first.events.add("call:ring", "6001", {}), second.events.add("call:ring", "6001", {})]

    assert ids[0] < ids[1]
    assert first.events.last_id() == ids[1]
    assert [e.id for e in second.events.after(ids[0])] == [ids[1]]
