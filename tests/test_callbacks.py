"""Contract section 4, callbacks: a call logged as Missed opens one callback per number; a call
placed to the number or answered with it, or a dismissal, closes it; the API lists, assigns and
dismisses them, each credential as section 2 says; every change is a ``callback`` event."""

from __future__ import annotations

import json
import time
from datetime import datetime

import pytest

from devtools.waiting import wait_until

from .conftest import API_KEY, TOKEN_SECRET
from .journal_fakes import CRM_ENV, HOOK, agents_file, crm_knows, crm_logs, deliver, entries
from .test_credentials_table import token
from .test_journal_legs import leg_events

NUMBER = "+27721234567"
FULL = {"X-API-Key": API_KEY}
SUPERVISOR = {"X-API-Key": token("Thandi", scope="supervisor")}
AGENT_6001 = {"X-API-Key": token("6001")}
AGENT_6002 = {"X-API-Key": token("6002")}


@pytest.fixture
def cb_app(make_app, tmp_path, upstream):
    """Journaling to a fake CRM that knows James May at +27721234567; agents 6001 and 6002
    (user ids 101, 102); tokens on; a cc_agent call settles 5 s after its last leg ended."""
    crm_knows(upstream)
    crm_logs(upstream)

    def factory(**env):
        settings = {
            **CRM_ENV,
            "CTI_TOKEN_SECRET": TOKEN_SECRET,
            "CTI_AGENTS_FILE": agents_file(tmp_path),
            "CTI_JOURNAL_SETTLE_SECONDS": "5",
            **env,
        }
        return make_app(**settings)

    return factory


def post(client, events):
    for event in events:
        answer = client.post("/api/v1/webhooks/pbx", json=event, headers=HOOK)
        assert answer.status_code == 202, answer.get_json()


def missed_call(call_id: str, cid_num: str = "0721234567", legs=(1, 2)) -> list[dict]:
    """A queue call that rang agents 6001 and 6002 (user ids 101, 102) and nobody answered."""
    events = []
    for leg in legs:
        for event in leg_events(leg, kind="queue"):
            ident = call_id if event["id"] == "q" else f"{call_id}-{leg}"
            events.append({**event, "call_id": call_id, "id": ident, "cid_num": cid_num})
    return events


def answered_call(call_id: str, cid_num: str = "0721234567", leg: int = 1) -> list[dict]:
    return [
        {**event, "call_id": call_id, "id": call_id, "cid_num": cid_num}
        for event in leg_events(leg, kind="inbound", answered_ms=60_000, ended_at=1751710100)
    ]


def ivr(client, calllogid: str, callstatus: str, number: str = "0721234567", **more) -> None:
    push = {
        "calllogid": calllogid,
        "callnumber": number,
        "date": "2025-07-05",
        "time": "10:15:22",
        "callstatus": callstatus,
        **more,
    }
    answer = client.get("/api/v1/webhooks/ibizfone", query_string=push, headers=HOOK)
    assert (answer.status_code, answer.get_data(as_text=True)) == (200, "Accepted")


def listed(client, headers=FULL, **query) -> list[dict]:
    answer = client.get("/api/v1/callbacks", query_string=query, headers=headers)
    assert answer.status_code == 200, answer.get_json()
    assert answer.headers["Cache-Control"] == "no-store"
    return answer.get_json()["callbacks"]


def at(iso: str) -> datetime:
    assert iso.endswith("Z")
    return datetime.fromisoformat(iso)


def act(client, callback_id, action: str, headers=FULL, **body):
    return client.post(
        f"/api/v1/callbacks/{callback_id}/{action}",
        json=body if action == "assign" else None,
        headers=headers,
    )


def callback_events(app, after: int = 0, agent: str | None = None) -> list:
    found = app.extensions["cti"].store.events.after(after, agent=agent, limit=1000)
    return [event for event in found if event.kind == "callback"]


# a missed call opens a callback, a second one counts on it ---------------------------------------


