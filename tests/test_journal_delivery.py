"""Delivery to SwitchTransact `/calls/log`: retried while it may succeed, failed when it cannot."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from middleware.errors import UpstreamUnavailable
from middleware.store.sql import SqlStore

from .conftest import CRM_KEY
from .fakeserver import Answer, FakeServer
from .journal_fakes import (
    CRM_ENV,
    HOOK,
    LOG_URL,
    call_end,
    crm_knows,
    crm_logs,
    deliver,
    entries,
    sent_logs,
)


@pytest.fixture
def settings():
    return {**CRM_ENV, "CTI_JOURNAL_MAX_ATTEMPTS": "5"}


def post_call(client, **fields):
    response = client.post("/api/v1/webhooks/pbx", json=call_end(**fields), headers=HOOK)
    assert response.status_code == 202


def test_crm_503_three_times_then_200_is_delivered_once(app, client, upstream, auth):
    crm_knows(upstream)
    crm_logs(upstream, (503, {"status": False}), (503, {}), (503, {}), (200, {"status": True}))
    post_call(client)

    outcomes = [deliver(app, later=hours * 3600) for hours in range(6)]

    assert [o["retry"] for o in outcomes[:3]] == [1, 1, 1]
    assert outcomes[3]["delivered"] == 1
    assert len(sent_logs(upstream)) == 4
    (entry,) = entries(client, auth)
    assert (entry["status"], entry["attempts"]) == ("delivered", 4)
    assert entry["delivered_at"] is not None


def test_retry_waits_with_backoff(app, client, upstream, auth):
    crm_knows(upstream)
    crm_logs(upstream, (503, {}), (200, {"status": True}))
    post_call(client)

    assert deliver(app)["retry"] == 1
    assert deliver(app) == {"delivered": 0, "retry": 0, "failed": 0}  # not due yet
    assert deliver(app, later=2)["delivered"] == 0  # the first wait is 2.5-5 s
    assert deliver(app, later=5.1)["delivered"] == 1


def test_retry_after_is_honoured(app, client, upstream):
    crm_knows(upstream)
    crm_logs(upstream, (429, {"status": False}, {"Retry-After": "120"}), (200, {"status": True}))
    post_call(client)

    assert deliver(app)["retry"] == 1
    assert deliver(app, later=110)["delivered"] == 0
    assert deliver(app, later=121)["delivered"] == 1


def test_crm_400_fails_at_once_and_retry_endpoint_puts_it_back(app, client, upstream, auth):
    crm_knows(upstream)
    crm_logs(
        upstream, (400, {"status": False, "error": "Number is required"}), (200, {"status": True})
    )
    post_call(client)

    assert deliver(app)["failed"] == 1
    assert deliver(app, later=86400)["delivered"] == 0
    (failed,) = entries(client, auth, status="failed")
    assert (failed["attempts"], failed["last_error"]) == (1, "switchtransact: Number is required")
    assert entries(client, auth, status="pending") == []

    response = client.post(f"/api/v1/journal/{failed['id']}/retry", headers=auth)

    assert response.status_code == 200
    assert (response.get_json()["status"], response.get_json()["attempts"]) == ("pending", 0)
    assert entries(client, auth, status="failed") == []
    assert deliver(app)["delivered"] == 1
    assert len(sent_logs(upstream)) == 2


def test_status_false_with_error_on_200_fails_at_once(app, client, upstream, auth):
    crm_knows(upstream)
    crm_logs(upstream, (200, {"status": False, "error": "Invalid EntityType"}))
    post_call(client)

    assert deliver(app)["failed"] == 1
    assert entries(client, auth)[0]["last_error"] == "switchtransact: Invalid EntityType"


def test_crm_rejecting_our_key_fails_at_once(app, client, upstream, auth):
    crm_knows(upstream)
    crm_logs(upstream, (401, {"status": False, "error": "Not authorized to make this API call."}))
    post_call(client)

    assert deliver(app)["failed"] == 1


@pytest.mark.parametrize(
    "failure",
    [requests.ConnectionError("connection refused"), requests.ReadTimeout("read timed out")],
)
def test_refused_and_timed_out_deliveries_are_retried(app, client, upstream, auth, failure):
    crm_knows(upstream)
    upstream.post(LOG_URL, body=failure)
    upstream.post(LOG_URL, json={"status": True})
    post_call(client)

    assert deliver(app)["retry"] == 1
    assert entries(client, auth)[0]["last_error"].startswith("switchtransact: ")
    assert deliver(app, later=3600)["delivered"] == 1


def test_max_attempts_then_failed(app, client, upstream, auth):
    crm_knows(upstream)
    crm_logs(upstream, (502, {}))
    post_call(client)

    for hour in range(10):
        deliver(app, later=hour * 3600)

    assert len(sent_logs(upstream)) == 5  # CTI_JOURNAL_MAX_ATTEMPTS
    (entry,) = entries(client, auth, status="failed")
    assert entry["attempts"] == 5


def test_crm_lookup_failure_is_retried_not_logged_without_the_contact(app, client, upstream, auth):
    upstream.get(f"{CRM_ENV['CTI_CRM_URL']}/calls/record", status=503, json={})
    post_call(client)

    assert deliver(app)["retry"] == 1
    assert sent_logs(upstream) == []
    assert entries(client, auth)[0]["last_error"].startswith("contact lookup: ")


def test_last_error_carries_no_credential(app, client, upstream, auth):
    crm_knows(upstream)
    crm_logs(upstream, (400, {"status": False, "error": f"bad key {CRM_KEY}"}))
    post_call(client)
    deliver(app)

    (entry,) = entries(client, auth)
    assert entry["status"] == "failed"
    assert CRM_KEY not in entry["last_error"]


def test_retry_of_unknown_or_delivered_entries(app, client, upstream, auth):
    crm_knows(upstream)
    crm_logs(upstream)
    post_call(client)
    deliver(app)
    (entry,) = entries(client, auth)

    assert client.post("/api/v1/journal/999/retry", headers=auth).status_code == 404
    delivered = client.post(f"/api/v1/journal/{entry['id']}/retry", headers=auth)
    assert delivered.status_code == 409
    assert delivered.get_json()["code"] == "conflict"
    assert client.post(f"/api/v1/journal/{entry['id']}/retry").status_code == 401


def test_journal_list_is_newest_first_with_cursor_pages(app, client, auth):
    for n in range(5):
        post_call(client, id=f"call-{n}")

    first = client.get("/api/v1/journal?limit=2", headers=auth).get_json()
    second = client.get(f"/api/v1/journal?limit=2&cursor={first['next']}", headers=auth).get_json()
    third = client.get(f"/api/v1/journal?limit=2&cursor={second['next']}", headers=auth).get_json()

    keys = [e["key"] for page in (first, second, third) for e in page["entries"]]
    assert keys == ["call-4", "call-3", "call-2", "call-1", "call-0"]
    assert third["next"] is None
    entry = first["entries"][0]
    assert set(entry) >= {
        "id",
        "key",
        "source",
        "status",
        "attempts",
        "last_error",
        "created_at",
        "delivered_at",
        "call_log",
    }
    assert (entry["source"], entry["status"], entry["attempts"]) == ("pbx", "pending", 0)
    assert entry["created_at"].endswith("Z")


def test_journal_list_defaults_to_100_and_needs_a_key(app, client, auth):
    store = app.extensions["cti"].store
    for n in range(105):
        store.journal.add("pbx", f"k{n}", {"CallType": "Inbound"})

    page = client.get("/api/v1/journal", headers=auth).get_json()

    assert len(page["entries"]) == 100
    assert page["next"] is not None
    assert client.get("/api/v1/journal").status_code == 401


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=1001", "limit=x", "status=lost", "cursor=abc", "cursor=-1", "colour=red"],
)
def test_journal_list_refuses_bad_queries(client, auth, query):
    response = client.get(f"/api/v1/journal?{query}", headers=auth)

    assert response.status_code == 422
    assert response.get_json()["code"] == "validation_error"


def test_journal_list_accepts_limit_1000(client, auth):
    assert client.get("/api/v1/journal?limit=1000", headers=auth).status_code == 200


def test_journal_deliver_command_runs_one_pass(runner, client, upstream):
    crm_knows(upstream)
    crm_logs(upstream)
    post_call(client, id="a")
    post_call(client, id="b")

    result = runner.invoke(args=["journal", "deliver"])

    assert result.exit_code == 0, result.output
    assert "delivered 2" in result.output
    assert len(sent_logs(upstream)) == 2


def test_claim_of_a_dead_process_is_taken_up_after_its_lease(app, client, upstream, auth):
    crm_knows(upstream)
    crm_logs(upstream)
    post_call(client)
    delivery = app.extensions["cti"].delivery
    store = app.extensions["cti"].store
    now = time.time()
    assert store.journal.claim("dead-host:1:x", lease=delivery.lease, now=now) != []

    assert deliver(app)["delivered"] == 0  # still claimed
    assert delivery.lease <= 60
    assert delivery.deliver_due(now=now + delivery.lease + 0.01)["delivered"] == 1
    assert len(sent_logs(upstream)) == 1


def _logged_while(store, upstream, seen: list):
    """``POST /calls/log`` that notes, for each log received, the entries then marked delivered."""

    def answer(request):
        seen.append({e.key for e in store.journal.list(status="delivered", limit=1000)})
        return 200, {}, '{"status": true}'

    upstream.add_callback("POST", LOG_URL, callback=answer)


def test_a_claimed_batch_is_sent_one_at_a_time_each_marked_delivered_before_the_next(
    app, client, upstream, auth
):
    crm_knows(upstream)
    store = app.extensions["cti"].store
    seen: list[set] = []
    _logged_while(store, upstream, seen)
    keys = [f"call-{n}" for n in range(5)]
    for key in keys:
        post_call(client, id=key)

    assert deliver(app)["delivered"] == 5

    # When the CRM got log n, the n logs before it were committed as delivered (oldest first).
    assert seen == [set(keys[:n]) for n in range(5)]
    assert {(e["status"], e["attempts"]) for e in entries(client, auth)} == {("delivered", 1)}


def test_a_batch_whose_window_passed_gives_the_rest_back_untried(app, client, upstream, auth):
    crm_knows(upstream)
    crm_logs(upstream)
    delivery = app.extensions["cti"].delivery
    delivery.batch_window = 0.0  # every entry after the first is too late to start
    released: list[list[int]] = []
    release = delivery.journal.release
    delivery.journal.release = lambda owner, ids: released.append(ids) or release(owner, ids)
    for n in range(3):
        post_call(client, id=f"call-{n}")

    assert deliver(app)["delivered"] == 3

    assert [len(ids) for ids in released] == [2, 1]
    assert len(sent_logs(upstream)) == 3
    assert {(e["status"], e["attempts"]) for e in entries(client, auth)} == {("delivered", 1)}


def test_stop_mid_batch_gives_back_what_was_not_started(app, client, upstream, auth):
    crm_knows(upstream)
    delivery = app.extensions["cti"].delivery
    stop = threading.Event()

    def answer(request):
        stop.set()  # the process is asked to stop while the first log is in flight
        return 200, {}, '{"status": true}'

    upstream.add_callback("POST", LOG_URL, callback=answer)
    for n in range(3):
        post_call(client, id=f"call-{n}")

    assert delivery.deliver_due(stop=stop)["delivered"] == 1

    rows = {e["key"]: (e["status"], e["attempts"]) for e in entries(client, auth)}
    assert rows == {
        "call-0": ("delivered", 1),
        "call-1": ("pending", 0),
        "call-2": ("pending", 0),
    }
    assert deliver(app)["delivered"] == 2  # due at once, for this or any deliverer


def test_a_store_failure_mid_batch_keeps_the_entry_in_flight_claimed(app, client, upstream, auth):
    crm_knows(upstream)
    crm_logs(upstream)
    delivery = app.extensions["cti"].delivery
    store = app.extensions["cti"].store
    assert delivery.journal is store.journal
    for n in range(3):
        post_call(client, id=f"call-{n}")

    def unavailable(entry_id, call_log):
        raise UpstreamUnavailable("sqlite", "down")

    store.journal.delivered = unavailable  # the CRM took the log, the mark cannot be written
    with pytest.raises(UpstreamUnavailable):
        delivery.deliver_due()
    del store.journal.delivered

    # The sent one stays claimed until its lease runs out (it may be sent again only then);
    # the two never started are due at once, their attempt not counted.
    assert len(sent_logs(upstream)) == 1
    assert [e.key for e in store.journal.claim("other", lease=30, now=time.time(), limit=9)] == [
        "call-1",
        "call-2",
    ]
    [in_flight] = store.journal.claim(
        "other", lease=30, now=time.time() + delivery.batch_lease, limit=9
    )
    assert (in_flight.key, in_flight.attempts) == ("call-0", 2)


def test_concurrent_claimers_never_get_the_same_entry(tmp_path):
    path = str(tmp_path / "claims.sqlite3")
    SqlStore(path)
    for n in range(200):
        SqlStore(path).journal.add("pbx", f"k{n}", {})
    claimed: list[int] = []
    lock = threading.Lock()

    def claimer(name):
        store = SqlStore(path)
        while batch := store.journal.claim(name, lease=30, now=time.time(), limit=7):
            with lock:
                claimed.extend(entry.id for entry in batch)

    threads = [threading.Thread(target=claimer, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(claimed) == list(range(1, 201))


def test_background_deliverer_sends_within_two_seconds(make_app):
    with FakeServer(
        lambda seen: Answer(
            200, {"status": True} if seen.path == "/calls/log" else {"status": False}
        )
    ) as crm:
        app = make_app(
            CTI_CRM="switchtransact",
            CTI_CRM_URL=crm.url,
            CTI_CRM_API_KEY=CRM_KEY,
            CTI_JOURNAL_SETTLE_SECONDS="0",  # complete when it ends (test_journal_legs: settling)
        )
        app.config["JOURNAL_BACKGROUND"] = True
        try:
            started = time.monotonic()
            post_call(app.test_client())
            while crm.count("/calls/log") == 0:
                assert time.monotonic() - started < 2, "not delivered within 2 s"
                time.sleep(0.01)
        finally:
            app.extensions["cti"].deliverer.stop()
        (log,) = [s for s in crm.seen if s.path == "/calls/log"]
        assert log.json()["CallType"] == "Inbound"
