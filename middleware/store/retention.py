"""What the store keeps, and what it lets go: the part behind retention (``services/retention.py``).

Each ``purge_*`` deletes at most ``limit`` rows that fell due before ``before`` (epoch seconds) in
one short transaction and says how many it deleted, so the caller works in small batches that
never hold writers up for long. A lease names the one process (of every worker and host sharing
the store) that purges at a time. Implementation: ``sql.retention.SqlRetention`` (SQLite or
PostgreSQL; with Redis, claims, rate windows and events expire there by themselves).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from .journal import LegEvent


@dataclass(frozen=True)
class FinishedEntry:
    """A journal entry already delivered or failed, as ``Retention.add_finished`` stores it."""

    source: str
    key: str
    status: str  # delivered or failed
    call_log: dict
    created_at: float
    finished_at: float  # delivered at, or its last attempt
    attempts: int = 1
    agent: str | None = None
    legs: tuple[dict, ...] = ()  # a cc_agent call's legs as the journal lists them
    leg_events: tuple[LegEvent, ...] = ()  # and their stored events


@dataclass(frozen=True)
class Space:
    """A SQLite file's pages: how many, how many of them free, and whether the file gives free
    pages back (incremental auto-vacuum)."""

    pages: int
    free_pages: int
    page_size: int
    incremental: bool


class Retention(Protocol):
    def lease(self, name: str, owner: str, *, ttl: float, now: float) -> bool:
        """Take or renew the lease ``name`` for ``ttl`` seconds: True when ``owner`` holds it
        (it was free, expired, or ``owner``'s already), False while someone else holds it."""

    def release(self, name: str, owner: str) -> None:
        """Give the lease up, if ``owner`` holds it."""

    def purge_journal(self, before: float, limit: int) -> int:
        """Delete entries delivered, or failed with their last attempt, before ``before``, with
        their legs' events; never a pending entry."""

    def purge_claims(self, before: float, limit: int) -> int:
        """Delete claims (dedupe, ``Idempotency-Key`` records) that expired before ``before``."""

    def purge_rate_windows(self, before: float, limit: int) -> int:
        """Delete rate windows whose every hit left the window before ``before``."""

    def purge_events(self, before: float, limit: int) -> int:
        """Delete live events made before ``before``."""

    def purge_sandbox_call_logs(self, before: float, limit: int) -> int:
        """Delete the sandbox CRM's call logs written before ``before``."""

    def reclaim_space(self, pages: int) -> int:
        """SQLite: give up to ``pages`` free pages back to the file system (``PRAGMA
        incremental_vacuum``); how many it gave. PostgreSQL: 0 (its autovacuum reuses space)."""

    def space(self) -> Space | None:
        """The SQLite file's pages; None on PostgreSQL."""

    def counts(self) -> dict[str, int]:
        """Rows per table of what grows: journal, journal_legs, claims, rate_windows, events,
        sandbox_call_logs."""

    def add_finished(self, entries: Iterable[FinishedEntry]) -> int:
        """Store finished entries (and their legs) in one transaction, as history imported or a
        benchmark's load; how many were new (an existing ``(source, key)`` is left alone)."""
