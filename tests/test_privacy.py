"""Contract section 4, privacy: access and erasure by number (API and CLI), on each store (SQLite,
PostgreSQL, Redis beside SQL), in one process. Across workers and hosts: test_privacy_processes.py.
"""

from __future__ import annotations

import json
import logging
import threading

import pytest
from sqlalchemy import select, text

from middleware.runtime.logs import JsonFormatter
from middleware.store.migrations import VERSION
from middleware.store.sql import SqlStore
from middleware.store.sql.tables import journal, journal_legs, schema_version

from .conftest import API_KEY, CC_AGENT_KEY, CC_AGENT_URL
from .contacts import JAMES_CONTACT
from .journal_fakes import (
    CRM_ENV,
    HOOK,
    JAMES,
    LOG_URL,
    RECORD_URL,
    call_end,
    crm_knows,
    crm_logs,
    deliver,
    entries,
    sent_logs,
)
from .privacy_checks import (
    JAMES_NUMBER,
    JAMES_SPELLINGS,
    NOMSA_NUMBER,
    spellings_in,
    stored_text,
)

NOMSA = {"id": "c-2", "firstname": "Nomsa", "lastname": "Dlamini", "mobilephone": NOMSA_NUMBER}
KNOWN = {JAMES_NUMBER: JAMES, NOMSA_NUMBER: NOMSA}
KEY = {"X-API-Key": API_KEY}
CC_AGENT = {"CTI_DIALER": "cc_agent", "CTI_CC_AGENT_URL": CC_AGENT_URL}
ORIGINATE = f"{CC_AGENT_URL}/api/cc_agent/originate"


def ivr_push(client, calllogid: str, number: str, status: str = "ANSWER"):
    query = {
        "calllogid": calllogid,
        "callnumber": number,
        "date": "2025-07-05",
        "time": "10:00:00",
        "callstatus": status,
        "callduration": "60",
        "token": HOOK["X-Webhook-Token"],
    }
    answer = client.get("/api/v1/webhooks/ibizfone", query_string=query)
    assert answer.status_code == 200, answer.data


def pbx(client, event: dict):
    answer = client.post("/api/v1/webhooks/pbx", json=event, headers=HOOK)
    assert answer.status_code == 202, answer.get_json()


def record_requests(upstream) -> int:
    return sum(call.request.url.startswith(RECORD_URL) for call in upstream.calls)


def log_text(caplog) -> str:
    """Every captured record as our JSON formatter writes it (structured fields included)."""
    formatter = JsonFormatter()
    return "\n".join(formatter.format(record) for record in caplog.records)


@pytest.fixture
def served(make_app, upstream, shared_env):
    """An app on each store, a CRM that knows James and Nomsa and takes every log, a cc_agent
    dialer; James has an IVR call, a cc_agent call (ring and end: a screen pop and legs), a
    cached lookup and a click-to-call with an Idempotency-Key; Nomsa an IVR call."""
    crm_knows(upstream, KNOWN)
    crm_logs(upstream)
    upstream.get(ORIGINATE, json={"success": True, "uuid": "u-1"})
    app = make_app(**CRM_ENV, **CC_AGENT, CTI_CC_AGENT_API_KEY=CC_AGENT_KEY, **shared_env)
    client = app.test_client()
    ivr_push(client, "ivr-james", "0721234567")
    ivr_push(client, "ivr-nomsa", "0829876543")
    ring = call_end(event="call:ring", id="leg-1", dst_num="6000", ts=1751710400)
    pbx(client, ring)
    pbx(client, call_end(id="leg-1"))
    assert client.get("/api/v1/contacts/lookup?phone=0721234567", headers=KEY).status_code == 200
    click = client.post(
        "/api/v1/calls",
        json={"to": "072 123 4567", "agent": "6000"},
        headers={**KEY, "Idempotency-Key": "click-1"},
    )
    assert click.status_code == 201, click.get_json()
    return app, client


def test_access_lists_and_erasure_removes_the_callbacks_of_the_number(served):
    app, client = served
    ivr_push(client, "ivr-missed-1", "0829876543", "MISSED")
    ivr_push(client, "ivr-missed-2", "082 987 6543", "DROPPED")
    [callback] = client.get("/api/v1/callbacks", headers=KEY).get_json()["callbacks"]
    assert (callback["number"], callback["missed"]) == (NOMSA_NUMBER, 2)

    access = client.get("/api/v1/privacy/numbers/0829876543", headers=KEY).get_json()
    erased = client.delete("/api/v1/privacy/numbers/0829876543", headers=KEY).get_json()

    assert [c["id"] for c in access["callbacks"]] == [callback["id"]]
    assert access["callbacks"][0]["missed"] == 2
    assert erased["erased"]["callbacks"] == 1
    assert client.get("/api/v1/callbacks", headers=KEY).get_json()["callbacks"] == []
    after = client.get("/api/v1/privacy/numbers/0829876543", headers=KEY).get_json()
    assert after["callbacks"] == [] and after["journal"] == []


