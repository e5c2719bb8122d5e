"""The IVR schedule through ibizfone: holidays, office hours in 12-hour form, its text answers."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from .conftest import IBIZFONE_KEY, IBIZFONE_URL

IBIZFONE = {
    "CTI_IBIZFONE_URL": IBIZFONE_URL,
    "CTI_IBIZFONE_API_KEY": IBIZFONE_KEY,
    "CTI_IBIZFONE_CUSTID": "C-77",
}
HANDLER = f"{IBIZFONE_URL}/settings/handler.ashx"


@pytest.fixture
def settings():
    """ibizfone is set up for the schedule while another provider handles agents."""
    return {**IBIZFONE, "CTI_AGENT_PROVIDER": "sandbox"}


def sent(upstream):
    (call,) = upstream.calls
    assert call.request.method == "GET"
    parts = urlsplit(call.request.url)
    return parts.path, parse_qsl(parts.query)


def test_holiday_is_sent_with_its_date(client, upstream, auth):
    upstream.get(HANDLER, body="Success")

    response = client.put("/api/v1/schedule/holidays/2025-12-25", headers=auth)

    assert response.status_code == 200
    assert response.get_json() == {"date": "2025-12-25", "holiday": True, "provider": "ibizfone"}
    assert sent(upstream) == (
        "/settings/handler.ashx",
        [
            ("apikey", IBIZFONE_KEY),
            ("custid", "C-77"),
            ("action", "holiday"),
            ("hdate", "2025-12-25"),
        ],
    )


@pytest.mark.parametrize(
    "day,start,end,sent_day,st_time,en_time",
    [
        ("Daily", "09:00", "17:30", "Daily", "09:00 AM", "05:30 PM"),
        ("monday", "00:15", "12:00", "Monday", "12:15 AM", "12:00 PM"),
        ("Sunday", "7:05", "23:59", "Sunday", "07:05 AM", "11:59 PM"),
    ],
)
def test_office_hours_go_out_in_twelve_hour_form(
    client, upstream, auth, day, start, end, sent_day, st_time, en_time
):
    upstream.get(HANDLER, body="Success")

    response = client.put(
        "/api/v1/schedule/office-hours",
        json={"day": day, "start": start, "end": end},
        headers=auth,
    )

    assert response.status_code == 200
    assert response.get_json() == {
        "day": sent_day,
        "start": f"{int(start[:-3]):02d}:{start[-2:]}",
        "end": end,
        "provider": "ibizfone",
    }
    assert sent(upstream) == (
        "/settings/handler.ashx",
        [
            ("apikey", IBIZFONE_KEY),
            ("custid", "C-77"),
            ("action", "OfficeTime"),
            ("day", sent_day),
            ("st_time", st_time),
            ("en_time", en_time),
        ],
    )


def test_invalid_time_answer_is_502_with_its_text(client, upstream, auth):
    upstream.get(HANDLER, body="Invalid Time")

    response = client.put(
        "/api/v1/schedule/office-hours",
        json={"day": "Friday", "start": "09:00", "end": "17:30"},
        headers=auth,
    )

    assert response.status_code == 502
    assert response.get_json()["code"] == "upstream_error"
    assert response.get_json()["detail"] == "ibizfone: Invalid Time"


def test_ibizfone_rejecting_the_key_is_upstream_auth(client, upstream, auth):
    upstream.get(HANDLER, body="Unauthorized", status=401)

    response = client.put("/api/v1/schedule/holidays/2025-12-25", headers=auth)

    assert response.status_code == 502
    assert response.get_json()["code"] == "upstream_auth"
    assert IBIZFONE_KEY not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "body",
    [
        {"day": "Friday", "start": "17:30", "end": "09:00"},
        {"day": "Friday", "start": "09:00", "end": "09:00"},
        {"day": "Fri", "start": "09:00", "end": "17:30"},
        {"day": "Friday", "start": "9am", "end": "17:30"},
        {"day": "Friday", "start": "09:00", "end": "24:00"},
        {"day": "Friday", "start": "09:00"},
    ],
)
def test_malformed_office_hours_are_422_and_send_nothing(client, upstream, auth, body):
    response = client.put("/api/v1/schedule/office-hours", json=body, headers=auth)

    assert response.status_code == 422
    assert len(upstream.calls) == 0


@pytest.mark.parametrize("day", ["2025-02-30", "25-12-2025", "tomorrow"])
def test_malformed_holiday_is_422(client, upstream, auth, day):
    response = client.put(f"/api/v1/schedule/holidays/{day}", headers=auth)

    assert response.status_code == 422
    assert "day" in response.get_json()["errors"]
    assert len(upstream.calls) == 0


def test_schedule_without_ibizfone_is_501_after_validation(make_app, upstream, auth):
    client = make_app().test_client()

    good = client.put("/api/v1/schedule/holidays/2025-12-25", headers=auth)
    bad = client.put("/api/v1/schedule/office-hours", json={"day": "Friday"}, headers=auth)

    assert good.status_code == 501 and good.get_json()["code"] == "unsupported"
    assert bad.status_code == 422
    assert len(upstream.calls) == 0
