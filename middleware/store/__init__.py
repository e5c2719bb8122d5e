"""The narrow interface to shared state, and the choice of its implementation.

Everything that must hold across gunicorn workers (and, with the shared implementation, across
hosts) goes through a ``Store``: claims (click-to-call dedupe and ``Idempotency-Key`` records) and
sliding rate windows, the call journal and live events. ``sql.SqlStore`` implements it on SQLite
in WAL mode (one host) or on PostgreSQL (several hosts); the Redis store keeps the same methods and
semantics for what it takes over.

A claim is a row under a key with a state:

- ``owner``: the caller now owns the key and must ``complete``, ``fail`` or ``release`` it;
- ``pending``: someone else owns it and is still working (its lease has not run out);
- ``done``: a finished answer, replayable until its ``ttl`` runs out;
- ``failed``: the owner failed; the stored problem is kept briefly so that waiters can answer it,
  while a new ``claim`` takes the key over at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

OWNER, PENDING, DONE, FAILED = "owner", "pending", "done", "failed"
# journal entry statuses
PENDING_ENTRY, DELIVERED, FAILED_ENTRY = "pending", "delivered", "failed"


@dataclass(frozen=True)
class Claim:
    state: str
    token: str
    fingerprint: str | None = None
    status: int | None = None
    body: str | None = None


@dataclass(frozen=True)
class JournalEntry:
    """One call to log in the CRM, keyed by its source's call id (unique per source)."""

    id: int
    source: str  # pbx, ibizfone or backfill
    key: str
    status: str  # pending, delivered or failed
    attempts: int
    next_attempt_at: float
    last_error: str | None
    created_at: float
    delivered_at: float | None
    call_log: dict
    recording_url: str | None = None
    agent: str | None = None  # the extension the call log names, when it names one
    legs: tuple[dict, ...] = ()  # a cc_agent call's legs: {"id", "agent", "billms"}


@dataclass(frozen=True)
class LegEvent:
    """One stored event (ring, answer, end) of one leg of a cc_agent call; ``at`` its arrival."""

    leg: str
    event: str
    fields: dict
    at: float


@dataclass(frozen=True)
class CallState:
    """What the leg events stored so far make of a call's entry (the journal service decides)."""

    call_log: dict
    agent: str | None
    legs: list[dict]
    due_at: float  # when its log may be sent (settled, or the call given up waiting for)
    recording_url: str | None


#: (every leg event of the call, when its first one arrived) -> the entry's new state
Summarise = Callable[[list[LegEvent], float], CallState]


@dataclass(frozen=True)
class Event:
    """A live event for an agent (a ringing call), numbered in increasing order."""

    id: int
    kind: str
    agent: str | None
    payload: dict
    created_at: float