@pytest.mark.parametrize("spelling", ["072 123 4567", "0721234567", "+27721234567", "27721234567"])
def test_access_shows_every_journal_entry_of_the_number_and_its_cached_contact(served, spelling):
    app, client = served

    answer = client.get(f"/api/v1/privacy/numbers/{spelling}", headers=KEY)

    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
    listed = [e for e in entries(client, KEY) if e["call_log"]["Number"] == JAMES_NUMBER]
    assert [e["key"] for e in listed] == ["leg-1", "ivr-james"]
    assert answer.get_json() == {
        "number": JAMES_NUMBER,
        "journal": listed,  # as the journal API lists them, legs included
        "callbacks": [],  # James's calls were answered: no callback
        "contact": JAMES_CONTACT,
    }


def test_erasure_leaves_the_number_in_no_answer_stored_row_or_log_line(served, upstream, caplog):
    app, client = served
    store = app.extensions["cti"].store
    assert spellings_in(stored_text(store)), "the setup stored the number"

    answer = client.delete("/api/v1/privacy/numbers/%2B27%2072%20123%204567", headers=KEY)

    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.get_json() == {
        "number": JAMES_NUMBER,
        "erased": {"journal": 2, "callbacks": 0, "cache": 1},
    }
    stored = stored_text(store)
    assert spellings_in(stored) == []
    assert NOMSA_NUMBER in stored  # another number is untouched
    after = client.get("/api/v1/privacy/numbers/0721234567", headers=KEY)
    assert after.get_json() == {
        "number": JAMES_NUMBER,
        "journal": [],
        "callbacks": [],
        "contact": None,
    }
    listing = entries(client, KEY)
    assert [e["key"] for e in listing] == ["ivr-nomsa"]
    assert spellings_in(json.dumps(listing)) == []
    # The erasure's own line: the counts, never the number.
    (line,) = [r for r in caplog.records if r.name == "middleware.services.privacy"]
    assert line.cti["erased"] == {
        "journal": 2,
        "events": 1,
        "claims": 2,
        "callbacks": 0,
        "board": 0,  # James's call ended: the board's leg no longer holds his number
        "cache": 1,
    }
    assert spellings_in(log_text(caplog)) == []


def test_after_an_erasure_the_next_lookup_asks_the_crm_in_json_and_in_text(served, upstream):
    app, client = served
    client.delete("/api/v1/privacy/numbers/0721234567", headers=KEY)
    asked = record_requests(upstream)

    first = client.get("/api/v1/contacts/lookup?phone=072 123 4567", headers=KEY)
    assert first.get_json()["cached"] is False
    assert record_requests(upstream) == asked + 1
    client.delete("/api/v1/privacy/numbers/0721234567", headers=KEY)
    text_form = client.get("/api/v1/contacts/lookup?phone=0721234567&format=text", headers=KEY)
    assert text_form.get_data(as_text=True) == "James May (My Company name)"
    assert record_requests(upstream) == asked + 2
    # Nomsa's entry was never touched by either erasure.
    assert [e["key"] for e in entries(client, KEY)] == ["ivr-nomsa"]


def test_a_replayed_click_to_call_answer_is_erased_with_the_number(served, upstream):
    app, client = served
    client.delete("/api/v1/privacy/numbers/0721234567", headers=KEY)

    again = client.post(
        "/api/v1/calls",
        json={"to": "072 123 4567", "agent": "6000"},
        headers={**KEY, "Idempotency-Key": "click-1"},
    )

    assert again.status_code == 201  # placed anew: the stored answer, with the number, is gone
    assert "Idempotent-Replayed" not in again.headers
    assert sum(c.request.url.startswith(ORIGINATE) for c in upstream.calls) == 2


def test_a_pending_entry_erased_is_never_delivered(served, upstream):
    app, client = served
    assert [e["status"] for e in entries(client, KEY)] == ["pending"] * 3

    client.delete("/api/v1/privacy/numbers/0721234567", headers=KEY)
    outcomes = deliver(app, later=60)

    assert outcomes == {"delivered": 1, "retry": 0, "failed": 0}
    assert [log["Number"] for log in sent_logs(upstream)] == [NOMSA_NUMBER]


