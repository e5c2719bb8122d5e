"""Callbacks on SQL (``callbacks.Callbacks``): SQLite on one host, PostgreSQL for several.

One callback per number that is not done: the unique partial index ``callbacks_one_per_number``
(``done_at IS NULL``), which the miss's upsert names as its conflict target, so two workers or hosts
counting misses of one number at once make one callback with both misses. A settle pass takes the
marked entries (``journal.for_callbacks``) with ``FOR NO KEY UPDATE SKIP LOCKED`` (PostgreSQL), so
two passes never apply one entry, and applies them once it holds the transaction-scoped advisory
lock of each of their numbers (PostgreSQL), taken in the order of the numbers: passes on several
hosts never wait on each other in a circle, and a miss and an answer of one number applied at once
see each other. An answer runs its close only for a number with a callback not done (one read for
the pass): most answered calls have none.
"""

from __future__ import annotations

import hashlib
import json

from sqlalchemy import and_, bindparam, case, delete, exists, func, or_, select, text, update

from ..callbacks import (
    ANSWERED,
    ASSIGNED,
    CALLED,
    DISMISSED,
    DONE_CALLBACK,
    OPEN,
    Callback,
    LoggedCall,
    Rule,
)
from ..journal import PENDING_ENTRY
from .database import Database
from .tables import callback_queue, callbacks, journal

_MADE = or_(
    journal.c.next_attempt_at <= bindparam("now"),
    journal.c.attempts > 0,  # claimed already (by a deliverer that did not settle it first)
    journal.c.status != PENDING_ENTRY,
)
_QUEUED_MADE = select(
    journal.c.id.label("entry_id"),
    journal.c.source,
    journal.c.call_log,
    journal.c.agent,
    journal.c.next_attempt_at,
).where(journal.c.for_callbacks.is_not(None), _MADE)
_ANY_MADE = _QUEUED_MADE.limit(1)
# NO KEY UPDATE: an ingest's leg of another entry (its foreign key's KEY SHARE) never waits on it.
_TAKE_MADE = (
    _QUEUED_MADE.order_by(journal.c.next_attempt_at, journal.c.id)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True, key_share=True)
)
_UNQUEUE = (
    update(journal)
    .where(journal.c.id.in_(bindparam("ids", expanding=True)))
    .values(for_callbacks=None)
)
# What a host of a build before schema version 6 queued (a rolling deploy), moved to its entry.
_ANY_LEGACY = select(callback_queue.c.entry_id).limit(1)
_LEGACY_TAKEN = delete(callback_queue).returning(callback_queue.c.entry_id)
_LEGACY_MARKED = (
    update(journal)
    .where(journal.c.id.in_(bindparam("ids", expanding=True)))
    .values(for_callbacks=1)
)
_ORPHANS = delete(callback_queue).where(~exists().where(journal.c.id == callback_queue.c.entry_id))
_BY_ID = select(callbacks).where(callbacks.c.id == bindparam("callback_id"))
_NOT_DONE = (callbacks.c.number == bindparam("num"), callbacks.c.done_at.is_(None))
_ANY_NOT_DONE = select(callbacks.c.id).where(*_NOT_DONE).limit(1)
_NOT_DONE_AMONG = select(callbacks.c.number).where(
    callbacks.c.number.in_(bindparam("nums", expanding=True)), callbacks.c.done_at.is_(None)
)
_CLOSE = (
    update(callbacks)
    .where(*_NOT_DONE, callbacks.c.first_missed_at <= bindparam("at"))
    .values(
        status=DONE_CALLBACK,
        done_at=bindparam("at"),
        done_by=bindparam("by"),
        done_how=bindparam("how"),
    )
    .returning(*callbacks.c)
)
_RENAME = (
    update(callbacks)
    .where(
        *_NOT_DONE,
        or_(callbacks.c.name.is_(None), callbacks.c.name != bindparam("new_name")),
    )
    .values(name=bindparam("new_name"))
    .returning(*callbacks.c)
)
_OF_NUMBER = (
    select(callbacks).where(callbacks.c.number == bindparam("num")).order_by(callbacks.c.id)
)
_ERASE = delete(callbacks).where(callbacks.c.number == bindparam("num"))
_PURGE = delete(callbacks).where(
    callbacks.c.id.in_(
        select(callbacks.c.id)
        .where(callbacks.c.done_at < bindparam("before"))
        .order_by(callbacks.c.done_at)
        .limit(bindparam("limit"))
        .scalar_subquery()
    )
)


