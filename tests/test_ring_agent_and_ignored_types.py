"""Contract section 4, through the webhook: the screen pop goes to the agent of the ringing leg
(``dst_user_id`` of inbound and queue calls, ``src_user_id`` of outbound ones, as the journal and
the board read it), and a call event of another type (internal, fax, conf) is accepted and
ignored even without the fields a call log needs."""

from __future__ import annotations

import json

import pytest

from .conftest import API_KEY
from .journal_fakes import CRM_ENV, HOOK, call_end, crm_knows, crm_logs, deliver, sent_logs

KEY = {"X-API-Key": API_KEY}
WEBHOOK = "/api/v1/webhooks/pbx"


@pytest.fixture
def client(make_app, upstream):
    """An app whose agent directory is empty (no row for user id 101), journaling to a CRM that
    knows James and takes every call log."""
    crm_knows(upstream)
    crm_logs(upstream)
    return make_app(**CRM_ENV).test_client()


def post(client, event: dict) -> None:
    response = client.post(WEBHOOK, json=event, headers=HOOK)
    assert response.status_code == 202, response.get_json()
    assert response.get_json() == {"accepted": True}


def pops(client, agent: str) -> list[dict]:
    """The screen pops on ``agent``'s stream, from the first event on."""
    stream = client.get(
        f"/api/v1/agents/{agent}/events", headers={**KEY, "Last-Event-ID": "0"}, buffered=False
    )
    assert stream.status_code == 200
    found = []
    for chunk in stream.response:  # the test client's stream sends what is there and ends
        text = chunk.decode()
        if ": heartbeat" in text:  # everything stored was sent
            break
        if "event: screen-pop" in text:
            found.append(json.loads(text.split("data: ", 1)[1]))
    stream.close()
    return found


def ringing(client) -> dict[str, str]:
    """The board's ringing agents: extension to call id."""
    board = client.get("/api/v1/board", headers=KEY).get_json()
    return {
        a["extension"]: a["call"]["call_id"]
        for a in board["agents"]
        if a["call"] and a["call"]["state"] == "ringing"
    }


@pytest.mark.parametrize(
    ("leg", "agent"),
    [
        ({"type": "queue", "dst_num": "500", "dst_user_id": 101}, "101"),
        ({"type": "inbound", "dst_num": "500", "dst_user_id": "101"}, "101"),
        ({"type": "queue", "dst_num": "500", "dst_user_id": "0101"}, "101"),  # one spelling
        ({"type": "outbound", "dst_num": "0721234567", "src_user_id": 101}, "101"),
    ],
)
def test_the_screen_pop_goes_to_the_ringing_agent_not_a_short_dialed_number(client, leg, agent):
    ring = {"event": "call:ring", "id": "q-1", "call_id": "q-1", "cid_num": "0721234567", **leg}
    post(client, ring)
    # A ring that names no agent but a short dialed number: that extension's only pop.
    post(client, {"event": "call:ring", "id": "c-1", "cid_num": "0721234567", "dst_num": "500"})

    assert [(p["call_id"], p["agent"]) for p in pops(client, agent)] == [("q-1", agent)]
    assert [p["call_id"] for p in pops(client, "500")] == ["c-1"]
    assert ringing(client) == {agent: "q-1"}  # the pop's agent is the one the board shows
    (pop,) = pops(client, agent)
    assert (pop["found"], pop["phone"]) == (True, "+27721234567")


def test_a_call_end_of_another_type_needs_no_ts_and_is_ignored(client, upstream):
    post(client, {"event": "call:end", "id": "X", "type": "internal"})
    post(client, {"event": "call:end", "type": "fax"})  # nor an id
    post(client, {"event": "call:end", "id": "Y", "type": "conf", "ts": 1751710522})
    post(client, {"event": "call:ring", "id": "Z", "type": "internal"})
    post(client, {"event": "call:answer", "id": "Z", "type": "internal"})
    post(client, {"event": "call:end", "id": "Z", "type": "internal", "dst_user_id": 101})

    journal = client.get("/api/v1/journal", headers=KEY)
    assert journal.status_code == 200
    assert journal.get_json() == {"entries": [], "next": None}
    assert deliver(client.application)["delivered"] == 0
    assert sent_logs(upstream) == []
    assert ringing(client) == {}

    # A queue call beside them is journaled as before: one entry, one Inbound log for agent 101.
    post(client, call_end(type="queue", id="leg-q", dst_num="500", dst_user_id=101))
    (entry,) = client.get("/api/v1/journal", headers=KEY).get_json()["entries"]
    assert (entry["key"], entry["legs"]) == (
        "leg-q",
        [{"id": "leg-q", "agent": "101", "billms": 125000}],
    )
    assert deliver(client.application)["delivered"] == 1
    (log,) = sent_logs(upstream)
    assert log["CallType"] == "Inbound"


@pytest.mark.parametrize("kind", ["internal", "fax", "conf"])
def test_a_ring_of_another_type_pops_no_screen_and_asks_no_crm(client, upstream, kind):
    post(
        client,
        {
            "event": "call:ring",
            "id": "i-1",
            "type": kind,
            "cid_num": "0729990000",
            "dst_user_id": 101,
        },
    )
    # A ring of an inbound call after it: its pop is the stream's only one.
    post(
        client,
        {
            "event": "call:ring",
            "id": "in-1",
            "type": "inbound",
            "cid_num": "0721234567",
            "dst_user_id": 101,
        },
    )

    assert [p["call_id"] for p in pops(client, "101")] == ["in-1"]
    asked = [c.request.url for c in upstream.calls if "/calls/record" in c.request.url]
    assert not any("0729990000" in url or "27729990000" in url for url in asked)


@pytest.mark.parametrize("kind", ["inbound", "outbound", "queue"])
@pytest.mark.parametrize("missing", ["id", "ts"])
def test_a_call_end_of_a_logged_type_still_needs_id_and_ts(client, kind, missing):
    body = {k: v for k, v in call_end(type=kind).items() if k != missing}
    # Beside it, the same gap in an internal call is taken: only the three types need it.
    post(client, {**body, "type": "internal"})

    response = client.post(WEBHOOK, json=body, headers=HOOK)

    assert response.status_code == 422
    problem = response.get_json()
    assert problem["code"] == "validation_error"
    assert list(problem["errors"]) == [missing]
    assert client.get("/api/v1/journal", headers=KEY).get_json()["entries"] == []


@pytest.mark.parametrize("type_", [None, ""])
def test_a_call_end_without_a_type_is_still_refused(client, type_):
    body = {k: v for k, v in call_end().items() if k != "type"}
    if type_ is not None:
        body["type"] = type_
    # An internal end without ts is taken (so the refusal below is the missing type's).
    post(client, {**body, "type": "internal", "ts": None})

    response = client.post(WEBHOOK, json=body, headers=HOOK)

    assert response.status_code == 422
    assert list(response.get_json()["errors"]) == ["type"]
    assert client.get("/api/v1/journal", headers=KEY).get_json()["entries"] == []
