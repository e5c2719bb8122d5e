"""The narrow interface to shared state, and the choice of its implementation.

Everything that must hold across gunicorn workers (and, with the shared implementation, across
hosts) goes through a ``Store``: claims (click-to-call dedupe and ``Idempotency-Key`` records) and
sliding rate windows. The embedded implementation is SQLite in WAL mode; a shared one keeps the same
methods and semantics.

A claim is a row under a key with a state:

- ``owner``: the caller now owns the key and must ``complete``, ``fail`` or ``release`` it;
- ``pending``: someone else owns it and is still working (its lease has not run out);
- ``done``: a finished answer, replayable until its ``ttl`` runs out;
- ``failed``: the owner failed; the stored problem is kept briefly so that waiters can answer it,
  while a new ``claim`` takes the key over at once.
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

    def check(self) -> None:
        """Raise if the store cannot be written."""

    def close(self) -> None:
        """Release connections (at worker exit)."""


def build_store(settings) -> Store:
    if settings.database.startswith(("postgresql://", "postgres://")):
        raise NotImplementedError("the PostgreSQL store is not available in this build")
    from .sqlite import SQLiteStore

    return SQLiteStore(settings.database)