def _callback(row) -> Callback:
    return Callback(
        id=row.id,
        number=row.number,
        name=row.name,
        status=row.status,
        agent=row.agent,
        missed=row.missed,
        first_missed_at=row.first_missed_at,
        last_missed_at=row.last_missed_at,
        done_at=row.done_at,
        done_by=row.done_by,
        done_how=row.done_how,
    )


def _number_lock(number: str) -> int:
    """A signed 64-bit advisory lock key for one number."""
    return int.from_bytes(
        hashlib.sha256(b"callback:" + number.encode()).digest()[:8], "big", signed=True
    )


class SqlCallbacks:
    def __init__(self, db: Database):
        self.db = db
        miss = db.insert(callbacks)
        self._miss = miss.on_conflict_do_update(
            index_elements=[callbacks.c.number],
            index_where=callbacks.c.done_at.is_(None),
            set_={
                "missed": callbacks.c.missed + 1,
                "first_missed_at": case(
                    (
                        miss.excluded.first_missed_at < callbacks.c.first_missed_at,
                        miss.excluded.first_missed_at,
                    ),
                    else_=callbacks.c.first_missed_at,
                ),
                "last_missed_at": case(
                    (
                        miss.excluded.last_missed_at > callbacks.c.last_missed_at,
                        miss.excluded.last_missed_at,
                    ),
                    else_=callbacks.c.last_missed_at,
                ),
                "name": func.coalesce(miss.excluded.name, callbacks.c.name),
            },
        ).returning(*callbacks.c)

    def _lock_number(self, conn, number: str) -> None:
        """PostgreSQL: one transaction at a time changes a number's callbacks (SQLite's write
        transactions are one at a time already)."""
        if self.db.postgresql:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _number_lock(number)})

    # the journal's logs ------------------------------------------------------------------------

    def settle(self, rule: Rule, *, now: float, limit: int = 200) -> tuple[list[Callback], bool]:
        # A plain read first, so a pass with nothing to do takes no write lock.
        with self.db.reading() as conn:
            legacy = conn.execute(_ANY_LEGACY).first() is not None
            if not legacy and conn.execute(_ANY_MADE, {"now": now}).first() is None:
                return [], False
        with self.db.transaction() as conn:
            if legacy:  # deleted first: a queue row another host is settling is not taken
                ids = conn.execute(_LEGACY_TAKEN).scalars().all()
                if ids:
                    conn.execute(_LEGACY_MARKED, {"ids": ids})
            rows = conn.execute(_TAKE_MADE, {"now": now, "limit": limit}).all()
            effects = []
            for row in rows:
                call = LoggedCall(
                    entry_id=row.entry_id,
                    source=row.source,
                    call_log=json.loads(row.call_log),
                    agent=row.agent,
                    logged_at=min(row.next_attempt_at, now),
                )
                effect = rule(call)
                if effect is not None:
                    effects.append((effect.number, call.logged_at, call.entry_id, effect))
            changed = []
            for number in sorted({number for number, *_ in effects}):
                self._lock_number(conn, number)  # every one first (in order): nobody changes them
            # An answer closes a callback only where one is not done: most numbers have none.
            answered = sorted({e.number for *_, e in effects if e.kind == "answer"})
            not_done = set()
            if answered:
                not_done.update(conn.execute(_NOT_DONE_AMONG, {"nums": answered}).scalars())
            for number, at, _, effect in sorted(effects, key=lambda item: item[:3]):
                if effect.kind == "miss":
                    params = {
                        "number": number,
                        "name": effect.name,
                        "status": OPEN,
                        "agent": None,
                        "missed": 1,
                        "first_missed_at": at,
                        "last_missed_at": at,
                    }
                    changed.append(_callback(conn.execute(self._miss, params).one()))
                    not_done.add(number)
                elif number in not_done:
                    closed = conn.execute(
                        _CLOSE, {"num": number, "at": at, "by": effect.agent, "how": ANSWERED}
                    ).all()
                    changed += map(_callback, closed)
            if rows:
                conn.execute(_UNQUEUE, {"ids": [row.entry_id for row in rows]})
        return changed, len(rows) == limit

    # reading -----------------------------------------------------------------------------------

    def list(
        self,
        *,
        statuses: tuple[str, ...],
        agent: str | None = None,
        visible_to: str | None = None,
        after: tuple | None = None,
        limit: int = 100,
    ) -> list[Callback]:
        def narrowed(query):
            if agent is not None:
                query = query.where(callbacks.c.agent == agent)
            if visible_to is not None:
                query = query.where(
                    or_(callbacks.c.status == OPEN, callbacks.c.agent == visible_to)
                )
            return query

        found: list = []
        waiting = tuple(status for status in statuses if status != DONE_CALLBACK)
        with self.db.reading() as conn:
            if waiting and (after is None or not after[0]):
                query = narrowed(select(callbacks).where(callbacks.c.status.in_(waiting)))
                if after is not None:
                    query = query.where(callbacks.c.id > after[1])
                found += conn.execute(query.order_by(callbacks.c.id).limit(limit)).all()
            if DONE_CALLBACK in statuses and len(found) < limit:
                query = narrowed(select(callbacks).where(callbacks.c.status == DONE_CALLBACK))
                if after is not None and after[0]:
                    _, done_at, last_id = after
                    query = query.where(
                        or_(
                            callbacks.c.done_at < done_at,
                            and_(callbacks.c.done_at == done_at, callbacks.c.id < last_id),
                        )
                    )
                query = query.order_by(callbacks.c.done_at.desc(), callbacks.c.id.desc())
                found += conn.execute(query.limit(limit - len(found))).all()
        return [_callback(row) for row in found]

    def get(self, callback_id: int) -> Callback | None:
        with self.db.reading() as conn:
            row = conn.execute(_BY_ID, {"callback_id": callback_id}).first()
        return _callback(row) if row is not None else None

    # changes -----------------------------------------------------------------------------------

    def assign(
        self, callback_id: int, agent: str | None, *, taker: str | None
    ) -> tuple[Callback | None, bool]:
        with self.db.transaction() as conn:
            row = conn.execute(_BY_ID.with_for_update(), {"callback_id": callback_id}).first()
            if row is None:
                return None, False
            current = _callback(row)
            taken = taker is not None and current.agent not in (None, taker)
            if current.status == DONE_CALLBACK or taken or current.agent == agent:
                return current, False
            row = conn.execute(
                update(callbacks)
                .where(callbacks.c.id == callback_id)
                .values(agent=agent, status=ASSIGNED if agent is not None else OPEN)
                .returning(*callbacks.c)
            ).one()
        return _callback(row), True

    def dismiss(self, callback_id: int, *, now: float) -> tuple[Callback | None, bool]:
        with self.db.transaction() as conn:
            row = conn.execute(_BY_ID.with_for_update(), {"callback_id": callback_id}).first()
            if row is None:
                return None, False
            if row.status == DONE_CALLBACK:
                return _callback(row), False
            row = conn.execute(
                update(callbacks)
                .where(callbacks.c.id == callback_id)
                .values(status=DONE_CALLBACK, done_at=now, done_by=None, done_how=DISMISSED)
                .returning(*callbacks.c)
            ).one()
        return _callback(row), True

    def called(self, number: str, agent: str, *, now: float) -> list[Callback]:
        # The click-to-call path: a plain read, and a write only when there is a callback.
        with self.db.reading() as conn:
            if conn.execute(_ANY_NOT_DONE, {"num": number}).first() is None:
                return []
        with self.db.transaction() as conn:
            self._lock_number(conn, number)
            rows = conn.execute(
                _CLOSE, {"num": number, "at": now, "by": agent, "how": CALLED}
            ).all()
        return [_callback(row) for row in rows]

    def name(self, number: str, name: str) -> Callback | None:
        with self.db.transaction() as conn:
            row = conn.execute(_RENAME, {"num": number, "new_name": name}).first()
        return _callback(row) if row is not None else None

    # retention and privacy ---------------------------------------------------------------------

    def purge_done(self, before: float, limit: int) -> int:
        with self.db.transaction() as conn:
            purged = conn.execute(_PURGE, {"before": before, "limit": limit}).rowcount
            conn.execute(_ORPHANS)  # queued entries erased before they settled
        return purged

    def for_number(self, number: str) -> list[Callback]:
        with self.db.reading() as conn:
            rows = conn.execute(_OF_NUMBER, {"num": number}).all()
        return [_callback(row) for row in rows]

    def erase_number(self, number: str) -> int:
        with self.db.transaction() as conn:
            return conn.execute(_ERASE, {"num": number}).rowcount
