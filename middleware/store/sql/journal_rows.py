"""A journal row's columns and the entry a row is: what the SQL journal's statements share."""

from __future__ import annotations

import json

from ...journal.call_logs import report_columns
from ..journal import PENDING_ENTRY, JournalEntry


def is_open(entry: JournalEntry) -> bool:
    """A call still waiting for its log: pending and never claimed (not even now)."""
    return entry.status == PENDING_ENTRY and entry.attempts == 0


def new_entry(source: str, key: str, now: float, *, due_at: float, call_log: dict, **more) -> dict:
    """A new pending entry's columns (``more``: its recording and agent, when it has them)."""
    return {
        **report_columns(call_log),
        "source": source,
        "key": key,
        "status": PENDING_ENTRY,
        "attempts": 0,
        "next_attempt_at": due_at,
        "created_at": now,
        "call_log": json.dumps(call_log),
        "recording_url": None,
        "agent": None,
        "number": None,
        "for_callbacks": None,
        **more,
    }


def number_of(call_log: dict) -> str | None:
    """The customer number an entry is found by (privacy requests): its log's ``Number``."""
    return call_log.get("Number") or None


def entry_of(row, *, call_log: dict | None = None) -> JournalEntry:
    """The entry of a row; ``call_log`` when the caller has the body decoded already."""
    return JournalEntry(
        id=row.id,
        source=row.source,
        key=row.key,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
        call_log=json.loads(row.call_log) if call_log is None else call_log,
        recording_url=row.recording_url,
        agent=row.agent,
        legs=tuple(json.loads(row.legs)) if row.legs else (),
    )
