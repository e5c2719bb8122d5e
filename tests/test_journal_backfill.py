"""`flask journal backfill --date`: a day of zain call details into the journal, once each."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from .conftest import DIALER_ENV, ZAIN_TOKEN, ZAIN_URL
from .journal_fakes import CRM_ENV, agents_file, crm_knows, crm_logs, deliver, sent_logs

DETAILS_URL = f"{ZAIN_URL}/api/FetchCallDetailsByDate"


def zain_day(count: int) -> list[dict]:
    calls = []
    for n in range(count):
        calls.append(
            {
                "callId": str(123456 + n),
                "callType": "OUTGOING" if n % 2 else "INCOMING",
                "duration": "00:03:45" if n % 5 else "00:00:00",
                "timestamp": f"2025-07-05 10:{n // 60:02d}:{n % 60:02d}",
                "agent": "6001",
                "customerNumber": "0721234567",
            }
        )
    return calls


@pytest.fixture
def settings(tmp_path):
    return {**DIALER_ENV["zain"], **CRM_ENV, "CTI_AGENTS_FILE": agents_file(tmp_path)}


def backfill(runner, day="2025-07-05"):
    return runner.invoke(args=["journal", "backfill", "--date", day])


def test_backfill_of_a_day_with_100_calls_shows_progress_and_is_idempotent(app, runner, upstream):
    upstream.get(DETAILS_URL, json={"status": "success", "data": zain_day(100)})

    first = backfill(runner)
    second = backfill(runner)

    assert first.exit_code == 0, first.output
    assert "backfill 2025-07-05: 50/100" in first.output
    assert "backfill 2025-07-05: 100/100" in first.output
    assert "100 call(s): 100 new, 0 already in the journal" in first.output
    assert second.exit_code == 0, second.output
    assert "100 call(s): 0 new, 100 already in the journal" in second.output
    counts = app.extensions["cti"].store.journal.counts()
    assert counts == {"pending": 100, "delivered": 0, "failed": 0}


def test_backfill_asks_zain_for_the_day_as_its_document_says(runner, upstream):
    upstream.get(DETAILS_URL, json={"status": "success", "data": []})

    result = backfill(runner)

    assert result.exit_code == 0, result.output
    (call,) = upstream.calls
    assert call.request.method == "GET"
    assert urlsplit(call.request.url).path == "/api/FetchCallDetailsByDate"
    assert dict(parse_qsl(urlsplit(call.request.url).query)) == {
        "domainName": "example.com",
        "targetDate": "05/07/2025",
    }
    assert call.request.headers["Token"] == ZAIN_TOKEN
    assert call.request.headers["locale"] == "en"
    assert call.request.headers["Content-Type"] == "application/json"


def test_backfilled_calls_are_delivered_as_call_logs(app, runner, upstream):
    upstream.get(DETAILS_URL, json={"status": "success", "data": zain_day(2)})
    crm_knows(upstream)
    crm_logs(upstream)
    backfill(runner)

    assert deliver(app)["delivered"] == 2

    missed, outbound = sorted(sent_logs(upstream), key=lambda body: body["CallType"])
    assert missed["CallType"] == "Missed"  # incoming, no talk time
    assert (missed["Duration"], missed["DurationTimespan"]) == ("00:00:00", "00:00:00")
    assert outbound["CallType"] == "Outbound"
    assert outbound["CallDirection"] == "Outbound"
    assert outbound["Number"] == "+27721234567"
    assert outbound["EntityId"] == "2916509f-f188-42d8-ab0e-a27bcb20d70d"
    assert (outbound["Duration"], outbound["DurationTimespan"]) == ("00:03:45", "00:03:45")
    assert outbound["DateTime"] == "05-07-25 10:00:01"
    assert (outbound["CallStartTimeLocal"], outbound["CallEndTimeLocal"]) == (
        "10:00:01",
        "10:03:46",
    )
    assert outbound["AgentEmail"] == "ayanda@example.com"


def test_a_backfilled_call_over_a_daylight_saving_change_ends_at_the_local_time_it_ended(
    make_app, settings, upstream
):
    upstream.get(
        DETAILS_URL,
        json={
            "status": "success",
            "data": [  # 2026-03-08, New York: 02:00 EST is 03:00 EDT; an hour from 01:30 EST
                {
                    "callId": "123456",
                    "callType": "INCOMING",
                    "duration": "01:00:00",
                    "timestamp": "2026-03-08 01:30:00",
                    "agent": "6001",
                    "customerNumber": "0721234567",
                }
            ],
        },
    )
    crm_knows(upstream)
    crm_logs(upstream)
    app = make_app(**settings, CTI_TIMEZONE="America/New_York")
    assert backfill(app.test_cli_runner(), day="2026-03-08").exit_code == 0

    assert deliver(app)["delivered"] == 1

    (body,) = sent_logs(upstream)
    assert (body["DateTime"], body["DurationTimespan"]) == ("08-03-26 01:30:00", "01:00:00")
    assert (body["CallStartTimeLocal"], body["CallEndTimeLocal"]) == ("01:30:00", "03:30:00")


def test_backfill_entries_are_keyed_by_call_id(app, runner, upstream, auth):
    upstream.get(DETAILS_URL, json={"status": "success", "data": zain_day(1)})
    backfill(runner)

    (entry,) = app.test_client().get("/api/v1/journal", headers=auth).get_json()["entries"]
    assert (entry["source"], entry["key"]) == ("backfill", "123456")


def test_backfill_without_zain_settings_fails_clearly(make_app):
    result = (
        make_app().test_cli_runner().invoke(args=["journal", "backfill", "--date", "2025-07-05"])
    )

    assert result.exit_code != 0
    assert (
        "zain is not configured: set CTI_ZAIN_URL, CTI_ZAIN_TOKEN, CTI_ZAIN_DOMAIN" in result.output
    )


def test_backfill_with_a_bad_date_fails(runner):
    result = backfill(runner, day="05/07/2025")

    assert result.exit_code == 2
    assert "--date" in result.output


def test_backfill_reports_zain_failure_without_its_token(runner, upstream):
    upstream.get(DETAILS_URL, status=401, json={"status": "error", "message": "Invalid Token"})

    result = backfill(runner)

    assert result.exit_code == 1
    assert "zain: Invalid Token" in result.output
    assert ZAIN_TOKEN not in result.output


def test_unreadable_calls_are_skipped_and_reported(runner, upstream):
    calls = zain_day(2) + [{"callId": "bad", "timestamp": "yesterday"}, {"callType": "INCOMING"}]
    upstream.get(DETAILS_URL, json={"status": "success", "data": calls})

    result = backfill(runner)

    assert result.exit_code == 1
    assert "4 call(s): 2 new, 0 already in the journal, 2 unreadable (skipped)" in result.output
