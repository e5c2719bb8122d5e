"""Claims, sliding rate windows and live events: the short-lived, hot part of shared state.

A claim is a row under a key with a state:

- ``owner``: the caller now owns the key and must ``complete``, ``fail`` or ``release`` it;
- ``pending``: someone else owns it and is still working (its lease has not run out);
- ``done``: a finished answer, replayable until its ``ttl`` runs out;
- ``failed``: the owner failed; the stored problem is kept briefly so that waiters can answer it,
  while a new ``claim`` takes the key over at once.

Implementations: ``sql.claims.SqlClaims`` (SQLite or PostgreSQL) and ``redis.RedisClaims``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

OWNER, PENDING, DONE, FAILED = "owner", "pending", "done", "failed"
EVENT_KEEP_SECONDS = 3600  # a live event older than this has no reader left: it is deleted
ALL_AGENTS = "*"  # the ``agent`` of an event for every agent's stream (no extension is "*")


@dataclass(frozen=True)
class Claim:
    state: str
    token: str
    fingerprint: str | None = None
    status: int | None = None
    body: str | None = None


@dataclass(frozen=True)
class Event:
    """A live event for an agent (a ringing call), numbered in increasing order."""

    id: int
    kind: str
    agent: str | None
    payload: dict
    created_at: float


class Claims(Protocol):
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

    # live events (screen pops)

    def add_event(self, kind: str, agent: str | None, payload: dict) -> int:
        """Append an event; its id is greater than every earlier one's."""

    def events_after(
        self, after: int, *, agent: str | None = None, limit: int = 100
    ) -> list[Event]:
        """Events with ids above ``after``, oldest first: every one, or those for one agent
        (its own and those for ``ALL_AGENTS``)."""

    def last_event_id(self) -> int:
        """The newest event's id, 0 when there is none."""