def test_an_entry_erased_while_its_delivery_looks_the_caller_up_is_not_sent(make_app, upstream):
    """The deliverer holds the entry's claim and waits on the CRM for the caller's contact; the
    erasure lands meanwhile: the deliverer finds its claim gone and sends nothing."""
    looking_up, release = threading.Event(), threading.Event()

    def slow_record(request):
        looking_up.set()
        assert release.wait(10)
        return 200, {}, json.dumps({"status": True, "contact": JAMES})

    upstream.add_callback("GET", RECORD_URL, callback=slow_record)
    crm_logs(upstream)
    app = make_app(**CRM_ENV, CTI_LOOKUP_TIMEOUT="10")
    client = app.test_client()
    ivr_push(client, "ivr-james", "0721234567")
    outcomes = {}
    delivering = threading.Thread(target=lambda: outcomes.update(deliver(app)))
    delivering.start()
    assert looking_up.wait(10)

    erased = client.delete("/api/v1/privacy/numbers/0721234567", headers=KEY)
    release.set()
    delivering.join(10)

    assert erased.get_json()["erased"]["journal"] == 1
    assert outcomes == {"delivered": 0, "retry": 0, "failed": 0, "dropped": 1}
    assert not any(call.request.url == LOG_URL for call in upstream.calls)


def test_the_legs_of_a_call_whose_log_is_not_made_yet_are_erased(make_app, upstream, sql_database):
    crm_knows(upstream, KNOWN)
    app = make_app(**CRM_ENV, CTI_DATABASE=sql_database)
    client = app.test_client()
    pbx(client, call_end(event="call:ring", id="leg-1", dst_num="6000", ts=1751710400))
    pbx(client, call_end(event="call:answer", id="leg-1", ts=1751710410))
    pbx(client, call_end(event="call:ring", id="leg-9", cid_num="0829876543", ts=1751710400))
    store = app.extensions["cti"].store

    answer = client.delete("/api/v1/privacy/numbers/0721234567", headers=KEY)

    assert answer.get_json()["erased"]["journal"] == 1
    with store.db.reading() as conn:
        legs = conn.execute(select(journal_legs.c.leg, journal_legs.c.fields)).all()
    assert [leg for leg, _ in legs] == ["leg-9"]
    assert spellings_in(stored_text(store)) == []


def test_an_invalid_number_answers_422_and_erases_nothing(served):
    app, client = served
    for method in (client.get, client.delete):
        answer = method("/api/v1/privacy/numbers/0721", headers=KEY)
        assert answer.status_code == 422
        assert answer.get_json()["code"] == "invalid_number"
    assert len(entries(client, KEY)) == 3


def test_privacy_erase_command_erases_and_prints_the_counts(served, upstream):
    app, client = served

    result = app.test_cli_runner().invoke(args=["privacy", "erase", "--phone", "072 123 4567"])

    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "number": "+27*******4567",  # masked, as log lines write it
        "erased": {"journal": 2, "callbacks": 0, "cache": 1},
    }
    assert spellings_in(stored_text(app.extensions["cti"].store)) == []
    refused = app.test_cli_runner().invoke(args=["privacy", "erase", "--phone", "not a number"])
    assert refused.exit_code == 1
    assert "Invalid phone number" in refused.output


def test_schema_version_4_gives_existing_entries_their_number(sql_database):
    """A database of schema version 3 (before the ``number`` column) is upgraded at start-up and
    its entries found by number."""
    old = SqlStore(sql_database)
    with old.db.transaction() as conn:
        conn.execute(text("DROP INDEX journal_number"))
        conn.execute(text("ALTER TABLE journal DROP COLUMN number"))
        conn.execute(schema_version.update().values(version=3))
        for key, body in (
            ("a", {"Number": JAMES_NUMBER}),
            ("b", {"Number": NOMSA_NUMBER}),
            ("c", {}),
        ):
            conn.execute(
                text(
                    "INSERT INTO journal (source, key, status, attempts, next_attempt_at,"
                    " created_at, call_log) VALUES ('pbx', :key, 'pending', 0, 0, 0, :body)"
                ),
                {"key": key, "body": json.dumps(body)},
            )
    old.close()

    store = SqlStore(sql_database)

    with store.db.reading() as conn:
        assert conn.execute(schema_version.select()).scalar() == VERSION
        numbers = dict(conn.execute(select(journal.c.key, journal.c.number)).all())
    assert numbers == {"a": JAMES_NUMBER, "b": NOMSA_NUMBER, "c": None}
    assert [e.key for e in store.journal_numbers.for_number(JAMES_NUMBER)] == ["a"]


def test_no_spelling_helper_misses_the_setup(served):
    """The checks above are only as good as ``stored_text``: it sees the number where it is."""
    app, _ = served
    stored = stored_text(app.extensions["cti"].store)
    assert {"+27721234567", "0721234567"} <= set(spellings_in(stored, JAMES_SPELLINGS))


def test_logs_of_the_whole_run_hold_no_whole_number(served, caplog):
    app, client = served
    client.get("/api/v1/privacy/numbers/0721234567", headers=KEY)
    client.delete("/api/v1/privacy/numbers/0721234567", headers=KEY)
    logging.getLogger("tests").info("caller %s rang", "072 123 4567")

    text_logged = log_text(caplog)

    assert spellings_in(text_logged) == []
    assert "caller *** *** 4567 rang" in text_logged
