"""Contract section 5: each reported call becomes the `/calls/log` body the CRM expects."""

from __future__ import annotations

import pytest

from middleware.journal.call_logs import hms

from .conftest import CRM_KEY
from .contacts import FROM_JAMES, JAMES_CALL_LOG
from .journal_fakes import HOOK, JAMES, call_end, deliver, entries, sent_logs


def logged_from_pbx(app, upstream, **fields) -> dict:
    response = app.test_client().post("/api/v1/webhooks/pbx", json=call_end(**fields), headers=HOOK)
    assert response.status_code == 202, response.get_json()
    assert deliver(app)["delivered"] == 1
    (body,) = sent_logs(upstream)
    return body


def logged_from_ibizfone(app, upstream, **params) -> dict:
    push = {
        "calllogid": "IVR-1",
        "callnumber": "0721234567",
        "date": "2025-07-05",
        "time": "10:15:22",
        "agentnumber": "6002",
        "ivrduration": "20",
        "callduration": "65",
        "callstatus": "ANSWER",
        **params,
    }
    response = app.test_client().get("/api/v1/webhooks/ibizfone", query_string=push, headers=HOOK)
    assert response.status_code == 200, response.data
    assert deliver(app)["delivered"] == 1
    (body,) = sent_logs(upstream)
    return body


def test_inbound_answered_call_is_the_full_call_log(journal_app, upstream):
    body = logged_from_pbx(journal_app(), upstream)

    assert body == JAMES_CALL_LOG
    log_call = next(c for c in upstream.calls if c.request.url.endswith("/calls/log"))
    assert log_call.request.method == "POST"
    assert log_call.request.headers["Authorization"] == f"Bearer {CRM_KEY}"


@pytest.mark.parametrize(
    ("call_type", "billms", "expected"),
    [
        ("inbound", 125000, "Inbound"),
        ("inbound", 0, "Missed"),
        ("queue", 125000, "Inbound"),
        ("queue", 0, "Missed"),
        ("outbound", 125000, "Outbound"),
        ("outbound", 0, "Notanswered"),
    ],
)
def test_pbx_call_type_follows_type_and_talk_time(
    journal_app, upstream, call_type, billms, expected
):
    body = logged_from_pbx(journal_app(), upstream, type=call_type, billms=billms)

    assert body["CallType"] == expected
    assert body["CallDirection"] == ("Outbound" if call_type == "outbound" else "Inbound")
    assert body["Duration"] == ("00:02:05" if billms else "00:00:00")


def test_missing_talk_time_is_an_unanswered_call(journal_app, upstream):
    event = call_end()
    del event["billms"]
    client = journal_app().test_client()
    assert client.post("/api/v1/webhooks/pbx", json=event, headers=HOOK).status_code == 202


def test_outbound_call_uses_dialed_number_and_source_agent(journal_app, upstream):
    body = logged_from_pbx(
        journal_app(),
        upstream,
        type="outbound",
        cid_num="6002",
        dst_num="27721234567",
        src_user_id=102,
        dst_user_id=None,
    )

    assert body["Number"] == "+27721234567"
    assert body["EntityId"] == JAMES["id"]
    assert (body["AgentFirstName"], body["AgentLastName"], body["AgentEmail"]) == (
        "Pieter",
        "Botha",
        "pieter@example.com",
    )


@pytest.mark.parametrize(
    "spelling", ["0721234567", "27721234567", "+27 72 123 4567", "072-123-4567"]
)
def test_number_is_written_in_e164_whatever_the_spelling(journal_app, upstream, spelling):
    body = logged_from_pbx(journal_app(), upstream, cid_num=spelling)

    assert body["Number"] == "+27721234567"


def test_number_that_does_not_parse_is_written_as_its_digits_without_a_lookup(
    journal_app, upstream
):
    body = logged_from_pbx(journal_app(), upstream, cid_num="anonymous", billms=0)

    assert body["Number"] == ""
    assert (body["Name"], body["EntityId"], body["EntityType"]) == ("", "", "")
    assert not [c for c in upstream.calls if "/calls/record" in c.request.url]


def test_durations_are_rounded_to_whole_seconds(journal_app, upstream):
    body = logged_from_pbx(journal_app(), upstream, durationms=3_725_499, billms=3_600_500)

    assert body["Duration"] == "01:00:01"
    assert body["DurationTimespan"] == "01:02:05"
    assert body["CallStartTimeLocal"] == "09:13:17"


def test_dates_and_times_are_local_to_cti_timezone(journal_app, upstream):
    # ends 2025-07-05 00:01:00 in Johannesburg (UTC+2) after 3 minutes: it started the day before
    body = logged_from_pbx(
        journal_app(CTI_TIMEZONE="Africa/Johannesburg"),
        upstream,
        ts=1751666460,
        durationms=180000,
    )

    assert body["DateTime"] == "04-07-25 23:58:00"
    assert body["CallStartTimeLocal"] == "23:58:00"
    assert body["CallEndTimeLocal"] == "00:01:00"


