"""The callbacks' store part on SQLite and PostgreSQL: one callback per number that is not done,
enforced by the database; each journal entry settled once, however many processes settle at once;
retention's ``purge_done`` and privacy's ``for_number`` and ``erase_number``."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from middleware.services.callbacks import effect
from middleware.store.migrations import VERSION
from middleware.store.sql import SqlStore, is_postgresql
from middleware.store.sql.tables import callbacks as callbacks_table

A, B = "+27721234567", "+27829876543"


@pytest.fixture
def store(sql_database):
    store = SqlStore(sql_database)
    yield store
    store.close()


def miss(store, key: str, number: str = A, status: str = "Missed", agent=None):
    store.journal.add("ibizfone", key, {"CallType": status, "Number": number}, agent=agent)


def settle(store, now: float | None = None):
    changed, more = store.callbacks.settle(effect, now=now or time.time() + 1)
    assert not more
    return changed


def engine_of(database: str):
    if is_postgresql(database):
        return create_engine(make_url(database).set(drivername="postgresql+psycopg"))
    return create_engine(f"sqlite:///{database}")


def test_the_database_refuses_a_second_callback_of_a_number_that_is_not_done(store, sql_database):
    row = {
        "number": A,
        "status": "open",
        "missed": 1,
        "first_missed_at": 1.0,
        "last_missed_at": 1.0,
    }
    engine = engine_of(sql_database)
    try:
        with engine.begin() as conn:
            conn.execute(insert(callbacks_table), [{**row, "status": "done", "done_at": 2.0}] * 2)
            conn.execute(insert(callbacks_table), row)
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(insert(callbacks_table), {**row, "status": "assigned", "agent": "6001"})
    finally:
        engine.dispose()
    assert [c.status for c in store.callbacks.for_number(A)] == ["done", "done", "open"]


def test_each_entry_is_settled_once_and_only_once_its_log_is_made(store):
    miss(store, "m1")
    store.journal.add_leg(  # a cc_agent call whose log is due in an hour
        "c1",
        "c1",
        "call:ring",
        {"type": "queue", "cid_num": "0829876543"},
        summarise=lambda events, first: _state(B, due=time.time() + 3600),
    )

    (opened,) = settle(store)
    assert (opened.number, opened.missed, opened.status) == (A, 1, "open")
    assert settle(store) == []  # settled already
    (later,) = settle(store, now=time.time() + 3601)
    assert (later.number, later.missed) == (B, 1)
    assert len(store.callbacks.list(statuses=("open",))) == 2


def _state(number: str, *, due: float):
    from middleware.store import CallState

    return CallState(
        call_log={"CallType": "Missed", "Number": number},
        agent=None,
        legs=[],
        due_at=due,
        recording_url=None,
    )


def test_misses_of_one_number_settled_by_several_processes_at_once_are_one_callback(sql_database):
    """Separate store objects (engines, pools), as separate workers or hosts have, each settling
    its own entry of the number at the same moment."""
    stores = [SqlStore(sql_database) for _ in range(6)]
    try:
        for n, each in enumerate(stores):
            miss(each, f"m{n}")
        start = threading.Barrier(len(stores))
        errors: list[BaseException] = []

        def run(each):
            try:
                start.wait()
                each.callbacks.settle(effect, now=time.time() + 1, limit=1)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(each,)) for each in stores]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert not errors
        while settle(stores[0]):  # any entry a pass skipped (locked by another) is left queued
            pass
        (callback,) = stores[0].callbacks.for_number(A)
        assert (callback.missed, callback.status) == (6, "open")
    finally:
        for each in stores:
            each.close()


def test_an_answer_closes_only_a_callback_missed_before_it_was_logged(store):
    miss(store, "m1")
    miss(store, "a1", status="Inbound", agent="6001")
    miss(store, "m2", B)
    changes = settle(store)
    assert [(c.number, c.status) for c in changes] == [(A, "open"), (A, "done"), (B, "open")]
    closed, opened = changes[1:]
    assert (closed.number, closed.status, closed.done_how, closed.done_by) == (
        A,
        "done",
        "answered",
        "6001",
    )
    assert opened.status == "open"
    assert store.callbacks.called(B, "6002", now=opened.first_missed_at - 1) == []
    (called,) = store.callbacks.called(B, "6002", now=time.time())
    assert (called.done_how, called.done_by) == ("called", "6002")


def test_purge_done_deletes_a_small_batch_of_those_done_before_the_time(store):
    for n, number in enumerate(("+27721110001", "+27721110002", "+27721110003", A)):
        miss(store, f"m{n}", number)
    first, second, third, still_open = sorted(settle(store), key=lambda c: c.number)
    for n, callback in enumerate((first, second, third)):
        store.callbacks.dismiss(callback.id, now=1000.0 + n)

    assert store.callbacks.purge_done(1001.5, 1) == 1  # the oldest of the two due
    assert store.callbacks.get(first.id) is None
    assert store.callbacks.purge_done(1001.5, 10) == 1
    assert store.callbacks.purge_done(1001.5, 10) == 0
    assert store.callbacks.get(third.id) is not None
    assert store.callbacks.get(still_open.id) is not None
    assert store.callbacks.purge_done(time.time() + 10, 10) == 1  # never one that is not done
    assert store.callbacks.get(still_open.id).status == "open"


def test_for_number_and_erase_number_see_and_delete_every_callback_of_the_number(store):
    miss(store, "m1")
    (first,) = settle(store)
    store.callbacks.dismiss(first.id, now=time.time())
    miss(store, "m2")
    miss(store, "m3", B)
    settle(store)

    assert [(c.number, c.status) for c in store.callbacks.for_number(A)] == [
        (A, "done"),
        (A, "open"),
    ]
    assert store.callbacks.erase_number(A) == 2
    assert store.callbacks.for_number(A) == []
    assert store.callbacks.erase_number(A) == 0
    assert [c.number for c in store.callbacks.for_number(B)] == [B]


# schema version 6: an entry is marked for the callbacks in its own row ------------------------


def _as_version_5(database: str) -> None:
    """The database as schema version 5 left it: no ``for_callbacks``; the entries the callbacks
    had yet to see queued in ``callback_queue``."""
    engine = engine_of(database)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO callback_queue (entry_id) SELECT id FROM journal"))
            conn.execute(text("DROP INDEX journal_for_callbacks"))
            conn.execute(text("ALTER TABLE journal DROP COLUMN for_callbacks"))
            conn.execute(text("UPDATE schema_version SET version = 5"))
    finally:
        engine.dispose()


def test_entries_a_version_5_database_queued_are_each_settled_once_after_the_upgrade(
    sql_database,
):
    before = SqlStore(sql_database)
    miss(before, "m1")
    miss(before, "m2", B)
    before.close()
    _as_version_5(sql_database)

    store = SqlStore(sql_database)  # upgrades to version 6
    try:
        with store.db.reading() as conn:
            assert conn.execute(text("SELECT version FROM schema_version")).scalar() == VERSION
            assert conn.execute(text("SELECT count(*) FROM callback_queue")).scalar() == 0
        assert sorted((c.number, c.missed) for c in settle(store)) == [(A, 1), (B, 1)]
        assert settle(store) == []
    finally:
        store.close()


def test_what_a_host_of_the_previous_build_queues_during_a_rolling_deploy_is_settled_once(
    store, sql_database
):
    """Such a host inserts its entry without ``for_callbacks`` and a ``callback_queue`` row."""
    miss(store, "m1")
    (first,) = settle(store)
    miss(store, "m2")
    miss(store, "m3", B)
    engine = engine_of(sql_database)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE journal SET for_callbacks = NULL WHERE key = 'm2'"))
            conn.execute(
                text(
                    "INSERT INTO callback_queue (entry_id) SELECT id FROM journal WHERE key = 'm2'"
                )
            )
    finally:
        engine.dispose()

    changed = settle(store)
    assert sorted((c.number, c.missed) for c in changed) == [(A, 2), (B, 1)]
    assert settle(store) == []
    (again,) = store.callbacks.for_number(A)
    assert (again.id, again.missed) == (first.id, 2)
    with store.db.reading() as conn:
        assert conn.execute(text("SELECT count(*) FROM callback_queue")).scalar() == 0
