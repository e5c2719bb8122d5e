"""The call journal and the event log in the embedded SQLite store (a mixin of ``SQLiteStore``).

Every write is one ``BEGIN IMMEDIATE`` transaction committed with ``synchronous=FULL``, so a method
that returns has put its change on disk. An entry is claimed by one deliverer at a time: the claim
is a row update made under the write lock (two processes can never both see the entry free), and it
carries an expiry so the claim of a process that died is taken up again once it runs out.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time

from . import DELIVERED, FAILED_ENTRY, PENDING_ENTRY, Event, JournalEntry

JOURNAL_SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    source           TEXT NOT NULL,
    key              TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  REAL NOT NULL,
    last_error       TEXT,
    claimed_by       TEXT,
    claim_expires_at REAL,
    created_at       REAL NOT NULL,
    delivered_at     REAL,
    call_log         TEXT NOT NULL,
    recording_url    TEXT,
    UNIQUE (source, key)
);
CREATE INDEX IF NOT EXISTS journal_due ON journal (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS journal_status_id ON journal (status, id);
CREATE TABLE IF NOT EXISTS events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT NOT NULL,
    agent      TEXT,
    payload    TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_agent ON events (agent, id);
"""

EVENT_KEEP_SECONDS = 3600
_DUE = (
    "status = 'pending' AND next_attempt_at <= :now"
    " AND (claimed_by IS NULL OR claim_expires_at <= :now)"
)
_ANY_DUE = f"SELECT 1 FROM journal WHERE {_DUE} LIMIT 1"  # noqa: S608 - constant text
_FIRST_DUE = f"SELECT id FROM journal WHERE {_DUE} ORDER BY next_attempt_at, id LIMIT 1"  # noqa: S608


class _Slot:
    __slots__ = ("args", "done", "result", "error")

    def __init__(self, args):
        self.args = args
        self.done = False
        self.result = None
        self.error: BaseException | None = None


class _Group:
    """One process's queue of entries to add and the lock of the thread committing them."""

    def __init__(self, pid: int):
        self.pid = pid
        self.queue: list[_Slot] = []
        self.queue_lock = threading.Lock()
        self.leader = threading.Lock()