@pytest.mark.parametrize(
    ("ts", "start", "end"),
    [
        # 2026-03-08: clocks go from 02:00 EST to 03:00 EDT; an hour from 01:30 EST is 03:30 EDT
        (1772955000, "08-03-26 01:30:00", "03:30:00"),
        # 2026-11-01: clocks go back from 02:00 EDT to 01:00 EST; an hour from 01:30 EDT is 01:30 EST
        (1793514600, "01-11-26 01:30:00", "01:30:00"),
    ],
)
def test_a_call_over_a_daylight_saving_change_ends_at_the_local_time_it_ended(
    journal_app, upstream, ts, start, end
):
    body = logged_from_pbx(
        journal_app(CTI_TIMEZONE="America/New_York"), upstream, ts=ts, durationms=3_600_000
    )

    assert (body["DateTime"], body["DurationTimespan"]) == (start, "01:00:00")
    assert body["CallStartTimeLocal"] == start[-8:]
    assert body["CallEndTimeLocal"] == end  # the local time of ``ts``, the end of the call


def test_unknown_caller_is_logged_with_empty_contact_fields(journal_app, upstream):
    body = logged_from_pbx(journal_app(), upstream, cid_num="0827654321")

    assert body["Number"] == "+27827654321"
    assert (body["Name"], body["EntityId"], body["EntityType"]) == ("", "", "")
    looked_up = [c.request.url for c in upstream.calls if "/calls/record" in c.request.url]
    assert looked_up == [
        "http://crm.test/calls/record?phone=%2B27827654321",
        "http://crm.test/calls/record?phone=0827654321",
    ]


def test_contact_is_looked_up_in_the_crm_in_the_configured_forms(journal_app, upstream):
    lead = {"0721234567": {**JAMES, "entity_type": "Lead"}}
    app = journal_app(lead, CTI_CRM_PHONE_FORMATS="national")

    body = logged_from_pbx(app, upstream)

    assert (body["Name"], body["EntityId"], body["EntityType"]) == (
        "James May",
        JAMES["id"],
        "Lead",
    )
    assert body["Number"] == "+27721234567"


def test_agent_missing_from_the_directory_leaves_agent_fields_empty(journal_app, upstream):
    body = logged_from_pbx(journal_app(), upstream, dst_user_id=999)

    assert (body["AgentFirstName"], body["AgentLastName"], body["AgentEmail"]) == ("", "", "")


def test_form_encoded_pbx_event_maps_like_json(journal_app, upstream):
    app = journal_app()
    form = {k: str(v) for k, v in call_end().items()}

    response = app.test_client().post("/api/v1/webhooks/pbx", data=form, headers=HOOK)

    assert response.status_code == 202
    deliver(app)
    (body,) = sent_logs(upstream)
    assert body["CallType"] == "Inbound"
    assert body["AgentEmail"] == "ayanda@example.com"
    assert body["DurationTimespan"] == "00:03:10"


# ibizfone ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [("ANSWER", "Inbound"), ("MISSED", "Missed"), ("DROPPED", "Missed"), ("answer", "Inbound")],
)
def test_ibizfone_call_status_gives_the_call_type(journal_app, upstream, status, expected):
    body = logged_from_ibizfone(journal_app(), upstream, callstatus=status)

    assert body["CallType"] == expected
    assert body["CallDirection"] == "Inbound"


def test_ibizfone_durations_start_and_agent(journal_app, upstream):
    body = logged_from_ibizfone(
        journal_app(CTI_TIMEZONE="Africa/Johannesburg"),
        upstream,
        ivrduration="00:00:20",
        callduration="00:01:05",
    )

    assert body == {
        **FROM_JAMES,
        "AgentFirstName": "Pieter",
        "AgentLastName": "Botha",
        "AgentEmail": "pieter@example.com",
        "Duration": "00:01:05",
        "DurationTimespan": "00:01:25",
        "DateTime": "05-07-25 10:15:22",
        "CallStartTimeLocal": "10:15:22",
        "CallEndTimeLocal": "10:16:47",
    }


@pytest.mark.parametrize(
    ("day", "start", "seconds", "end"),
    [
        ("2026-03-08", "01:30:00", (600, 3000), "03:30:00"),  # an hour over spring forward
        ("2026-11-01", "00:30:00", (1200, 6000), "01:30:00"),  # two hours over fall back: EST
    ],
)
def test_ibizfone_call_over_a_daylight_saving_change_ends_at_the_local_time_it_ended(
    journal_app, upstream, day, start, seconds, end
):
    ivr, talk = seconds
    body = logged_from_ibizfone(
        journal_app(CTI_TIMEZONE="America/New_York"),
        upstream,
        date=day,
        time=start,
        ivrduration=str(ivr),
        callduration=str(talk),
    )

    assert body["CallStartTimeLocal"] == start
    assert body["DurationTimespan"] == hms(ivr + talk)
    assert body["CallEndTimeLocal"] == end


def test_ibizfone_durations_in_seconds_and_missing(journal_app, upstream):
    body = logged_from_ibizfone(
        journal_app(), upstream, ivrduration="95", callduration="", callstatus="MISSED"
    )

    assert body["Duration"] == "00:00:00"
    assert body["DurationTimespan"] == "00:01:35"


def test_recording_url_is_kept_on_the_entry(journal_app, upstream, auth):
    app = journal_app()
    url = "https://ivr.example/rec/IVR-1.mp3"
    logged_from_ibizfone(app, upstream, recordingurl=url)

    (entry,) = entries(app.test_client(), auth)
    assert entry["recording_url"] == url
    assert entry["source"] == "ibizfone"
    assert entry["key"] == "IVR-1"