def test_a_missed_queue_call_opens_a_callback_once_its_legs_have_settled(cb_app):
    app = cb_app(CTI_JOURNAL_SETTLE_SECONDS="1")
    client = app.test_client()
    post(client, missed_call("m1"))
    posted = time.time()

    assert listed(client) == []  # still settling: a late leg could yet answer it
    found = wait_until(lambda: listed(client), 5, "a callback once the legs settled")
    assert time.time() - posted >= 0.9, "opened before the settle window ended"

    (callback,) = found
    assert set(callback) == {
        "id",
        "number",
        "name",
        "status",
        "agent",
        "missed",
        "first_missed_at",
        "last_missed_at",
        "done_at",
        "done_by",
        "done_how",
    }
    assert callback["number"] == NUMBER
    assert (callback["status"], callback["agent"], callback["missed"]) == ("open", None, 1)
    assert callback["first_missed_at"] == callback["last_missed_at"]
    assert abs(at(callback["first_missed_at"]).timestamp() - posted) < 3
    assert (callback["done_at"], callback["done_by"], callback["done_how"]) == (None, None, None)
    assert callback["name"] is None  # the CRM has not been asked yet

    assert deliver(app)["delivered"] == 1  # the log's Name is the CRM's contact
    assert listed(client)[0]["name"] == "James May"
    (entry,) = entries(client, FULL)
    assert entry["call_log"]["CallType"] == "Missed"


def test_a_second_miss_of_the_number_in_another_spelling_counts_on_the_same_callback(cb_app):
    app = cb_app()
    client = app.test_client()
    post(client, missed_call("m1", "0721234567"))
    deliver(app, later=5.5)
    (first,) = listed(client)
    post(client, missed_call("m2", "+27 72 123 4567"))
    assert deliver(app, later=4)["delivered"] == 0  # settling
    assert listed(client)[0]["missed"] == 1

    deliver(app, later=5.5)

    (second,) = listed(client)
    assert (second["id"], second["number"], second["missed"]) == (first["id"], NUMBER, 2)
    assert second["first_missed_at"] == first["first_missed_at"]
    assert at(second["last_missed_at"]) > at(first["last_missed_at"])
    assert second["name"] == "James May"


def test_ibizfone_missed_and_dropped_calls_open_callbacks_and_an_answer_closes_one(cb_app):
    app = cb_app()
    client = app.test_client()
    ivr(client, "IVR-1", "MISSED", "0721234567")
    ivr(client, "IVR-2", "dropped", "0829876543")
    ivr(client, "IVR-3", "DROPPED", "+27721234567")

    opened = listed(client)
    assert [(c["number"], c["missed"], c["status"]) for c in opened] == [
        (NUMBER, 2, "open"),
        ("+27829876543", 1, "open"),
    ]

    ivr(client, "IVR-4", "ANSWER", "0721234567", agentnumber="6002")

    done = listed(client, status="done")
    assert [(c["number"], c["done_how"], c["done_by"]) for c in done] == [
        (NUMBER, "answered", "6002")
    ]
    assert at(done[0]["done_at"]) >= at(done[0]["last_missed_at"])
    assert [c["number"] for c in listed(client, status="open")] == ["+27829876543"]


def test_an_ibizfone_miss_names_its_callback_once_its_log_is_delivered(cb_app):
    app = cb_app()
    client = app.test_client()
    ivr(client, "IVR-1", "MISSED", "0721234567")  # James May, in the CRM
    ivr(client, "IVR-2", "DROPPED", "0829876543")  # nobody the CRM knows
    assert [c["name"] for c in listed(client)] == [None, None]  # the CRM has not been asked yet

    assert deliver(app)["delivered"] == 2

    assert [(c["number"], c["name"]) for c in listed(client)] == [
        (NUMBER, "James May"),
        ("+27829876543", None),
    ]
    delivered = {e["key"]: e["call_log"]["Name"] for e in entries(client, FULL)}
    assert delivered == {"IVR-1": "James May", "IVR-2": ""}


def test_an_assigned_callback_takes_the_name_of_its_miss_delivered_after(cb_app):
    app = cb_app(CTI_JOURNAL_SETTLE_SECONDS="0")
    client = app.test_client()
    post(client, missed_call("m1"))
    (opened,) = listed(client)
    assert act(client, opened["id"], "assign", agent="6001").status_code == 200

    assert deliver(app)["delivered"] == 1

    (named,) = listed(client, status="assigned")
    assert (named["id"], named["agent"], named["name"]) == (opened["id"], "6001", "James May")
    assert callback_events(app)[-1].payload["name"] == "James May"  # the console sees it too


