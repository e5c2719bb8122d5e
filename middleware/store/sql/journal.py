"""The call journal on SQL (``journal.Journal``): SQLite on one host, PostgreSQL for several.

Every write has committed (and synced) when it returns. Ingests (``add``, legs) and a
deliverer's marks share the group commit (``commit.GroupCommit``): one fsync answers many webhooks.
Deliverers claim due entries with ``FOR UPDATE SKIP LOCKED`` in one statement, so two never hold one
entry; a call's entry is locked while its legs remake it, and only while it is still open.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import replace
from itertools import islice

from sqlalchemy import and_, bindparam, func, or_, select, update

from ...errors import UpstreamUnavailable
from ...journal.call_logs import REPORT_COLUMNS, report_columns
from ..callbacks import CALLBACK_SOURCES
from ..journal import (
    DELIVERED,
    FAILED_ENTRY,
    PENDING_ENTRY,
    CallState,
    JournalEntry,
    LegEvent,
    Summarise,
)
from .database import Database
from .journal_rows import entry_of, is_open, new_entry, number_of
from .tables import journal, journal_legs

BULK_BATCH = 10_000
_now = bindparam("now")
_DUE = and_(
    journal.c.status == PENDING_ENTRY,
    journal.c.next_attempt_at <= _now,
    or_(journal.c.claimed_by.is_(None), journal.c.claim_expires_at <= _now),
)
_ANY_DUE = select(journal.c.id).where(_DUE).limit(1)
_FIRST_DUE = (
    select(journal.c.id)
    .where(_DUE)
    .order_by(journal.c.next_attempt_at, journal.c.id)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)
_JOURNAL_BY_KEY = select(journal).where(
    journal.c.source == bindparam("source"), journal.c.key == bindparam("key")
)
_JOURNAL_BY_ID = select(journal).where(journal.c.id == bindparam("entry_id"))
# A call's entry while it is open (pending, never claimed), locked; rows a deliverer holds are
# filtered out before locking, so an ingest never waits on them.
_OPEN_CALL_LOCK = _JOURNAL_BY_KEY.where(
    journal.c.status == PENDING_ENTRY, journal.c.attempts == 0
).with_for_update()
_LEGS_OF = select(journal_legs).where(journal_legs.c.entry_id == bindparam("entry_id"))
# One statement: lock the first due entries (skipping those other deliverers hold) and claim them.
_JOURNAL_CLAIM = (
    update(journal)
    .where(journal.c.id.in_(_FIRST_DUE.correlate(None)))
    .values(
        claimed_by=bindparam("owner"),
        claim_expires_at=bindparam("until"),
        attempts=journal.c.attempts + 1,
        last_attempt_at=_now,
    )
    .returning(*journal.c)
)
_RELEASED = {"claimed_by": None, "claim_expires_at": None}
_REPORTED = {name: bindparam(name) for name in REPORT_COLUMNS}  # remade with the call log
_PENDING_ID = (journal.c.id == bindparam("entry_id"), journal.c.status == PENDING_ENTRY)
_OWNED = (*_PENDING_ID, journal.c.claimed_by == bindparam("owner"))
_CALL_REMADE = (
    update(journal)
    .where(*_PENDING_ID, journal.c.attempts == 0)
    .values(
        call_log=bindparam("call_log"),
        agent=bindparam("agent"),
        legs=bindparam("legs"),
        next_attempt_at=bindparam("due_at"),
        recording_url=bindparam("recording_url"),
        number=bindparam("number"),
        **_REPORTED,
    )
)
_HELD = select(journal.c.id).where(*_OWNED)
_JOURNAL_DELIVERED = (
    update(journal)
    .where(*_PENDING_ID)
    .values(
        status=DELIVERED,
        delivered_at=bindparam("at"),
        call_log=bindparam("body"),
        last_error=None,
        **_RELEASED,
        **_REPORTED,
    )
)
_JOURNAL_RETRY_LATER = (
    update(journal)
    .where(*_OWNED)
    .values(next_attempt_at=bindparam("at"), last_error=bindparam("error"), **_RELEASED)
)
# Claims given back untried: the attempt the claim counted is taken back.
_JOURNAL_RELEASE = (
    update(journal)
    .where(
        journal.c.id.in_(bindparam("entry_ids", expanding=True)),
        journal.c.status == PENDING_ENTRY,
        journal.c.claimed_by == bindparam("owner"),
    )
    .values(attempts=journal.c.attempts - 1, **_RELEASED)
)
_JOURNAL_FAILED = (
    update(journal)
    .where(*_OWNED)
    .values(status=FAILED_ENTRY, last_error=bindparam("error"), **_RELEASED)
)

_JOURNAL_COUNTS = select(journal.c.status, func.count()).group_by(journal.c.status)


class SqlJournal:
    def __init__(self, db: Database):
        self.db = db
        self._journal_insert = (
            db.insert(journal)
            .on_conflict_do_nothing(index_elements=["source", "key"])
            .returning(*journal.c)
        )
        self._bulk_insert = db.insert(journal).on_conflict_do_nothing(
            index_elements=["source", "key"]
        )
        self._leg_insert = db.insert(journal_legs).on_conflict_do_nothing(
            index_elements=["entry_id", "leg", "event"]
        )

    def add(
        self,
        source: str,
        key: str,
        call_log: dict,
        *,
        recording_url: str | None = None,
        agent: str | None = None,
    ) -> tuple[JournalEntry, bool]:
        def add(conn, now: float) -> tuple[JournalEntry, bool]:
            new = new_entry(
                source,
                key,
                now,
                due_at=now,
                call_log=call_log,
                recording_url=recording_url,
                agent=agent,
                number=number_of(call_log),
                for_callbacks=1 if source in CALLBACK_SOURCES else None,
            )
            row = conn.execute(self._journal_insert, new).first()
            if row is None:  # stored before: the entry as it is now
                return entry_of(
                    conn.execute(_JOURNAL_BY_KEY, {"source": source, "key": key}).one()
                ), False
            return entry_of(row, call_log=call_log), True

        return self.db.group.write(add, order=(source, key))

    def add_many(self, calls: Iterable[tuple[str, str, dict, str | None]]) -> None:
        """One executemany and one transaction per ``BULK_BATCH`` calls (no group commit)."""
        pending = iter(calls)
        while batch := list(islice(pending, BULK_BATCH)):
            now = time.time()
            rows = [
                new_entry(source, key, now, due_at=now, call_log=log, agent=agent)
                for source, key, log, agent in batch
            ]
            with self.db.transaction() as conn:
                conn.execute(self._bulk_insert, rows)

    def add_leg(
        self, key: str, leg: str, event: str, fields: dict, *, summarise: Summarise
    ) -> tuple[JournalEntry, bool]:
        """Locks: only an entry still open (never one a deliverer holds), and a transaction's
        writes take theirs in the order of their keys, so group commits on several processes
        never wait on each other in a circle. A call's first event makes its entry from that
        event alone, in the insert (most calls have one leg: no placeholder to read back and
        remake)."""
        body = json.dumps(fields)

        def first(now: float) -> tuple[dict, dict]:
            """A new call's entry columns, and its log, from this event alone."""
            state = summarise([LegEvent(leg, event, json.loads(body), now)], now)
            columns = new_entry(
                "pbx",
                key,
                now,
                due_at=state.due_at,
                call_log=state.call_log,
                agent=state.agent,
                legs=json.dumps(state.legs),
                recording_url=state.recording_url,
                number=number_of(state.call_log),
                for_callbacks=1,  # its log, once made, is the callbacks' too
            )
            return columns, state.call_log

        def add(conn, now: float) -> tuple[JournalEntry, bool]:
            entry, made = self._call_entry(conn, key, now, first)
            stored = conn.execute(
                self._leg_insert,
                {"entry_id": entry.id, "leg": leg, "event": event, "fields": body, "at": now},
            ).rowcount
            if made or not stored or not is_open(entry):
                return entry, bool(stored)
            events = [
                LegEvent(row.leg, row.event, json.loads(row.fields), row.at)
                for row in conn.execute(_LEGS_OF, {"entry_id": entry.id})
            ]
            state: CallState = summarise(events, entry.created_at)
            conn.execute(
                _CALL_REMADE,
                {
                    "entry_id": entry.id,
                    "call_log": json.dumps(state.call_log),
                    "agent": state.agent,
                    "legs": json.dumps(state.legs),
                    "due_at": state.due_at,
                    "recording_url": state.recording_url,
                    "number": number_of(state.call_log),
                    **report_columns(state.call_log),
                },
            )
            return replace(
                entry,
                next_attempt_at=state.due_at,
                call_log=state.call_log,
                recording_url=state.recording_url,
                agent=state.agent,
                legs=tuple(state.legs),
            ), True

        return self.db.group.write(add, order=("pbx", key))

    def _call_entry(self, conn, key: str, now: float, first) -> tuple[JournalEntry, bool]:
        """The call's entry, and whether this transaction made it (from ``first(now)``: its
        columns and log); locked when it is open (a plain read otherwise, so a deliverer's marks
        never wait on an ingest, nor an ingest on them). SQLite: the transaction holds the
        database's write lock already."""
        params = {"source": "pbx", "key": key}
        for _ in range(3):
            if self.db.postgresql:  # the common case, an open call, in one statement
                row = conn.execute(_OPEN_CALL_LOCK, params).first()
                if row is not None:
                    return entry_of(row), False
            found = conn.execute(_JOURNAL_BY_KEY, params).first()
            if found is None:
                columns, call_log = first(now)
                row = conn.execute(self._journal_insert, columns).first()
                if row is not None:  # inserted by this transaction: locked already
                    return entry_of(row, call_log=call_log), True
                continue  # another host made it meanwhile (PostgreSQL): read it again
            entry = entry_of(found)
            if not self.db.postgresql or not is_open(entry):
                return entry, False
            # given back by a deliverer between the two reads: lock it
        raise UpstreamUnavailable(self.db.backend, "a call's journal entry kept changing under us")

    def together(self):
        return self.db.group.riding()

    def claim(self, owner: str, *, lease: float, now: float, limit: int = 1) -> list[JournalEntry]:
        """Up to ``limit`` due entries in one transaction (one statement), oldest due first."""
        # A plain read first, so an idle deliverer never takes a write lock.
        with self.db.reading() as conn:
            if conn.execute(_ANY_DUE, {"now": now}).first() is None:
                return []
        with self.db.transaction() as conn:
            rows = conn.execute(
                _JOURNAL_CLAIM,
                {"now": now, "owner": owner, "until": now + lease, "limit": max(1, limit)},
            ).all()
        # RETURNING gives no order; deliver in the order the claim chose them.
        return sorted(map(entry_of, rows), key=lambda entry: (entry.next_attempt_at, entry.id))

    def release(self, owner: str, entry_ids: list[int]) -> int:
        if not entry_ids:
            return 0
        with self.db.transaction() as conn:
            return conn.execute(
                _JOURNAL_RELEASE, {"owner": owner, "entry_ids": list(entry_ids)}
            ).rowcount

    def held(self, entry_id: int, owner: str) -> bool:
        with self.db.reading() as conn:
            return conn.execute(_HELD, {"entry_id": entry_id, "owner": owner}).first() is not None

    def delivered(self, entry_id: int, call_log: dict) -> bool:
        delivered = {"entry_id": entry_id, "at": time.time(), "body": json.dumps(call_log)}
        return self._journal_update(_JOURNAL_DELIVERED, {**delivered, **report_columns(call_log)})

    def retry_later(self, entry_id: int, owner: str, *, at: float, error: str) -> bool:
        return self._journal_update(
            _JOURNAL_RETRY_LATER, {"entry_id": entry_id, "owner": owner, "at": at, "error": error}
        )

    def failed(self, entry_id: int, owner: str, *, error: str) -> bool:
        return self._journal_update(
            _JOURNAL_FAILED, {"entry_id": entry_id, "owner": owner, "error": error}
        )

    def _journal_update(self, statement, params: dict) -> bool:
        """Update one entry (releasing its claim), committed with the other journal writes of the
        moment; whether it matched."""
        return self.db.group.write(
            lambda conn, _now: conn.execute(statement, params).rowcount == 1, order=()
        )

    def requeue(self, entry_id: int) -> JournalEntry | None:
        with self.db.transaction() as conn:
            conn.execute(
                update(journal)
                .where(journal.c.id == entry_id, journal.c.status == FAILED_ENTRY)
                .values(
                    status=PENDING_ENTRY,
                    attempts=0,
                    next_attempt_at=time.time(),
                    claimed_by=None,
                    claim_expires_at=None,
                )
            )
            row = conn.execute(_JOURNAL_BY_ID, {"entry_id": entry_id}).first()
        return entry_of(row) if row is not None else None

    def get(self, entry_id: int) -> JournalEntry | None:
        with self.db.reading() as conn:
            row = conn.execute(_JOURNAL_BY_ID, {"entry_id": entry_id}).first()
        return entry_of(row) if row is not None else None

    def list(
        self,
        *,
        status: str | None = None,
        limit: int = 100,
        before: int | None = None,
        agent: str | None = None,
    ) -> list[JournalEntry]:
        query = select(journal).order_by(journal.c.id.desc()).limit(limit)
        if status is not None:
            query = query.where(journal.c.status == status)
        if agent is not None:
            query = query.where(journal.c.agent == agent)
        if before is not None:
            query = query.where(journal.c.id < before)
        with self.db.reading() as conn:
            rows = conn.execute(query).all()
        return [entry_of(row) for row in rows]

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys((PENDING_ENTRY, DELIVERED, FAILED_ENTRY), 0)
        with self.db.reading() as conn:
            rows = conn.execute(_JOURNAL_COUNTS).all()
        counts.update({status: count for status, count in rows})
        return counts
