"""Claims and sliding rate windows (``store.claims``): the short-lived, hot part of shared state.

A claim is a row under a key with a state:

- ``owner``: the caller now owns the key and must ``complete``, ``fail`` or ``release`` it;
- ``pending``: someone else owns it and is still working (its lease has not run out);
- ``done``: a finished answer, replayable until its ``ttl`` runs out;
- ``failed``: the owner failed; the stored problem is kept briefly so that waiters can answer it,
  while a new ``claim`` takes the key over at once.

Click-to-call dedupe, ``Idempotency-Key`` records and an agent's checked-out mark are claims.
Implementations: ``sql.claims.SqlClaims`` (SQLite or PostgreSQL) and ``redis.RedisClaims``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

OWNER, PENDING, DONE, FAILED = "owner", "pending", "done", "failed"


@dataclass(frozen=True)
class Claim:
    state: str
    token: str
    fingerprint: str | None = None
    status: int | None = None
    body: str | None = None


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

    def hit_rate(self, key: str, *, limit: int, window: float, hit: str | None = None) -> float:
        """Count one event in the sliding window; 0 if allowed, else seconds until one frees.
        ``hit``: the event's id, to take it back (``take_back_rate``)."""

    def take_back_rate(self, key: str, hit: str) -> None:
        """Uncount the event ``hit``: it did not happen after all (a call that reached no dialer,
        or that the dialer refused)."""