class Store(Protocol):
    def claim(self, key: str, *, lease: float, fingerprint: str | None = None) -> Claim:
        """Take ``key`` if it is free, expired, failed or its lease ran out; else describe it."""

    def peek(self, key: str) -> Claim | None:
        """The live claim under ``key`` (any state), or None."""

    def complete(self, key: str, token: str, *, status: int, body: str, ttl: float) -> None:
        """Store the owner's answer for ``ttl`` seconds."""

    def fail(self, key: str, token: str, *, body: str, ttl: float) -> None:
        """Mark the owner's attempt failed; waiters may read ``body`` for ``ttl`` seconds."""

    def release(self, key: str, token: str) -> None:
        """Forget the owner's claim, as if it had never been made."""

    def hit_rate(self, key: str, *, limit: int, window: float) -> float:
        """Count one event in the sliding window; 0 if allowed, else seconds until one frees."""

    def sandbox_contacts(self) -> list[dict]:
        """Every contact of the sandbox CRM (a handful), oldest first."""

    def add_sandbox_contact(self, contact: dict) -> None:
        """Keep a sandbox CRM contact under its ``id``; an existing id is left as it is."""

    def add_sandbox_call_log(self, payload: dict) -> None:
        """Record a call log written to the sandbox CRM."""

    def sandbox_call_logs(self, limit: int = 100) -> list[dict]:
        """The call logs written to the sandbox CRM, newest first."""

    # call journal: every method that writes has committed (and synced) when it returns

    def journal_add(
        self,
        source: str,
        key: str,
        call_log: dict,
        *,
        recording_url: str | None = None,
        agent: str | None = None,
    ) -> tuple[JournalEntry, bool]:
        """Store a pending entry unless ``(source, key)`` exists; the entry and whether it is new."""

    def journal_add_leg(
        self, key: str, leg: str, event: str, fields: dict, *, summarise: Summarise
    ) -> tuple[JournalEntry, bool]:
        """Store one leg event of the cc_agent call ``key`` (source ``pbx``), once per leg and
        event; the call's entry and whether the event was new.

        The entry is made on the call's first event. While it waits for its log (pending, never
        claimed) each new event remakes it with ``summarise`` from every leg event stored, in the
        same transaction with the entry's row locked: events of one call landing on several
        processes or hosts at once each see the others. Once claimed, an entry is left as it is.
        """

    def journal_claim(
        self, owner: str, *, lease: float, now: float, limit: int = 1
    ) -> list[JournalEntry]:
        """Atomically claim up to ``limit`` due pending entries for ``lease`` seconds, counting an
        attempt on each; the earliest due first (empty when none is due).

        Due: ``next_attempt_at <= now`` and unclaimed or its claim expired (its owner died).
        Two owners never hold one entry at once.
        """

    def journal_release(self, owner: str, entry_ids: list[int]) -> int:
        """Give back ``owner``'s claims on entries it has not tried (the attempt the claim counted
        is taken back), so any deliverer may claim them at once; how many were released."""

    def journal_delivered(self, entry_id: int, call_log: dict) -> bool:
        """Mark a pending entry delivered with the body sent; False if it was not pending."""

    def journal_retry_later(self, entry_id: int, owner: str, *, at: float, error: str) -> bool:
        """Release ``owner``'s claim and make the entry due at ``at``; False if not its claim."""

    def journal_failed(self, entry_id: int, owner: str, *, error: str) -> bool:
        """Mark ``owner``'s claimed entry failed; False if the claim is not its own."""

    def journal_requeue(self, entry_id: int) -> JournalEntry | None:
        """A failed entry back to pending, due now, attempts reset; the entry (any status) or None."""

    def journal_get(self, entry_id: int) -> JournalEntry | None: ...

    def journal_list(
        self,
        *,
        status: str | None = None,
        limit: int = 100,
        before: int | None = None,
        agent: str | None = None,
    ) -> list[JournalEntry]:
        """Entries newest first (by id), optionally of one status, naming one agent, and with ids
        below ``before``."""

    def journal_counts(self) -> dict[str, int]:
        """Entries per status (pending, delivered, failed), zeros included."""

    # live events (screen pops)

    def add_event(self, kind: str, agent: str | None, payload: dict) -> int:
        """Append an event; its id is greater than every earlier one's."""

    def events_after(
        self, after: int, *, agent: str | None = None, limit: int = 100
    ) -> list[Event]:
        """Events with ids above ``after`` (for one agent), oldest first."""

    def last_event_id(self) -> int:
        """The newest event's id, 0 when there is none."""

    def check(self) -> None:
        """Raise if the store cannot be written."""

    def close(self) -> None:
        """Release connections (at worker exit)."""


def build_store(settings) -> Store:
    """The SQL store, behind a ``SharedStore`` that sends claims, rates and events to Redis when
    ``CTI_REDIS_URL`` is set."""
    sql = build_sql_store(settings)
    if not settings.redis_url:
        return sql
    from .redis import RedisStore
    from .shared import SharedStore

    engine = "postgresql" if settings.database.startswith("postgres") else "sqlite"
    return SharedStore(RedisStore(settings.redis_url), sql, sql_name=engine)


def build_sql_store(settings) -> Store:
    """SQLite at a path (the default), or PostgreSQL at a ``postgresql://`` URL."""
    from .sql import SqlStore

    return SqlStore(settings.database)
