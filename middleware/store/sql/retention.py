"""Retention on SQL (``retention.Retention``): small deletes, a lease row, and on SQLite the file's
free pages given back.

Each purge picks at most ``limit`` rows through an index (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so it never waits on a row a request holds; on SQLite the write transaction holds the
database already) and deletes them in the same short transaction. Tables whose ids grow with time
(events, the sandbox's call logs) are read oldest first and only that far, so a purge with nothing
to do reads ``limit`` rows at most.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from sqlalchemy import and_, bindparam, delete, func, or_, select

from ..journal import DELIVERED, FAILED_ENTRY
from ..retention import FinishedEntry, Space
from .database import Database
from .tables import claims, events, journal, journal_legs, leases, rate_windows, sandbox_call_logs

_before = bindparam("before")
_limit = bindparam("limit")
_ids = bindparam("ids", expanding=True)

# Finished entries: delivered before, or failed with their last attempt before (an entry failed by
# a build older than schema version 5 has none: its last attempt was due at next_attempt_at).
_FINISHED = (
    and_(journal.c.status == DELIVERED, journal.c.delivered_at < _before),
    and_(journal.c.status == FAILED_ENTRY, journal.c.last_attempt_at < _before),
    and_(
        journal.c.status == FAILED_ENTRY,
        journal.c.last_attempt_at.is_(None),
        journal.c.next_attempt_at < _before,
    ),
)
_FINISHED_IDS = [
    select(journal.c.id).where(finished).limit(_limit).with_for_update(skip_locked=True)
    for finished in _FINISHED
]
_DELETE_LEGS = delete(journal_legs).where(journal_legs.c.entry_id.in_(_ids))
_DELETE_ENTRIES = delete(journal).where(journal.c.id.in_(_ids))


def _expired(table, key, expires_at):
    """Delete up to ``limit`` rows whose ``expires_at`` is before ``before`` (an index range)."""
    due = select(key).where(expires_at < _before).limit(_limit).with_for_update(skip_locked=True)
    return delete(table).where(key.in_(due.scalar_subquery()))


def _oldest(table, key, created_at):
    """Delete those of the ``limit`` oldest rows (by ``key``, which grows with time) made before
    ``before``."""
    oldest = select(key).order_by(key).limit(_limit).with_for_update(skip_locked=True)
    return delete(table).where(key.in_(oldest.scalar_subquery()), created_at < _before)


_PURGE_CLAIMS = _expired(claims, claims.c.key, claims.c.expires_at)
_PURGE_RATE_WINDOWS = _expired(rate_windows, rate_windows.c.key, rate_windows.c.expires_at)
_PURGE_EVENTS = _oldest(events, events.c.id, events.c.created_at)
_PURGE_SANDBOX_LOGS = _oldest(
    sandbox_call_logs, sandbox_call_logs.c.seq, sandbox_call_logs.c.created_at
)
_COUNTED = (journal, journal_legs, claims, rate_windows, events, sandbox_call_logs)
_RELEASE = delete(leases).where(
    leases.c.name == bindparam("name"), leases.c.owner == bindparam("owner")
)


class SqlRetention:
    def __init__(self, db: Database):
        self.db = db
        take = db.insert(leases)
        # Taken when new, expired or already the owner's; otherwise nothing returned.
        self._take_lease = take.on_conflict_do_update(
            index_elements=["name"],
            set_={"owner": take.excluded.owner, "expires_at": take.excluded.expires_at},
            where=or_(
                leases.c.owner == take.excluded.owner, leases.c.expires_at <= bindparam("now")
            ),
        ).returning(leases.c.owner)
        self._add_entry = (
            db.insert(journal)
            .on_conflict_do_nothing(index_elements=["source", "key"])
            .returning(journal.c.id, journal.c.source, journal.c.key)
        )

    # the lease ---------------------------------------------------------------------------------

    def lease(self, name: str, owner: str, *, ttl: float, now: float) -> bool:
        with self.db.transaction() as conn:
            row = conn.execute(
                self._take_lease,
                {"name": name, "owner": owner, "expires_at": now + ttl, "now": now},
            ).first()
        return row is not None

    def release(self, name: str, owner: str) -> None:
        with self.db.transaction() as conn:
            conn.execute(_RELEASE, {"name": name, "owner": owner})

    # purges ------------------------------------------------------------------------------------

    def purge_journal(self, before: float, limit: int) -> int:
        deleted = 0
        with self.db.transaction() as conn:
            for finished in _FINISHED_IDS:
                params = {"before": before, "limit": limit - deleted}
                ids = conn.execute(finished, params).scalars().all()
                if ids:
                    conn.execute(_DELETE_LEGS, {"ids": ids})
                    deleted += conn.execute(_DELETE_ENTRIES, {"ids": ids}).rowcount
                if deleted >= limit:
                    break
        return deleted

    def purge_claims(self, before: float, limit: int) -> int:
        return self._delete(_PURGE_CLAIMS, before, limit)

    def purge_rate_windows(self, before: float, limit: int) -> int:
        return self._delete(_PURGE_RATE_WINDOWS, before, limit)

    def purge_events(self, before: float, limit: int) -> int:
        return self._delete(_PURGE_EVENTS, before, limit)

    def purge_sandbox_call_logs(self, before: float, limit: int) -> int:
        return self._delete(_PURGE_SANDBOX_LOGS, before, limit)

    def _delete(self, statement, before: float, limit: int) -> int:
        with self.db.transaction() as conn:
            return conn.execute(statement, {"before": before, "limit": limit}).rowcount

    # space -------------------------------------------------------------------------------------

    def reclaim_space(self, pages: int) -> int:
        return self.db.reclaim_space(pages)

    def space(self) -> Space | None:
        return self.db.space()

    def counts(self) -> dict[str, int]:
        with self.db.reading() as conn:
            return {
                table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                for table in _COUNTED
            }

    # history -----------------------------------------------------------------------------------

    def add_finished(self, entries: Iterable[FinishedEntry]) -> int:
        entries = list(entries)
        if not entries:
            return 0
        rows = [_finished_row(entry) for entry in entries]
        with self.db.transaction() as conn:
            added = conn.execute(self._add_entry, rows).all()
            by_key = {(entry.source, entry.key): entry for entry in entries}
            legs = [
                {
                    "entry_id": row.id,
                    "leg": event.leg,
                    "event": event.event,
                    "fields": json.dumps(event.fields),
                    "at": event.at,
                }
                for row in added
                for event in by_key[(row.source, row.key)].leg_events
            ]
            if legs:
                conn.execute(journal_legs.insert(), legs)
        return len(added)


def _finished_row(entry: FinishedEntry) -> dict:
    return {
        "source": entry.source,
        "key": entry.key,
        "status": entry.status,
        "attempts": entry.attempts,
        "next_attempt_at": entry.finished_at,
        "last_attempt_at": entry.finished_at,
        "created_at": entry.created_at,
        "delivered_at": entry.finished_at if entry.status == DELIVERED else None,
        "call_log": json.dumps(entry.call_log),
        "agent": entry.agent,
        "number": entry.call_log.get("Number") or None,  # as the journal keeps it (privacy)
        "legs": json.dumps(list(entry.legs)) if entry.legs else None,
    }
