"""GET /api/v1/reports/calls (contract section 4, supervisor console): calls per day, hour or agent
of a range of days, counted by the database over every journal entry's call log, as JSON or CSV;
hand-counted call logs in Africa/Johannesburg, one of them across midnight."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, insert
from sqlalchemy.engine import Engine

from middleware.journal.call_logs import report_columns
from middleware.store.sql import SqlStore

from .journal_fakes import HOOK, deliver, journal_env
from .journal_versions import old_database

ZONE = "Africa/Johannesburg"
SAST = ZoneInfo(ZONE)
FIELDS = ["calls", "inbound", "outbound", "answered", "missed", "talk_seconds"]


def counts(calls=0, inbound=0, outbound=0, answered=0, missed=0, talk=0, average=0.0) -> dict:
    return {
        "calls": calls,
        "inbound": inbound,
        "outbound": outbound,
        "answered": answered,
        "missed": missed,
        "talk_seconds": talk,
        "average_talk_seconds": average,
    }


def epoch(day: str, clock: str) -> int:
    """Seconds since the epoch of a local (Johannesburg) day and time."""
    return int(datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=SAST).timestamp())


def ivr(call_id, day, clock, status, seconds, agent=None) -> dict:
    push = {
        "calllogid": call_id,
        "callnumber": "0721234567",
        "date": day,
        "time": clock,
        "callstatus": status,
        "ivrduration": 20,
        "callduration": seconds,
    }
    return push if agent is None else {**push, "agentnumber": agent}


def pbx_end(call_id, start: int, *, seconds: int, talk: int, outbound=False, user=101) -> dict:
    """The one leg of a cc_agent call that started at ``start``, lasted ``seconds`` and whose agent
    talked ``talk`` seconds."""
    event = {
        "event": "call:end",
        "id": call_id,
        "ts": start + seconds,
        "type": "outbound" if outbound else "inbound",
        "durationms": seconds * 1000,
        "billms": talk * 1000,
    }
    if outbound:
        return {**event, "src_user_id": user, "dst_num": "0829876543"}
    return {**event, "dst_user_id": user, "cid_num": "0721234567"}


# Hand-counted, in Johannesburg (UTC+2). 2025-07-06 has no call of its own: the call that started
# at 23:58 on the 5th and ended at 00:03 on the 6th counts on the 5th, at 23h.
EARLY = [
    ("ibizfone", ivr("a", "2025-07-05", "09:15:00", "ANSWER", 125, "6001")),
    ("ibizfone", ivr("b", "2025-07-05", "09:40:00", "MISSED", 0, "6001")),
    (
        "pbx",
        pbx_end("c", epoch("2025-07-05", "14:05:00"), seconds=70, talk=60, outbound=True, user=102),
    ),
]
LATE = [
    ("pbx", pbx_end("d", epoch("2025-07-05", "23:58:00"), seconds=300, talk=240)),
    (
        "pbx",
        pbx_end("e", epoch("2025-07-07", "10:00:00"), seconds=30, talk=0, outbound=True, user=102),
    ),
    ("ibizfone", ivr("f", "2025-07-07", "10:30:00", "DROPPED", 15)),  # no agent
    ("ibizfone", ivr("g", "2025-07-08", "08:00:00", "ANSWER", 99, "6001")),  # after the range
    ("ibizfone", ivr("h", "2025-07-04", "23:59:59", "ANSWER", 99, "6001")),  # before it
]
RANGE = {"from": "2025-07-05", "to": "2025-07-07"}


def store_calls(client, calls) -> None:
    for source, body in calls:
        path = "/api/v1/webhooks/" + source
        answer = client.post(path, json=body, headers=HOOK)
        assert answer.status_code in (200, 202), answer.get_data(as_text=True)


@pytest.fixture
def settings(upstream, tmp_path, sql_database):
    """Johannesburg time, on SQLite and PostgreSQL."""
    return {**journal_env(upstream, tmp_path), "CTI_TIMEZONE": ZONE, "CTI_DATABASE": sql_database}


@pytest.fixture
def calls(app):
    """The calls stored: some entries delivered, the rest pending."""
    client = app.test_client()
    store_calls(client, EARLY)
    deliver(app)
    store_calls(client, LATE)


def report(client, auth, **query) -> dict:
    answer = client.get("/api/v1/reports/calls", query_string=query, headers=auth)
    assert answer.status_code == 200, answer.get_json()
    assert answer.mimetype == "application/json"
    return answer.get_json()


def test_the_journal_holds_delivered_and_pending_entries_alike(client, auth, calls):
    statuses = [
        e["status"] for e in client.get("/api/v1/journal", headers=auth).get_json()["entries"]
    ]

    assert sorted(statuses) == ["delivered"] * 3 + ["pending"] * 5


def test_by_day_one_row_per_day_zeros_included_and_the_midnight_call_on_its_start_day(
    client, auth, calls
):
    assert report(client, auth, **RANGE, by="day") == {
        "from": "2025-07-05",
        "to": "2025-07-07",
        "by": "day",
        "rows": [
            {"key": "2025-07-05", **counts(4, 3, 1, 3, 1, 125 + 60 + 240, 141.7)},
            {"key": "2025-07-06", **counts()},
            {"key": "2025-07-07", **counts(2, 1, 1, 0, 2, 15, 0.0)},
        ],
        "totals": counts(6, 4, 2, 3, 3, 440, 141.7),
    }


def test_by_day_is_the_default_and_today_is_both_days_by_default(client, auth, calls):
    today = datetime.now(SAST).date().isoformat()

    assert report(client, auth, **RANGE)["by"] == "day"
    assert report(client, auth) == {
        "from": today,
        "to": today,
        "by": "day",
        "rows": [{"key": today, **counts()}],
        "totals": counts(),
    }


def test_by_hour_twenty_four_rows_by_the_local_hour_the_calls_started(client, auth, calls):
    rows = report(client, auth, **RANGE, by="hour")["rows"]
    busy = {"09", "10", "14", "23"}

    assert [row["key"] for row in rows] == [f"{hour:02d}" for hour in range(24)]
    assert {row["key"]: row for row in rows if row["key"] in busy} == {
        "09": {"key": "09", **counts(2, 2, 0, 1, 1, 125, 125.0)},
        "10": {"key": "10", **counts(2, 1, 1, 0, 2, 15, 0.0)},
        "14": {"key": "14", **counts(1, 0, 1, 1, 0, 60, 60.0)},
        "23": {"key": "23", **counts(1, 1, 0, 1, 0, 240, 240.0)},
    }
    assert all(row == {"key": row["key"], **counts()} for row in rows if row["key"] not in busy)


def test_by_agent_one_row_per_extension_named_and_one_for_the_calls_without(client, auth, calls):
    answer = report(client, auth, **RANGE, by="agent")

    assert answer["rows"] == [
        {"key": "", **counts(1, 1, 0, 0, 1, 15, 0.0)},
        {"key": "6001", **counts(3, 3, 0, 2, 1, 365, 182.5)},
        {"key": "6002", **counts(2, 0, 2, 1, 1, 60, 60.0)},
    ]
    assert answer["totals"] == counts(6, 4, 2, 3, 3, 440, 141.7)


def test_csv_has_the_fields_the_rows_and_a_total_row(client, auth, calls):
    by_param = client.get(
        "/api/v1/reports/calls",
        query_string={**RANGE, "by": "agent", "format": "csv"},
        headers=auth,
    )
    by_accept = client.get(
        "/api/v1/reports/calls",
        query_string={**RANGE, "by": "agent"},
        headers={**auth, "Accept": "text/csv"},
    )

    for answer in (by_param, by_accept):
        assert answer.status_code == 200
        assert answer.mimetype == "text/csv"
        assert answer.get_data(as_text=True) == (
            "key,calls,inbound,outbound,answered,missed,talk_seconds,average_talk_seconds\r\n"
            ",1,1,0,0,1,15,0.0\r\n"
            "6001,3,3,0,2,1,365,182.5\r\n"
            "6002,2,0,2,1,1,60,60.0\r\n"
            "total,6,4,2,3,3,440,141.7\r\n"
        )


def test_json_is_the_answer_unless_csv_is_asked_for(client, auth, calls):
    for accept in ("application/json", "*/*", "text/csv;q=0.5, application/json"):
        answer = client.get(
            "/api/v1/reports/calls", query_string=RANGE, headers={**auth, "Accept": accept}
        )
        assert answer.mimetype == "application/json", accept
    explicit = client.get(
        "/api/v1/reports/calls",
        query_string={**RANGE, "format": "json"},
        headers={**auth, "Accept": "text/csv"},
    )
    assert explicit.mimetype == "application/json"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "2024-01-01", "to": "2025-01-01"}, "to"),  # 367 days
        ({"from": "2025-07-07", "to": "2025-07-05"}, "from"),
        ({"from": "2025-02-30", "to": "2025-03-01"}, "from"),
        ({"from": "05-07-2025"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"from": "2025-07-05T00:00:00"}, "from"),
        ({"by": "week"}, "by"),
        ({"format": "xml"}, "format"),
    ],
)
def test_a_range_over_366_days_backwards_or_of_bad_dates_is_a_validation_error(
    client, auth, query, field, calls
):
    answer = client.get("/api/v1/reports/calls", query_string=query, headers=auth)

    assert answer.status_code == 422
    assert answer.mimetype == "application/problem+json"
    problem = answer.get_json()
    assert problem["code"] == "validation_error"
    assert field in problem["errors"]


def test_a_leap_year_of_366_days_is_one_report(client, auth, calls):
    rows = report(client, auth, **{"from": "2024-01-01", "to": "2024-12-31"})["rows"]

    assert (len(rows), rows[0]["key"], rows[-1]["key"]) == (366, "2024-01-01", "2024-12-31")


# the store part and the migration ------------------------------------------------------------------

LOG = {"CallDirection": "Inbound", "DurationTimespan": "00:03:00"}


@pytest.mark.parametrize(
    ("date_time", "day", "hour"),
    [
        ("05-07-25 23:59:59", "2025-07-05", 23),
        ("29-02-24 00:00:00", "2024-02-29", 0),
        ("01-01-69 12:00:00", "1969-01-01", 12),  # two-digit years as strptime's %y reads them
        ("29-02-25 10:00:00", None, None),  # no such day
        ("05-07-25 24:00:00", None, None),
        ("2025-07-05 10:00:00", None, None),
        ("", None, None),
    ],
)
def test_the_report_columns_of_a_call_log(date_time, day, hour):
    log = {"DateTime": date_time, "CallType": "Missed", "CallDirection": "Outbound"}

    assert report_columns({**log, "Duration": "01:02:03"}) == {
        "local_day": day,
        "local_hour": hour,
        "direction": "Outbound",
        "call_type": "Missed",
        "talk_seconds": 3723,
    }
    assert report_columns({})["talk_seconds"] == 0


def test_bulk_added_entries_are_counted_and_a_key_stored_before_is_skipped(sql_database):
    store = SqlStore(sql_database)
    try:
        calls = [
            (
                "backfill",
                "k1",
                {
                    **LOG,
                    "CallType": "Inbound",
                    "Duration": "00:01:00",
                    "DateTime": "05-07-25 08:00:00",
                },
                "6001",
            ),
            (
                "backfill",
                "k2",
                {
                    **LOG,
                    "CallType": "Missed",
                    "Duration": "00:00:00",
                    "DateTime": "05-07-25 08:30:00",
                },
                None,
            ),
        ]
        store.journal.add_many(calls)
        store.journal.add_many(calls[:1])  # stored already: skipped
        (row,) = store.reports.calls_report("2025-07-05", "2025-07-05", "hour")
    finally:
        store.close()

    assert (row.key, row.calls, row.answered, row.missed, row.talk_seconds) == (8, 2, 1, 1, 60)


def _version_2_database(database: str, logs: list[tuple[str, dict, str | None]]) -> None:
    """The journal as schema version 2 made it, with entries of these call logs."""
    with old_database(database, 2) as (conn, journal):
        for key, log, agent in logs:
            conn.execute(
                insert(journal).values(
                    source="ibizfone",
                    key=key,
                    status="delivered",
                    next_attempt_at=1.0,
                    created_at=1.0,
                    call_log=json.dumps(log),
                    agent=agent,
                )
            )


def test_a_version_2_database_gets_the_report_columns_of_the_entries_it_holds(sql_database):
    _version_2_database(
        sql_database,
        [
            (
                "old-1",
                {
                    **LOG,
                    "CallType": "Inbound",
                    "Duration": "00:02:05",
                    "DateTime": "31-12-24 23:59:59",
                },
                "6001",
            ),
            (
                "old-2",
                {
                    **LOG,
                    "CallType": "Missed",
                    "Duration": "00:00:00",
                    "DateTime": "01-01-25 00:00:01",
                },
                "6001",
            ),
            ("old-3", {"CallType": "Inbound"}, None),  # no DateTime: in no report
            ("old-4", "not a log", None),
        ],
    )

    store = SqlStore(sql_database)
    try:
        by_day = store.reports.calls_report("2024-12-31", "2025-01-01", "day")
        (agent,) = store.reports.calls_report("2024-12-01", "2025-01-31", "agent")
    finally:
        store.close()

    assert [(r.key, r.calls, r.answered, r.missed, r.talk_seconds) for r in by_day] == [
        ("2024-12-31", 1, 1, 0, 125),
        ("2025-01-01", 1, 0, 1, 0),
    ]
    assert (agent.key, agent.calls, agent.answered_talk_seconds) == ("6001", 2, 125)


def test_the_reports_group_over_the_index_never_a_table_scan(tmp_path):
    """SQLite's plan of each report (as the store sends it) reads the covering index of the range
    of days alone; by day it sorts nothing."""
    path = str(tmp_path / "plan.sqlite3")
    store = SqlStore(path)
    sent = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if "GROUP BY" in statement:
            sent.append((statement, parameters))

    event.listen(Engine, "before_cursor_execute", capture)
    try:
        for by in ("day", "hour", "agent"):
            store.reports.calls_report("2025-01-01", "2025-12-31", by)
    finally:
        event.remove(Engine, "before_cursor_execute", capture)
        store.close()
    with sqlite3.connect(path) as conn:
        plans = [
            [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
            for sql, params in sent
        ]

    assert len(plans) == 3
    for plan in plans:
        assert any("USING COVERING INDEX journal_day_" in step for step in plan), plan
        assert not any(step.startswith("SCAN journal") for step in plan), plan
    assert not any("TEMP B-TREE" in step for step in plans[0]), plans[0]  # by day


def test_reports_need_a_full_key_or_a_supervisor(client, calls):
    assert client.get("/api/v1/reports/calls").status_code == 401