def test_an_answered_inbound_call_of_the_number_closes_its_callback(cb_app):
    app = cb_app(CTI_JOURNAL_SETTLE_SECONDS="0")
    client = app.test_client()
    post(client, missed_call("m1"))
    (opened,) = listed(client)

    post(client, answered_call("a1", "27721234567", leg=1))  # answered by 6001

    (closed,) = listed(client)
    assert closed["id"] == opened["id"]
    assert (closed["status"], closed["done_how"], closed["done_by"]) == ("done", "answered", "6001")
    assert closed["done_at"] is not None

    post(client, missed_call("m2"))  # a new miss after that: a new callback
    new, old = listed(client)
    assert (new["status"], new["missed"], old["id"]) == ("open", 1, opened["id"])
    assert new["id"] != opened["id"]


def test_an_answered_call_or_an_outbound_one_not_answered_opens_nothing(cb_app):
    app = cb_app(CTI_JOURNAL_SETTLE_SECONDS="0")
    client = app.test_client()
    post(client, answered_call("a1"))
    outbound = [
        {**event, "call_id": "o1", "id": "o1", "dst_num": "0721234567"}
        for event in leg_events(1, kind="outbound")
    ]
    post(client, outbound)
    post(client, missed_call("w1", cid_num="anonymous"))  # no number to call back
    assert len(entries(client, FULL)) == 3

    assert listed(client) == []


def test_a_click_to_call_placed_to_the_number_closes_its_callback(cb_app, upstream):
    app = cb_app(CTI_JOURNAL_SETTLE_SECONDS="0", CTI_DEDUPE_SECONDS="0")
    client = app.test_client()
    call = client.post("/api/v1/calls", json={"to": "0829876543", "agent": "6002"}, headers=FULL)
    assert call.status_code == 201  # no callback for that number: nothing to close
    ivr(client, "IVR-1", "MISSED", "0829876543")
    post(client, missed_call("m1"))

    call = client.post(
        "/api/v1/calls", json={"to": "072 123 4567", "agent": "6002"}, headers=AGENT_6002
    )

    assert call.status_code == 201, call.get_json()
    done, still_open = listed(client, status="done"), listed(client, status="open")
    assert [(c["number"], c["done_how"], c["done_by"]) for c in done] == [
        (NUMBER, "called", "6002")
    ]
    assert [c["number"] for c in still_open] == ["+27829876543"]


def test_the_sandbox_dialers_played_call_still_journals_after_closing_the_callback(cb_app):
    """The sandbox plays the placed call's ring and end through the journal: an answered
    Outbound log, which finds the callback done already."""
    app = cb_app(CTI_JOURNAL_SETTLE_SECONDS="0", CTI_DIALER="sandbox")
    client = app.test_client()
    ivr(client, "IVR-1", "MISSED")
    call = client.post("/api/v1/calls", json={"to": "0721234567", "agent": "6001"}, headers=FULL)
    assert call.status_code == 201

    def played():
        found = [entry for entry in entries(client, FULL) if entry["source"] == "pbx"]
        return found[0] if found and found[0]["legs"][0]["billms"] else None

    # rings in 0.5 s, ends 3 s later
    played = wait_until(played, 10, "the sandbox call journalled as played", interval=0.1)
    assert (played["source"], played["call_log"]["CallType"]) == ("pbx", "Outbound")

    (callback,) = listed(client)
    assert (callback["done_how"], callback["done_by"]) == ("called", "6001")


# assigning and dismissing -------------------------------------------------------------------------


