"""Retention (contract section 4, privacy and retention): finished journal entries older than
``CTI_JOURNAL_RETENTION`` go with their legs, in small batches, by one process at a time; pending
entries never; and nothing else the store holds grows without bound. Each on SQLite and on a real
PostgreSQL."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

import pytest
import requests

from middleware.services.retention import Part, Purge, parts
from middleware.settings import load_settings
from middleware.store import CallState, FinishedEntry, LegEvent
from middleware.store.sql import SqlStore

from .conftest import API_KEY
from .gunicorn_runner import gunicorn
from .journal_fakes import served_env

DAY = 86400.0


@pytest.fixture
def store(sql_database):
    store = SqlStore(sql_database)
    yield store
    store.close()


def finished(key: str, at: float, *, status: str = "delivered", legs: int = 2) -> FinishedEntry:
    """A cc_agent call finished (delivered or failed) at ``at``, with ``legs`` legs rung and
    ended."""
    names = [f"{key}-leg{n}" for n in range(legs)]
    return FinishedEntry(
        source="pbx",
        key=key,
        status=status,
        call_log={"CallType": "Missed", "Number": "+27721234567"},
        created_at=at - 60,
        finished_at=at,
        agent="6001",
        legs=tuple({"id": name, "agent": "6001", "billms": 0} for name in names),
        leg_events=tuple(
            LegEvent(name, event, {"type": "inbound"}, at - 30)
            for name in names
            for event in ("call:ring", "call:end")
        ),
    )


def one_leg(events, first_at) -> CallState:
    return CallState(
        call_log={"CallType": "Missed", "Number": "+27721234567"},
        agent="6001",
        legs=[{"id": e.leg, "agent": "6001", "billms": 0} for e in events],
        due_at=first_at,
        recording_url=None,
    )


def purge(store, retention: str = "1d", *, later: float = 0.0, **options) -> Purge:
    """A pass over the parts ``retention`` gives, with its clock ``later`` seconds ahead."""
    settings = load_settings({"CTI_JOURNAL_RETENTION": retention})
    clock = lambda: time.time() + later  # noqa: E731
    return Purge(store.retention, parts(settings, store), clock=clock, **options)


def keys(store) -> set[str]:
    return {entry.key for entry in store.journal.list(limit=1000)}


# what goes, what stays ---------------------------------------------------------------------------


def test_purge_deletes_exactly_the_finished_entries_older_than_the_retention_with_their_legs(
    store,
):
    now = time.time()
    # through the journal as the service writes it: pending, delivered, failed, a call's legs
    store.journal.add("ibizfone", "pending-now", {"CallType": "Inbound"})
    for key in ("delivered-now", "failed-now"):
        store.journal.add("ibizfone", key, {"CallType": "Inbound"})
    store.journal.add_leg("call-now", "call-now", "call:end", {}, summarise=one_leg)
    claimed = {e.key: e for e in store.journal.claim("me", lease=30, now=now + 1, limit=10)}
    assert set(claimed) == {"pending-now", "delivered-now", "failed-now", "call-now"}
    store.journal.release("me", [claimed["pending-now"].id])
    store.journal.delivered(claimed["delivered-now"].id, {"CallType": "Inbound"})
    store.journal.delivered(claimed["call-now"].id, {"CallType": "Missed"})
    store.journal.failed(claimed["failed-now"].id, "me", error="CRM said no")
    # and history: finished 3 days ago (due) and 12 hours ago (not yet), as seen 2 days on
    store.retention.add_finished(
        [
            finished("old-delivered", now - 3 * DAY),
            finished("old-failed", now - 3 * DAY, status="failed"),
            finished("young-delivered", now + 1.5 * DAY),
            finished("young-failed", now + 1.5 * DAY, status="failed"),
        ]
    )
    assert store.retention.counts()["journal_legs"] == 1 + 4 * 4

    # two days on, with a retention of one day: what finished now (or before) is due
    report = purge(store, "1d", later=2 * DAY).run()

    assert report.deleted["journal"] == 5
    assert keys(store) == {"pending-now", "young-delivered", "young-failed"}
    counts = store.retention.counts()
    assert counts["journal"] == 3
    assert counts["journal_legs"] == 2 * 4  # the young calls' legs, every other leg gone
    # a pending entry is never deleted, however old
    assert purge(store, "1d", later=400 * DAY).run().deleted["journal"] == 2
    assert keys(store) == {"pending-now"}


def test_a_failed_entry_counts_from_its_last_attempt_not_its_creation(store):
    store.journal.add("ibizfone", "retried", {"CallType": "Inbound"})
    now = time.time()
    # first attempt now, retried for 5 days, the last attempt 5 days on
    (entry,) = store.journal.claim("me", lease=30, now=now, limit=1)
    store.journal.retry_later(entry.id, "me", at=now + 5 * DAY, error="503")
    (entry,) = store.journal.claim("me", lease=30, now=now + 5 * DAY, limit=1)
    store.journal.failed(entry.id, "me", error="503")

    assert purge(store, "1d", later=5.5 * DAY).run().deleted["journal"] == 0
    assert keys(store) == {"retried"}
    assert purge(store, "1d", later=6.5 * DAY).run().deleted["journal"] == 1
    assert keys(store) == set()


def test_purge_works_in_small_batches(store):
    now = time.time()
    store.retention.add_finished(finished(f"old-{n}", now - 2 * DAY, legs=1) for n in range(23))

    report = purge(store, "1d", batch=5, pause=0).run()

    assert report.deleted["journal"] == 23
    assert report.batches["journal"] == 5  # 5 + 5 + 5 + 5 + 3
    assert store.retention.counts()["journal"] == store.retention.counts()["journal_legs"] == 0


def test_retention_zero_keeps_every_entry(store):
    now = time.time()
    store.retention.add_finished(finished(f"old-{n}", now - 900 * DAY) for n in range(3))

    report = purge(store, "0", later=900 * DAY).run()

    assert "journal" not in report.deleted
    assert len(keys(store)) == 3
    assert store.retention.counts()["journal_legs"] == 3 * 4


def test_callbacks_done_longer_ago_than_the_retention_go_too(store):
    from .test_callbacks_store import miss, settle

    miss(store, "m1", "+27721110001")
    miss(store, "m2", "+27721110002")
    done, still_open = sorted(settle(store), key=lambda callback: callback.number)
    store.callbacks.dismiss(done.id, now=time.time())

    assert purge(store, "0", later=900 * DAY).run().deleted.get("callbacks") is None
    assert purge(store, "1d", later=0.5 * DAY).run().deleted["callbacks"] == 0
    assert purge(store, "1d", later=2 * DAY).run().deleted["callbacks"] == 1
    assert store.callbacks.get(done.id) is None
    assert store.callbacks.get(still_open.id).status == "open"


def test_expired_claims_rate_windows_and_old_events_are_pruned_too(store):
    store.claims.claim("dedupe:6001:+27721234567", lease=10)
    token = store.claims.claim("idempotency:abc", lease=10).token
    store.claims.complete("idempotency:abc", token, status=201, body="{}", ttl=3600)
    store.claims.hit_rate("rate:6001", limit=20, window=60)
    store.events.add("screen-pop", "6001", {"phone": "+27721234567"})
    live = {"claims": 2, "rate_windows": 1, "events": 1}
    assert {k: store.retention.counts()[k] for k in live} == live

    # an hour on, nothing has expired but the dedupe claim (60 s of grace) and the rate window
    purge(store, later=3600 - 5).run()
    assert {k: store.retention.counts()[k] for k in live} == {
        "claims": 1,
        "rate_windows": 0,
        "events": 1,
    }
    # two hours on, the idempotency record has expired too, and the event is an hour old
    purge(store, later=2 * 3600 + 60).run()
    assert {k: store.retention.counts()[k] for k in live} == dict.fromkeys(live, 0)


# one process at a time ---------------------------------------------------------------------------


def test_the_lease_has_one_holder_until_it_is_released_or_expires(store):
    now = time.time()
    retention = store.retention

    assert retention.lease("retention", "a", ttl=30, now=now)
    assert not retention.lease("retention", "b", ttl=30, now=now + 1)
    assert retention.lease("retention", "a", ttl=30, now=now + 2)  # renewed
    retention.release("retention", "b")  # not b's: nothing happens
    assert not retention.lease("retention", "b", ttl=30, now=now + 31)
    assert retention.lease("retention", "b", ttl=30, now=now + 33)  # a's ran out
    assert not retention.lease("retention", "a", ttl=30, now=now + 34)
    retention.release("retention", "b")
    assert retention.lease("retention", "a", ttl=30, now=now + 35)


LEASE_SECONDS = 20.0


def _purging_process(database: str, purging) -> None:
    """A process whose pass stops inside its first batch, holding the lease, until it is killed
    (so other processes try meanwhile)."""
    store = SqlStore(database)

    def held_up(before: float, limit: int) -> int:
        purging.set()
        time.sleep(120)
        return store.retention.purge_journal(before, limit)

    Purge(store.retention, [Part("journal", held_up, DAY)], lease_seconds=LEASE_SECONDS).run()


def _trying_process(database: str, reports, ahead: float) -> None:
    """A pass by another process, its clock ``ahead`` seconds on: what it deleted, or None."""
    store = SqlStore(database)
    settings = load_settings({"CTI_JOURNAL_RETENTION": "1d"})
    clock = lambda: time.time() + ahead  # noqa: E731
    purge = Purge(store.retention, parts(settings, store), lease_seconds=LEASE_SECONDS, clock=clock)
    report = purge.run()
    reports.put(("second", report.deleted["journal"] if report else None))


def test_two_processes_never_purge_at_once_and_a_dead_holder_is_taken_over(sql_database):
    store = SqlStore(sql_database)
    store.retention.add_finished(finished(f"old-{n}", time.time() - 2 * DAY) for n in range(10))
    # spawned, not forked: a child forked from this worker inherits the locks its other threads
    # hold (a SQLite connection's among them), and the child's first garbage collection, closing
    # an inherited connection, then waited for ever (seen once in `make check`)
    spawn = multiprocessing.get_context("spawn")
    purging, reports = spawn.Event(), spawn.Queue()
    first = spawn.Process(target=_purging_process, args=(sql_database, purging))
    first.start()

    def another_pass(ahead: float = 0.0):
        process = spawn.Process(target=_trying_process, args=(sql_database, reports, ahead))
        process.start()
        try:
            return reports.get(timeout=30)
        finally:
            process.join(10)

    try:
        assert purging.wait(30)  # the first holds the lease, in the middle of its pass
        assert another_pass() == ("second", None)
        assert store.retention.counts()["journal"] == 10

        os.kill(first.pid, signal.SIGKILL)  # dies holding the lease
        first.join(10)
        assert another_pass() == ("second", None)  # until its lease runs out
        assert another_pass(ahead=LEASE_SECONDS + 1) == ("second", 10)
        assert store.retention.counts()["journal"] == 0
    finally:
        first.kill()
        store.close()


@pytest.mark.slow
def test_gunicorn_workers_purge_due_entries_in_the_background_within_a_minute(
    tmp_path, sql_database
):
    store = SqlStore(sql_database)
    now = time.time()
    store.retention.add_finished(finished(f"old-{n}", now - 2 * DAY) for n in range(1200))
    store.retention.add_finished([finished("young", now - 3600)])
    # pending (its CRM refuses connections): never deleted
    store.journal.add("ibizfone", "pending-old", {"CallType": "Inbound", "Number": "+27721234567"})
    env = served_env(sql_database, "http://127.0.0.1:9", CTI_JOURNAL_RETENTION="1d")
    try:
        with gunicorn(env, workers=2, cwd=tmp_path) as base:
            started = time.monotonic()
            for _ in range(4):  # a request starts each worker's background threads
                requests.get(f"{base}/api/v1/journal", headers={"X-API-Key": API_KEY}, timeout=10)
            while len(keys(store)) > 2 and time.monotonic() - started < 60:
                time.sleep(0.2)
            took = time.monotonic() - started
        assert keys(store) == {"young", "pending-old"}, f"after {took:.0f} s"
        assert store.retention.counts()["journal_legs"] == 4
        log_text = "".join(p.read_text() for p in tmp_path.glob("gunicorn-*.log"))
        assert "retention: deleted journal" in log_text
    finally:
        store.close()


# the file ----------------------------------------------------------------------------------------


def test_a_sqlite_file_gives_its_pages_back_after_a_purge(tmp_path):
    store = SqlStore(str(tmp_path / "cti.sqlite3"))
    try:
        now = time.time()
        assert store.retention.space().incremental
        empty = store.retention.space().pages  # the schema's tables and indexes, a page each
        store.retention.add_finished(finished(f"a-{n}", now - 2 * DAY) for n in range(2000))
        full = store.retention.space().pages

        report = purge(store, "1d").run()

        emptied = store.retention.space()
        assert report.pages > 0
        assert emptied.free_pages == 0
        assert emptied.pages <= empty < full / 9  # back to the size of a new file
        # a second round as big as the first leaves the file no bigger than the first did
        store.retention.add_finished(finished(f"b-{n}", now - 2 * DAY) for n in range(2000))
        assert store.retention.space().pages <= full * 1.02
        purge(store, "1d").run()
        assert store.retention.space().pages <= emptied.pages
    finally:
        store.close()
