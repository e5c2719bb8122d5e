"""The agent a journal entry names is in its one spelling (contract section 4: an extension of the
directory, or else plain digits compared as a number, ``07602`` is agent 7602), however the PBX,
the IVR or zain wrote it, so the journal's ``?agent=`` filter, the board's calls of today and the
report by agent all agree. The ``/calls/log`` body carries no agent number: its names and email
come from the directory row of that one agent."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from .conftest import DIALER_ENV, ZAIN_URL
from .journal_fakes import HOOK, call_end, deliver, entries, journal_env, sent_logs

# journal_fakes.AGENTS_CSV: 6001 is user 101 (Ayanda Dlamini), 6002 user 102 (Pieter Botha);
# no row has extension or user id 107.
IVR_PUSH = {
    "calllogid": "IVR-1",
    "callnumber": "0721234567",
    "date": "2025-07-05",
    "time": "10:15:22",
    "callstatus": "ANSWER",
    "callduration": "65",
}


def noon_zone() -> str:
    """A fixed-offset zone where it is about noon now: "today" there is hours from changing."""
    offset = (12 - datetime.now(UTC).hour + 12) % 24 - 12  # -12 .. +11
    return f"Etc/GMT{-offset:+d}" if offset else "UTC"


def ivr(client, **fields) -> None:
    response = client.post("/api/v1/webhooks/ibizfone", data={**IVR_PUSH, **fields}, headers=HOOK)
    assert (response.status_code, response.data) == (200, b"Accepted")


def pbx(client, event: dict) -> None:
    response = client.post("/api/v1/webhooks/pbx", json=event, headers=HOOK)
    assert response.status_code == 202, response.get_json()


def keys(client, auth, agent: str) -> list[str]:
    return [entry["key"] for entry in entries(client, auth, agent=agent)]


@pytest.fixture
def settings(upstream, tmp_path):
    return journal_env(upstream, tmp_path)


def test_an_ivr_agentnumber_with_a_leading_zero_is_the_directorys_agent(
    app, client, auth, upstream
):
    ivr(client, agentnumber="06001")

    assert keys(client, auth, "6001") == ["IVR-1"]
    assert keys(client, auth, "06001") == ["IVR-1"]
    assert keys(client, auth, "6002") == []
    assert deliver(app)["delivered"] == 1
    (log,) = sent_logs(upstream)
    assert (log["AgentFirstName"], log["AgentLastName"], log["AgentEmail"]) == (
        "Ayanda",
        "Dlamini",
        "ayanda@example.com",
    )


def test_an_ivr_agentnumber_outside_the_directory_is_compared_as_a_number(client, auth):
    ivr(client, agentnumber="007602")
    ivr(client, calllogid="IVR-2", agentnumber="7602")

    assert keys(client, auth, "7602") == ["IVR-2", "IVR-1"]
    assert keys(client, auth, "07602") == ["IVR-2", "IVR-1"]


def test_a_cc_agent_user_id_without_a_row_is_named_as_a_number(client, auth):
    pbx(client, call_end(id="pbx-1", dst_user_id="0107"))

    (entry,) = entries(client, auth, agent="107")
    assert entry["key"] == "pbx-1"
    assert entry["legs"] == [{"id": "pbx-1", "agent": "107", "billms": 125000}]
    assert keys(client, auth, "0107") == ["pbx-1"]


def test_a_missed_call_rung_to_one_agent_in_two_spellings_names_that_agent(client, auth):
    common = {"call_id": "m", "billms": 0, "durationms": 20000}
    pbx(client, call_end(id="m", dst_user_id="0107", **common))
    pbx(client, call_end(id="m-2", dst_user_id="107", **common))

    (entry,) = entries(client, auth, agent="107")
    assert (entry["key"], entry["call_log"]["CallType"]) == ("m", "Missed")
    assert [leg["agent"] for leg in entry["legs"]] == ["107", "107"]


def test_board_and_report_count_the_call_under_the_one_spelling(journal_app, auth):
    zone = noon_zone()
    client = journal_app(CTI_TIMEZONE=zone).test_client()
    now = int(time.time())
    pbx(client, call_end(id="pbx-1", dst_user_id="0107", ts=now - 60, durationms=100000))
    today = datetime.now(ZoneInfo(zone)).date().isoformat()
    ivr(client, calllogid="IVR-9", agentnumber="0107", date=today, time="09:30:00")

    answer = client.get("/api/v1/board", headers=auth)
    assert answer.status_code == 200
    board = {agent["extension"]: agent["today"] for agent in answer.get_json()["agents"]}
    assert board["107"] == {"calls": 2, "answered": 2, "missed": 0, "talk_seconds": 125 + 65}
    assert "0107" not in board
    report = client.get("/api/v1/reports/calls", query_string={"by": "agent"}, headers=auth)
    assert report.status_code == 200
    rows = {row["key"]: row["calls"] for row in report.get_json()["rows"]}
    assert rows == {"107": 2}


def test_a_backfilled_zain_agent_with_a_leading_zero_is_the_directorys_agent(
    make_app, upstream, tmp_path, auth
):
    upstream.get(
        f"{ZAIN_URL}/api/FetchCallDetailsByDate",
        json={
            "status": "success",
            "data": [
                {
                    "callId": "z-1",
                    "callType": "INCOMING",
                    "duration": "00:01:00",
                    "timestamp": "2025-07-05 10:00:00",
                    "agent": "06002",
                    "customerNumber": "0721234567",
                }
            ],
        },
    )
    app = make_app(**DIALER_ENV["zain"], **journal_env(upstream, tmp_path))
    result = app.test_cli_runner().invoke(args=["journal", "backfill", "--date", "2025-07-05"])
    assert result.exit_code == 0, result.output

    client = app.test_client()
    assert keys(client, auth, "6002") == ["z-1"]
    assert deliver(app)["delivered"] == 1
    (log,) = sent_logs(upstream)
    assert log["AgentEmail"] == "pieter@example.com"