def test_assign_rules_for_agents_and_supervisors(cb_app):
    app = cb_app()
    client = app.test_client()
    ivr(client, "IVR-1", "MISSED")
    (callback,) = listed(client)
    cid = callback["id"]

    taken = act(client, cid, "assign", AGENT_6001, agent="6001")
    assert taken.status_code == 200
    assert taken.headers["Cache-Control"] == "no-store"
    assert (taken.get_json()["status"], taken.get_json()["agent"]) == ("assigned", "6001")
    assert act(client, cid, "assign", AGENT_6001, agent="6001").status_code == 200  # again: same

    other = act(client, cid, "assign", AGENT_6001, agent="6002")
    assert (other.status_code, other.get_json()["code"]) == (403, "forbidden")
    stolen = act(client, cid, "assign", AGENT_6002, agent="6002")
    assert (stolen.status_code, stolen.get_json()["code"]) == (409, "conflict")
    assert stolen.content_type == "application/problem+json"
    assert act(client, cid, "assign", AGENT_6002, agent=None).status_code == 403

    moved = act(client, cid, "assign", SUPERVISOR, agent="6002")
    assert (moved.status_code, moved.get_json()["agent"]) == (200, "6002")
    reopened = act(client, cid, "assign", FULL, agent=None)
    assert reopened.get_json()["status"] == "open"
    assert reopened.get_json()["agent"] is None

    assert act(client, cid, "dismiss", SUPERVISOR).status_code == 200
    for headers, agent in ((AGENT_6001, "6001"), (SUPERVISOR, "6001"), (FULL, None)):
        late = act(client, cid, "assign", headers, agent=agent)
        assert (late.status_code, late.get_json()["code"]) == (409, "conflict")
    assert act(client, 999, "assign", SUPERVISOR, agent="6001").status_code == 404
    assert act(client, 2**70, "assign", SUPERVISOR, agent="6001").status_code == 404


@pytest.mark.parametrize(
    "body",
    [{}, {"agent": "a b"}, {"agent": 6001}, {"agent": "6001", "extra": 1}, {"agent": "x" * 65}],
)
def test_an_assignment_that_is_not_an_agent_or_null_is_a_validation_error(cb_app, body):
    client = cb_app().test_client()
    answer = client.post("/api/v1/callbacks/1/assign", json=body, headers=SUPERVISOR)
    assert (answer.status_code, answer.get_json()["code"]) == (422, "validation_error")


def test_dismiss_marks_it_done_once_and_only_for_a_supervisor_or_full_key(cb_app):
    app = cb_app()
    client = app.test_client()
    ivr(client, "IVR-1", "MISSED")
    ivr(client, "IVR-2", "MISSED", "0829876543")
    first, second = listed(client)

    assert act(client, first["id"], "dismiss", AGENT_6001).status_code == 403
    dismissed = act(client, first["id"], "dismiss", SUPERVISOR)
    assert dismissed.status_code == 200
    body = dismissed.get_json()
    assert (body["status"], body["done_how"], body["done_by"]) == ("done", "dismissed", None)
    assert at(body["done_at"]).timestamp() == pytest.approx(time.time(), abs=5)
    again = act(client, first["id"], "dismiss", FULL)
    assert (again.status_code, again.get_json()["code"]) == (409, "conflict")
    assert act(client, second["id"], "dismiss", FULL).status_code == 200
    missing = act(client, 12345, "dismiss", FULL)
    assert (missing.status_code, missing.get_json()["code"]) == (404, "not_found")


# listing -----------------------------------------------------------------------------------------


def four_callbacks(client) -> list[dict]:
    """A (dismissed last), B (assigned to 6001), C (open), D (dismissed first)."""
    for n, number in enumerate(("0721110001", "0721110002", "0721110003", "0721110004")):
        ivr(client, f"IVR-{n}", "MISSED", number)
    a, b, c, d = listed(client)
    assert act(client, b["id"], "assign", AGENT_6001, agent="6001").status_code == 200
    assert act(client, d["id"], "dismiss").status_code == 200
    assert act(client, a["id"], "dismiss").status_code == 200
    return [a, b, c, d]


def test_open_and_assigned_oldest_first_then_done_newest_first_with_filters(cb_app):
    client = cb_app().test_client()
    a, b, c, d = four_callbacks(client)
    ids = lambda found: [callback["id"] for callback in found]  # noqa: E731

    assert ids(listed(client)) == [b["id"], c["id"], a["id"], d["id"]]
    assert ids(listed(client, status="open")) == [c["id"]]
    assert ids(listed(client, status="assigned")) == [b["id"]]
    assert ids(listed(client, status="done")) == [a["id"], d["id"]]
    assert ids(listed(client, agent="6001")) == [b["id"]]
    assert listed(client, agent="6002") == []

    pages, cursor = [], None
    while True:
        query = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        answer = client.get("/api/v1/callbacks", query_string=query, headers=SUPERVISOR)
        body = answer.get_json()
        pages.append(ids(body["callbacks"]))
        cursor = body["next"]
        if cursor is None:
            break
    assert pages == [[b["id"]], [c["id"]], [a["id"]], [d["id"]]]
    done_pages = client.get("/api/v1/callbacks?status=done&limit=1", headers=FULL).get_json()
    follow = client.get(
        "/api/v1/callbacks",
        query_string={"status": "done", "cursor": done_pages["next"]},
        headers=FULL,
    ).get_json()
    assert (ids(follow["callbacks"]), follow["next"]) == ([d["id"]], None)


