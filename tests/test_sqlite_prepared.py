"""SQLite's prepared statements (``Database.prepared``; ``sqlite._Direct``): the journal's, the
board's and the event log's hot statements run straight through the driver, and must answer
exactly as SQLAlchemy does, and fail as it does (a database that fails is
``UpstreamUnavailable``; a write's own error is its own)."""

from __future__ import annotations

import pytest
from sqlalchemy import event, select
from sqlalchemy import exc as sa_exc

from middleware.errors import UpstreamUnavailable
from middleware.store.sql import journal as sql_journal
from middleware.store.sql.journal_rows import new_entry
from middleware.store.sql.sqlite import SqliteDatabase
from middleware.store.sql.tables import callback_queue, events, journal


@pytest.fixture
def db(tmp_path):
    database = SqliteDatabase(str(tmp_path / "cti.sqlite3"))
    yield database
    database.close()


def _statements_through_sqlalchemy(db) -> list[str]:
    """The statements SQLAlchemy executes from now on (its cursor event)."""
    seen: list[str] = []
    event.listen(db._engine(), "before_cursor_execute", lambda *args: seen.append(args[2]))
    return seen


def _insert(db):
    return (
        db.insert(journal)
        .on_conflict_do_nothing(index_elements=["source", "key"])
        .returning(*journal.c)
    )


def _columns(key: str) -> dict:
    return new_entry(
        "pbx", key, 1751710522.25, due_at=1751710523.5, call_log={"Number": "+27721234567"}
    )


def test_an_insert_returning_answers_the_row_sqlalchemy_answers(db):
    prepared = db.prepared(_insert(db))
    with db.transaction() as conn:
        seen = _statements_through_sqlalchemy(db)
        direct = prepared(conn, _columns("a")).first()
        again = prepared(conn, _columns("a"))  # on conflict: nothing, and no row
        assert seen == []  # straight through the driver
        through_sqlalchemy = conn.execute(_insert(db), _columns("b")).first()
        assert len(seen) == 1
    assert direct._asdict() == {**through_sqlalchemy._asdict(), "id": direct.id, "key": "a"}
    assert direct.id < through_sqlalchemy.id
    assert isinstance(direct.next_attempt_at, float) and direct.next_attempt_at == 1751710523.5
    assert (again.first(), again.rowcount) == (None, 0)


def test_a_select_and_an_update_answer_rows_and_counts(db):
    by_key = db.prepared(sql_journal._JOURNAL_BY_KEY)
    delivered = db.prepared(sql_journal._JOURNAL_DELIVERED)
    with db.transaction() as conn:
        entry = conn.execute(_insert(db), _columns("a")).one()
        found = by_key(conn, {"source": "pbx", "key": "a"})
        assert found.one()._asdict() == entry._asdict()
        assert by_key(conn, {"source": "pbx", "key": "b"}).all() == []
        marked = delivered(conn, {"entry_id": entry.id, "at": 1751710600.0, "body": "{}"})
        assert marked.rowcount == 1
        assert delivered(conn, {"entry_id": entry.id, "at": 1.0, "body": "{}"}).rowcount == 0
    with db.reading() as conn:
        row = conn.execute(select(journal.c.status, journal.c.delivered_at)).one()
    assert tuple(row) == ("delivered", 1751710600.0)


def test_a_statement_with_an_expanded_list_goes_through_sqlalchemy(db):
    release = db.prepared(sql_journal._JOURNAL_RELEASE)
    with db.transaction() as conn:
        entry = conn.execute(_insert(db), _columns("a")).one()
        seen = _statements_through_sqlalchemy(db)
        assert release(conn, {"owner": "nobody", "entry_ids": [entry.id, 99]}).rowcount == 0
        assert len(seen) == 1


def test_a_failing_database_is_unavailable_and_rolled_back(db):
    queue = db.prepared(callback_queue.insert())
    with pytest.raises(UpstreamUnavailable), db.transaction() as conn:
        conn.exec_driver_sql("DROP TABLE callback_queue")
        queue(conn, {"entry_id": 1})  # no such table: the database's failure, not the write's
    with db.reading() as conn:  # the drop was rolled back with the rest
        assert conn.execute(select(callback_queue)).all() == []


def test_a_writes_own_error_stays_its_own(db):
    queue = db.prepared(callback_queue.insert())
    with pytest.raises(sa_exc.IntegrityError), db.transaction() as conn:
        queue(conn, {"entry_id": 7})
        queue(conn, {"entry_id": 7})
    with pytest.raises(UnicodeEncodeError), db.transaction() as conn:
        db.prepared(sql_journal._JOURNAL_BY_KEY)(conn, {"source": "pbx", "key": "\udc80"})


def test_an_event_insert_answers_its_id_and_statements_with_values_of_their_own_bind_them(db):
    add = db.prepared(events.insert().returning(events.c.id))
    retry = db.prepared(sql_journal._JOURNAL_FAILED)  # binds status='failed' and no claim itself
    with db.transaction() as conn:
        seen = _statements_through_sqlalchemy(db)
        first = add(conn, {"kind": "board", "agent": "*board", "payload": "{}", "created_at": 1.5})
        second = add(conn, {"kind": "board", "agent": None, "payload": "{}", "created_at": 2.5})
        entry = conn.execute(_insert(db), _columns("a")).one()
        conn.execute(journal.update().values(claimed_by="me"))
        seen.clear()
        assert retry(conn, {"entry_id": entry.id, "owner": "me", "error": "x"}).rowcount == 1
        assert seen == []
    assert (first.scalar_one(), second.scalar_one()) == (1, 2)
    assert db.prepared(events.insert().returning(events.c.id)) is not add  # another statement
    with db.reading() as conn:
        row = conn.execute(select(journal.c.status, journal.c.claimed_by)).one()
    assert tuple(row) == ("failed", None)
