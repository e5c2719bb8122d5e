"""Contract section 4, call journal: a cc_agent call of many legs is one call log, made when its
legs have all ended and settled (``CTI_JOURNAL_SETTLE_SECONDS``), from the legs' own rules."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import insert

from devtools.waiting import wait_until
from middleware.directory import Agent, AgentDirectory
from middleware.journal.call_logs import pbx_call, pbx_leg_fields
from middleware.store import CallState, LegEvent
from middleware.store.sql import SqlStore

from .conftest import CRM_KEY
from .fakeserver import Answer, FakeServer
from .journal_fakes import CRM_ENV, HOOK, crm_knows, crm_logs, deliver, entries, sent_logs
from .journal_versions import old_database

T0 = 1751710000  # 2025-07-05 10:06:40 UTC: the caller reaches the queue
AGENTS = AgentDirectory(
    [
        Agent(
            extension=f"60{n:02d}",
            user_id=str(100 + n),
            device_id=None,
            first_name=f"Agent{n}",
            last_name="Queue",
            email=f"agent{n}@example.com",
        )
        for n in range(1, 6)
    ]
)
AGENTS_CSV = "extension,user_id,device_id,first_name,last_name,email\n" + "".join(
    f"60{n:02d},{100 + n},,Agent{n},Queue,agent{n}@example.com\n" for n in range(1, 6)
)


def leg_events(leg: int, *, rang_at=T0, answered_ms=0, ended_at=T0 + 30, kind="queue", **extra):
    """The ring, answer (if it talked) and end of one leg of call ``q``: the agent 10n."""
    common = {"call_id": "q", "type": kind, "cid_num": "0721234567", "dst_num": "27215550000"}
    user = {"src_user_id" if kind == "outbound" else "dst_user_id": str(100 + leg)}
    ident = {"id": f"q-{leg}" if leg > 1 else "q"}
    events = [{"event": "call:ring", "ts": rang_at, **common, **user, **ident}]
    if answered_ms:
        events.append({"event": "call:answer", "ts": rang_at + 5, **common, **user, **ident})
    events.append(
        {
            "event": "call:end",
            "ts": ended_at,
            "durationms": (ended_at - rang_at) * 1000,
            "billms": answered_ms,
            **common,
            **user,
            **ident,
            **extra,
        }
    )
    return events


def stored(events) -> list[LegEvent]:
    return [
        LegEvent(e["id"], e["event"], pbx_leg_fields(e), at=float(n)) for n, e in enumerate(events)
    ]


def call_of(events):
    return pbx_call(stored(events), AGENTS, "ZA")


# the mapping, one test per case -------------------------------------------------------------------


def test_queue_call_rung_to_five_answered_by_the_third_is_one_inbound_log_for_that_agent():
    events = []
    for leg in range(1, 6):
        if leg == 3:
            events += leg_events(3, answered_ms=125_000, ended_at=T0 + 135)
        else:
            events += leg_events(leg, ended_at=T0 + 5)

    call = call_of(events)

    assert call.ended
    assert call.record.call_type == "Inbound"
    assert call.agent == "6003"
    assert call.record.agent.email == "agent3@example.com"
    assert call.record.talk_seconds == 125
    assert call.record.total_seconds == 135
    assert call.record.start.timestamp() == T0
    assert call.legs == [
        {"id": "q", "agent": "6001", "billms": 0},
        {"id": "q-2", "agent": "6002", "billms": 0},
        {"id": "q-3", "agent": "6003", "billms": 125_000},
        {"id": "q-4", "agent": "6004", "billms": 0},
        {"id": "q-5", "agent": "6005", "billms": 0},
    ]


def test_queue_call_nobody_answered_is_one_missed_log_with_no_agent():
    call = call_of([e for leg in range(1, 6) for e in leg_events(leg)])

    assert call.ended
    assert (call.record.call_type, call.record.direction) == ("Missed", "Inbound")
    assert call.agent is None and call.record.agent is None
    assert call.record.talk_seconds == 0


def test_call_rung_to_a_single_agent_and_missed_names_that_agent():
    call = call_of(leg_events(2, kind="inbound"))

    assert call.record.call_type == "Missed"
    assert call.agent == "6002"
    assert call.record.agent.email == "agent2@example.com"


def test_outbound_call_answered_is_one_outbound_log_for_the_calling_agent():
    call = call_of(
        leg_events(4, kind="outbound", answered_ms=60_000, ended_at=T0 + 70, dst_num="0827654321")
    )

    assert (call.record.call_type, call.record.direction) == ("Outbound", "Outbound")
    assert call.agent == "6004"
    assert call.record.number == "+27827654321"
    assert call.record.talk_seconds == 60


def test_transfer_two_answered_legs_the_longest_talk_wins():
    first = leg_events(1, answered_ms=40_000, ended_at=T0 + 50)
    second = leg_events(2, rang_at=T0 + 45, answered_ms=200_000, ended_at=T0 + 250)

    call = call_of(first + second)

    assert call.record.call_type == "Inbound"
    assert call.agent == "6002"
    assert call.record.talk_seconds == 200
    assert call.record.total_seconds == 205  # the longest leg: 45 s in, 205 s long
    assert call.record.start.timestamp() == T0  # the earliest leg's start


def test_the_call_ends_when_its_last_leg_ends_not_its_longest_leg_after_the_first_start():
    first = leg_events(1, answered_ms=40_000, ended_at=T0 + 50)
    second = leg_events(2, rang_at=T0 + 45, answered_ms=200_000, ended_at=T0 + 250)

    call = call_of(first + second)

    assert call.record.start.timestamp() == T0
    assert call.record.total_seconds == 205  # DurationTimespan: the longest leg
    assert call.record.end.timestamp() == T0 + 250  # ``ts`` is the end of the call: the last one


def test_a_leg_that_never_ended_leaves_the_call_ending_at_the_latest_end_reported():
    first = leg_events(1, ended_at=T0 + 30)  # 30 s
    second = leg_events(2, rang_at=T0 + 20, ended_at=T0 + 60)  # 40 s, the longest, ends last
    third = leg_events(3, rang_at=T0 + 50)[:1]  # rang, then nothing (the 4-hour cut-off)

    call = call_of(first + second + third)

    assert not call.ended
    assert (call.record.start.timestamp(), call.record.total_seconds) == (T0, 40)
    assert call.record.end.timestamp() == T0 + 60


def test_a_call_none_of_whose_legs_ended_ends_its_duration_after_its_start():
    call = call_of(leg_events(1)[:1] + leg_events(2, rang_at=T0 + 10, answered_ms=5_000)[:2])

    assert not call.ended
    assert call.record.start.timestamp() == T0
    assert call.record.end == call.record.start + timedelta(seconds=call.record.total_seconds)


def test_legs_out_of_order_end_before_ring_give_the_same_call():
    events = leg_events(1) + leg_events(2, answered_ms=20_000, ended_at=T0 + 40)
    in_order = call_of(events)

    backwards = call_of(list(reversed(events)))

    assert backwards == in_order
    assert backwards.ended and backwards.agent == "6002"


def test_the_same_leg_event_twice_counts_once():
    events = leg_events(1) + leg_events(2, answered_ms=20_000, ended_at=T0 + 40)

    twice = call_of(events + events)

    assert twice == call_of(events)
    assert len(twice.legs) == 2


def test_a_leg_that_has_not_ended_keeps_the_call_open():
    call = call_of(leg_events(1) + leg_events(2)[:1])

    assert not call.ended
    assert call.record.call_type == "Missed"


# through the webhook and the store ---------------------------------------------------------------


@pytest.fixture
def legs_app(make_app, tmp_path, upstream):
    crm_knows(upstream)
    crm_logs(upstream)
    path = tmp_path / "agents.csv"
    path.write_text(AGENTS_CSV)

    def factory(**env):
        settings = {**CRM_ENV, "CTI_JOURNAL_SETTLE_SECONDS": "5", **env}
        return make_app(**settings, CTI_AGENTS_FILE=str(path))

    return factory


def post(client, events):
    for event in events:
        response = client.post("/api/v1/webhooks/pbx", json=event, headers=HOOK)
        assert response.status_code == 202, response.get_json()
        assert response.get_json() == {"accepted": True}


def queue_call(answered_by=3):
    events = []
    for leg in range(1, 6):
        if leg == answered_by:
            events += leg_events(leg, answered_ms=125_000, ended_at=T0 + 135)
        else:
            events += leg_events(leg, ended_at=T0 + 5)
    return events


def test_five_leg_queue_call_is_one_entry_pending_until_settled_then_one_log(
    legs_app, upstream, auth
):
    app = legs_app()
    client = app.test_client()
    post(client, queue_call())

    (entry,) = entries(client, auth)
    assert (entry["source"], entry["key"], entry["status"]) == ("pbx", "q", "pending")
    assert [leg["id"] for leg in entry["legs"]] == ["q", "q-2", "q-3", "q-4", "q-5"]
    assert entry["legs"][2] == {"id": "q-3", "agent": "6003", "billms": 125000}
    assert deliver(app, later=4.5)["delivered"] == 0  # settling
    assert deliver(app, later=5.5)["delivered"] == 1

    (log,) = sent_logs(upstream)
    assert (log["CallType"], log["AgentEmail"], log["Duration"]) == (
        "Inbound",
        "agent3@example.com",
        "00:02:05",
    )
    assert log["DurationTimespan"] == "00:02:15"
    assert entries(client, auth)[0]["status"] == "delivered"
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'cti_journal_entries{status="delivered"} 1.0' in metrics


def test_a_call_of_two_legs_logs_its_end_at_the_last_legs_ts(legs_app, upstream):
    app = legs_app(CTI_TIMEZONE="Africa/Johannesburg", CTI_JOURNAL_SETTLE_SECONDS="0")
    common = {"event": "call:end", "call_id": "C", "type": "queue", "cid_num": "0721370077"}
    post(
        app.test_client(),
        [  # 2025-12-06 07:45:40 to 07:46:40 in Johannesburg, then 07:46:40 to 07:47:10
            {
                **common,
                "id": "C",
                "ts": 1765000000,
                "dst_user_id": 101,
                "durationms": 60000,
                "billms": 0,
            },
            {
                **common,
                "id": "L2",
                "ts": 1765000030,
                "dst_user_id": 102,
                "durationms": 30000,
                "billms": 25000,
            },
        ],
    )

    assert deliver(app)["delivered"] == 1

    (log,) = sent_logs(upstream)
    assert (log["CallType"], log["AgentEmail"], log["Duration"]) == (
        "Inbound",
        "agent2@example.com",
        "00:00:25",
    )
    assert log["DateTime"] == "06-12-25 07:45:40"  # the earliest leg start
    assert log["CallStartTimeLocal"] == "07:45:40"
    assert log["DurationTimespan"] == "00:01:00"  # the longest leg
    assert log["CallEndTimeLocal"] == "07:47:10"  # the latest leg's ts, not start + 60 s


def test_each_leg_event_is_on_disk_before_its_202_and_stored_once(legs_app, tmp_path, auth):
    client = legs_app().test_client()
    ring, answer, end = leg_events(1, answered_ms=10_000)
    other = sqlite3.connect(tmp_path / "cti.sqlite3")  # another connection, as another process
    try:
        for event, seen in ((ring, 1), (ring, 1), (answer, 2), (end, 3), (end, 3)):
            post(client, [event])
            rows = other.execute("SELECT leg, event FROM journal_legs ORDER BY event").fetchall()
            assert len(rows) == seen
        assert sorted(rows) == [("q", "call:answer"), ("q", "call:end"), ("q", "call:ring")]
    finally:
        other.close()
    (entry,) = entries(client, auth)
    assert entry["legs"] == [{"id": "q", "agent": "6001", "billms": 10000}]


def test_a_call_with_a_leg_still_ringing_waits_four_hours(legs_app, upstream, auth):
    app = legs_app()
    client = app.test_client()
    post(client, leg_events(1) + leg_events(2)[:1])  # leg 2 rang and never ended

    assert deliver(app, later=3600)["delivered"] == 0
    assert entries(client, auth, status="pending")[0]["key"] == "q"
    assert deliver(app, later=4 * 3600 + 1)["delivered"] == 1
    (log,) = sent_logs(upstream)
    assert log["CallType"] == "Missed"
    assert log["AgentEmail"] == ""  # two agents rang


def test_a_leg_event_after_the_log_is_stored_and_sends_nothing_twice(legs_app, upstream, auth):
    app = legs_app(CTI_JOURNAL_SETTLE_SECONDS="0")
    client = app.test_client()
    post(client, leg_events(1, kind="inbound"))
    assert deliver(app)["delivered"] == 1

    post(client, leg_events(1, kind="inbound") + leg_events(2, kind="inbound"))
    assert deliver(app, later=5 * 3600)["delivered"] == 0

    assert len(sent_logs(upstream)) == 1
    (entry,) = entries(client, auth)
    assert entry["status"] == "delivered"


def test_journal_lists_the_calls_naming_an_agent(legs_app, auth):
    app = legs_app(CTI_JOURNAL_SETTLE_SECONDS="0")
    client = app.test_client()
    post(client, queue_call(answered_by=3))
    post(client, [{**e, "call_id": "other", "id": f"o-{e['id']}"} for e in queue_call(4)])
    ivr = {
        "calllogid": "IVR-1",
        "callnumber": "0721234567",
        "date": "2025-07-05",
        "time": "10:15:22",
        "agentnumber": "6003",
        "callstatus": "ANSWER",
    }
    assert client.get("/api/v1/webhooks/ibizfone", query_string=ivr, headers=HOOK).status == (
        "200 OK"
    )

    named = entries(client, auth, agent="6003")
    assert [(e["source"], e["key"]) for e in named] == [("ibizfone", "IVR-1"), ("pbx", "q")]
    assert named[0]["legs"] == []
    assert [e["key"] for e in entries(client, auth, agent="6004")] == ["other"]
    assert entries(client, auth, agent="6002") == []  # rung, but the log names another agent
    assert len(entries(client, auth)) == 3
    bad = client.get("/api/v1/journal", query_string={"agent": "a b"}, headers=auth)
    assert bad.status_code == 422


def test_settle_window_in_real_time(make_app, tmp_path):
    """Acceptance 4: not sent before the window after the last leg ended, sent within it + 3 s."""
    sent_at: list[float] = []
    lock = threading.Lock()

    def crm(seen):
        if seen.path == "/calls/log":
            with lock:
                sent_at.append(time.time())
            return Answer(200, {"status": True})
        return Answer(200, {"status": False})

    with FakeServer(crm) as fake:
        app = make_app(
            CTI_CRM="switchtransact",
            CTI_CRM_URL=fake.url,
            CTI_CRM_API_KEY=CRM_KEY,
            CTI_JOURNAL_SETTLE_SECONDS="2",
        )
        app.config["JOURNAL_BACKGROUND"] = True
        client = app.test_client()
        try:
            events = queue_call()
            ends = [e for e in events if e["event"] == "call:end"]
            post(client, [e for e in events if e["event"] != "call:end"] + ends[:-1])
            time.sleep(1)  # an end, a second, the last end: the window counts from the last
            last_end = time.time()
            post(client, ends[-1:])
            wait_until(lambda: sent_at, 8, "not sent within the window + 3 s", interval=0.02)
        finally:
            app.extensions["cti"].deliverer.stop()

    assert len(sent_at) == 1, "not sent within the window + 3 s"
    waited = sent_at[0] - last_end
    print(f"sent {waited:.2f} s after the last leg ended (window 2 s)")
    assert 2 <= waited <= 2 + 3


# an existing database is migrated -----------------------------------------------------------------


def _version_1_database(database: str) -> None:
    """The journal as schema version 1 made it, with one delivered entry."""
    with old_database(database, 1) as (conn, journal):
        conn.execute(
            insert(journal).values(
                source="pbx",
                key="old-call",
                status="delivered",
                attempts=1,
                next_attempt_at=1.0,
                created_at=1.0,
                delivered_at=2.0,
                call_log='{"CallType": "Inbound"}',
            )
        )


def named_6001(events, first_at) -> CallState:
    return CallState(
        call_log={"CallType": "Missed"},
        agent="6001",
        legs=[{"id": e.leg, "agent": "6001", "billms": 0} for e in events],
        due_at=first_at,
        recording_url=None,
    )


def test_a_version_1_database_is_migrated_and_keeps_its_entries(sql_database):
    _version_1_database(sql_database)

    store = SqlStore(sql_database)
    try:
        (old,) = store.journal.list()
        assert (old.key, old.status, old.agent, old.legs) == ("old-call", "delivered", None, ())
        entry, created = store.journal.add_leg(
            "new-call", "new-call", "call:end", {"type": "inbound"}, summarise=named_6001
        )
        assert created and entry.agent == "6001"
        assert [e.key for e in store.journal.list(agent="6001")] == ["new-call"]
    finally:
        store.close()