@pytest.mark.parametrize(
    "query",
    [
        "status=closed",
        "limit=0",
        "limit=1001",
        "cursor=abc",
        "cursor=nan:1",
        "cursor=1:",
        "cursor=%D9%A1",
        "agent=a%20b",
    ],
)
def test_a_listing_query_out_of_the_contract_is_a_validation_error(cb_app, query):
    client = cb_app().test_client()
    answer = client.get(f"/api/v1/callbacks?{query}", headers=FULL)
    assert (answer.status_code, answer.get_json()["code"]) == (422, "validation_error")


def test_an_agent_token_sees_the_open_callbacks_and_its_own_only(cb_app):
    client = cb_app().test_client()
    a, b, c, d = four_callbacks(client)
    assert act(client, a["id"], "assign", FULL, agent="6001").status_code == 409  # done

    mine = [callback["id"] for callback in listed(client, AGENT_6001)]
    assert mine == [b["id"], c["id"]]
    assert [callback["id"] for callback in listed(client, AGENT_6002)] == [c["id"]]
    assert [x["id"] for x in listed(client, AGENT_6001, agent="6001")] == [b["id"]]
    assert listed(client, AGENT_6002, status="assigned") == []
    refused = client.get("/api/v1/callbacks?agent=6001", headers=AGENT_6002)
    assert (refused.status_code, refused.get_json()["code"]) == (403, "forbidden")
    lookup = client.get("/api/v1/callbacks", headers={"X-API-Key": "nope"})
    assert lookup.status_code == 401


# live pages --------------------------------------------------------------------------------------


def test_every_change_is_a_callback_event_for_its_agent_or_for_every_agent(cb_app):
    app = cb_app()
    client = app.test_client()
    ivr(client, "IVR-1", "MISSED")
    ivr(client, "IVR-2", "MISSED", "+27 72 123 4567")
    (callback,) = listed(client)
    act(client, callback["id"], "assign", AGENT_6001, agent="6001")
    act(client, callback["id"], "assign", SUPERVISOR, agent="6002")
    act(client, callback["id"], "dismiss", SUPERVISOR)

    seen = [(e.agent, e.payload["status"], e.payload["missed"]) for e in callback_events(app)]
    assert seen == [
        ("*", "open", 1),
        ("*", "open", 2),
        ("*", "assigned", 2),  # taken: the other agents drop it
        ("6001", "assigned", 2),
        ("6001", "assigned", 2),  # reassigned: the agent it left, and the one it went to
        ("6002", "assigned", 2),
        ("6002", "done", 2),
    ]
    assert callback_events(app)[-1].payload == listed(client)[0]  # the callback as listed


def test_the_agents_stream_carries_callback_events_beside_screen_pops(cb_app):
    app = cb_app()
    client = app.test_client()
    ivr(client, "IVR-1", "MISSED")
    ivr(client, "IVR-2", "MISSED", "0829876543")
    first, second = listed(client)
    act(client, second["id"], "assign", AGENT_6002, agent="6002")

    def stream(agent: str) -> list[tuple[str, dict]]:
        answer = client.get(
            f"/api/v1/agents/{agent}/events", headers={**FULL, "Last-Event-ID": "0"}
        )
        messages = []
        for block in answer.get_data(as_text=True).split("\n\n"):
            lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
            if "event" in lines:
                messages.append((lines["event"], json.loads(lines["data"])))
        return messages

    for_6001 = stream("6001")
    assert {name for name, _ in for_6001} == {"callback"}
    assert {(data["id"], data["status"]) for _, data in for_6001} == {
        (first["id"], "open"),
        (second["id"], "open"),
        (second["id"], "assigned"),  # taken by another agent: 6001's page drops it
    }
    assert (second["id"], "assigned", "6002") in {
        (data["id"], data["status"], data["agent"]) for _, data in stream("6002")
    }