def _entry(row: sqlite3.Row) -> JournalEntry:
    return JournalEntry(
        id=row["id"],
        source=row["source"],
        key=row["key"],
        status=row["status"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        delivered_at=row["delivered_at"],
        call_log=json.loads(row["call_log"]),
        recording_url=row["recording_url"],
    )


class SQLiteJournal:
    """Journal and event methods of the Store interface; needs ``connection`` and ``transaction``."""

    def _create_journal(self) -> None:
        self.connection().executescript(JOURNAL_SCHEMA)

    # journal -----------------------------------------------------------------------------------

    def journal_add(
        self, source: str, key: str, call_log: dict, *, recording_url: str | None = None
    ) -> tuple[JournalEntry, bool]:
        """Group commit: the threads of a process that add at once share one transaction.

        Each caller queues its entry; whoever holds the leader lock commits every queued entry in
        one synced transaction, so one fsync answers many webhooks and nobody returns before its
        own entry is on disk.
        """
        slot = _Slot((source, key, json.dumps(call_log), recording_url))
        group = self._group()
        with group.queue_lock:
            group.queue.append(slot)
        with group.leader:
            if not slot.done:
                with group.queue_lock:
                    batch, group.queue = group.queue, []
                self._commit_adds(batch)
        if slot.error is not None:
            raise slot.error
        return slot.result

    def _group(self) -> _Group:
        group = getattr(self, "_add_group", None)
        if group is None or group.pid != os.getpid():  # new after a fork
            group = self._add_group = _Group(os.getpid())
        return group

    def _commit_adds(self, batch: list[_Slot]) -> None:
        now = time.time()
        try:
            with self.transaction() as db:
                results = []
                for slot in batch:
                    source, key, body, recording_url = slot.args
                    cursor = db.execute(
                        "INSERT INTO journal (source, key, status, next_attempt_at, created_at,"
                        " call_log, recording_url) VALUES (?, ?, 'pending', ?, ?, ?, ?)"
                        " ON CONFLICT (source, key) DO NOTHING",
                        (source, key, now, now, body, recording_url),
                    )
                    created = cursor.rowcount == 1
                    row = db.execute(
                        "SELECT * FROM journal WHERE source = ? AND key = ?", (source, key)
                    ).fetchone()
                    results.append((_entry(row), created))
        except BaseException as exc:
            for slot in batch:
                slot.error, slot.done = exc, True
            return
        for slot, result in zip(batch, results, strict=True):
            slot.result, slot.done = result, True

    def journal_claim(self, owner: str, *, lease: float, now: float) -> JournalEntry | None:
        params = {"now": now}
        # A plain read first, so an idle deliverer never takes the write lock.
        if self.connection().execute(_ANY_DUE, params).fetchone() is None:
            return None
        with self.transaction() as db:
            row = db.execute(_FIRST_DUE, params).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE journal SET claimed_by = ?, claim_expires_at = ?, attempts = attempts + 1"
                " WHERE id = ?",
                (owner, now + lease, row["id"]),
            )
            claimed = db.execute("SELECT * FROM journal WHERE id = ?", (row["id"],)).fetchone()
        return _entry(claimed)

    def journal_delivered(self, entry_id: int, call_log: dict) -> bool:
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE journal SET status = 'delivered', delivered_at = ?, call_log = ?,"
                " last_error = NULL, claimed_by = NULL, claim_expires_at = NULL"
                " WHERE id = ? AND status = 'pending'",
                (time.time(), json.dumps(call_log), entry_id),
            )
        return cursor.rowcount == 1

    def journal_retry_later(self, entry_id: int, owner: str, *, at: float, error: str) -> bool:
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE journal SET next_attempt_at = ?, last_error = ?, claimed_by = NULL,"
                " claim_expires_at = NULL WHERE id = ? AND status = 'pending' AND claimed_by = ?",
                (at, error, entry_id, owner),
            )
        return cursor.rowcount == 1

    def journal_failed(self, entry_id: int, owner: str, *, error: str) -> bool:
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE journal SET status = 'failed', last_error = ?, claimed_by = NULL,"
                " claim_expires_at = NULL WHERE id = ? AND status = 'pending' AND claimed_by = ?",
                (error, entry_id, owner),
            )
        return cursor.rowcount == 1

    def journal_requeue(self, entry_id: int) -> JournalEntry | None:
        with self.transaction() as db:
            db.execute(
                "UPDATE journal SET status = 'pending', attempts = 0, next_attempt_at = ?,"
                " claimed_by = NULL, claim_expires_at = NULL WHERE id = ? AND status = 'failed'",
                (time.time(), entry_id),
            )
            row = db.execute("SELECT * FROM journal WHERE id = ?", (entry_id,)).fetchone()
        return _entry(row) if row is not None else None

    def journal_get(self, entry_id: int) -> JournalEntry | None:
        row = (
            self.connection().execute("SELECT * FROM journal WHERE id = ?", (entry_id,)).fetchone()
        )
        return _entry(row) if row is not None else None

    def journal_list(
        self, *, status: str | None = None, limit: int = 100, before: int | None = None
    ) -> list[JournalEntry]:
        where, params = [], []
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if before is not None:
            where.append("id < ?")
            params.append(before)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self.connection().execute(
            f"SELECT * FROM journal {clause} ORDER BY id DESC LIMIT ?",  # noqa: S608
            (*params, limit),
        )
        return [_entry(row) for row in rows]

    def journal_counts(self) -> dict[str, int]:
        counts = dict.fromkeys((PENDING_ENTRY, DELIVERED, FAILED_ENTRY), 0)
        rows = self.connection().execute("SELECT status, COUNT(*) FROM journal GROUP BY status")
        counts.update({status: count for status, count in rows})
        return counts

    # events ------------------------------------------------------------------------------------

    def add_event(self, kind: str, agent: str | None, payload: dict) -> int:
        now = time.time()
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT INTO events (kind, agent, payload, created_at) VALUES (?, ?, ?, ?)",
                (kind, agent, json.dumps(payload), now),
            )
            event_id = cursor.lastrowid
            if event_id % 500 == 0:
                db.execute("DELETE FROM events WHERE created_at < ?", (now - EVENT_KEEP_SECONDS,))
        return event_id

    def events_after(
        self, after: int, *, agent: str | None = None, limit: int = 100
    ) -> list[Event]:
        if agent is None:
            rows = self.connection().execute(
                "SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?", (after, limit)
            )
        else:
            rows = self.connection().execute(
                "SELECT * FROM events WHERE agent = ? AND id > ? ORDER BY id LIMIT ?",
                (agent, after, limit),
            )
        return [
            Event(r["id"], r["kind"], r["agent"], json.loads(r["payload"]), r["created_at"])
            for r in rows
        ]

    def last_event_id(self) -> int:
        row = self.connection().execute("SELECT MAX(id) FROM events").fetchone()
        return row[0] or 0
