"""No input gives a 500: stream resume ids beyond 64 bits, a CRM number that is no number, and the
proxy's queue stamp in every form it comes in."""

from __future__ import annotations

import pytest

from middleware.runtime.logs import queue_seconds

from .test_caller_lookup import CRM, JAMES, RECORD


@pytest.mark.parametrize(
    "where",
    [
        {"query_string": {"last_event_id": str(2**64)}},
        {"query_string": {"last_event_id": "9" * 40}},
        {"headers": {"Last-Event-ID": str(2**63)}},
    ],
)
def test_event_id_beyond_64_bits_answers_422(client, auth, where):
    headers = {**auth, **where.get("headers", {})}
    answer = client.get(
        "/api/v1/agents/6000/events", headers=headers, query_string=where.get("query_string")
    )

    assert answer.status_code == 422
    assert answer.mimetype == "application/problem+json"
    assert answer.get_json()["errors"]["last_event_id"]


def test_largest_64_bit_event_id_is_accepted(client, auth):
    answer = client.get(
        "/api/v1/agents/6000/events", headers={**auth, "Last-Event-ID": str(2**63 - 1)}
    )

    assert answer.status_code == 200
    # Beyond the log's newest event: it resumes from the log's start (events.resume_after).
    assert "id: 0\n" in answer.get_data(as_text=True)


@pytest.mark.parametrize("number", ["12345", "not a number", "+999 000"])
def test_pop_by_email_of_a_contact_whose_number_is_no_number_shows_the_card_without_it(
    make_app, upstream, auth, number
):
    contact = {**JAMES, "mobilephone": number, "businessphone": number}
    upstream.get(RECORD, json={"status": True, "contact": contact})
    client = make_app(**CRM).test_client()

    answer = client.get("/pop?email=james@may.com", headers=auth)

    assert answer.status_code == 200
    assert "James May" in answer.get_data(as_text=True)


def test_pop_by_email_redirect_of_a_contact_whose_number_is_no_number_has_no_phone(
    make_app, upstream, auth
):
    upstream.get(RECORD, json={"status": True, "contact": {**JAMES, "mobilephone": "+999 000"}})
    client = make_app(
        **CRM, CTI_POP_CONTACT_URL="https://crm.example/c/{id}?phone={phone}"
    ).test_client()

    answer = client.get("/pop?email=james@may.com", headers=auth)

    assert answer.status_code == 302
    assert answer.headers["Location"] == f"https://crm.example/c/{JAMES['id']}?phone="


@pytest.mark.parametrize(
    "header,waited",
    [
        ("t=1764000000.250", 1.75),  # nginx: seconds with milliseconds
        ("t=1764000000250000", 1.75),  # microseconds (Apache)
        ("1764000000250", 1.75),  # milliseconds (Heroku's router)
        ("t=1764000003.000", 0.0),  # the proxy's clock a little ahead: no wait
        ("t=1763990000.000", None),  # hours ago: a broken clock, not a queue
        ("t=abc", None),
        ("t=nan", None),
        ("", None),
        ("t=-5", None),
    ],
)
def test_queue_wait_is_read_from_the_proxys_stamp(header, waited):
    got = queue_seconds(header, now=1764000002.0)

    assert got == (None if waited is None else pytest.approx(waited))
