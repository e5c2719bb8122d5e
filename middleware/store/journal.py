"""The call journal (``store.journal``): every call to log in the CRM, its legs' events, and its
delivery leases.

Every method that writes has committed (and synced) when it returns: a webhook is acknowledged
only once its entry is on disk. Implementation: ``sql.journal.SqlJournal`` (SQLite or PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

# journal entry statuses
PENDING_ENTRY, DELIVERED, FAILED_ENTRY = "pending", "delivered", "failed"


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


class Journal(Protocol):
    def add(
        self,
        source: str,
        key: str,
        call_log: dict,
        *,
        recording_url: str | None = None,
        agent: str | None = None,
    ) -> tuple[JournalEntry, bool]:
        """Store a pending entry unless ``(source, key)`` exists; the entry and whether it is new."""

    def add_many(self, calls: Iterable[tuple[str, str, dict, str | None]]) -> None:
        """Store whole calls in bulk, each ``(source, key, call_log, agent)`` unless stored
        already, pending and due at once (an import; the reports benchmark). Committed when it
        returns, without the webhooks' group commit."""

    def add_leg(
        self, key: str, leg: str, event: str, fields: dict, *, summarise: Summarise
    ) -> tuple[JournalEntry, bool]:
        """Store one leg event of the cc_agent call ``key`` (source ``pbx``), once per leg and
        event; the call's entry and whether the event was new.

        The entry is made on the call's first event. While it waits for its log (pending, never
        claimed) each new event remakes it with ``summarise`` from every leg event stored, in the
        same transaction with the entry's row locked: events of one call landing on several
        processes or hosts at once each see the others. Once claimed, an entry is left as it is.
        """

    def together(self) -> AbstractContextManager[None]:
        """Within the block, the board's leg writes on the same database (SQL) wait for the
        thread's next journal write and commit in its transaction, best effort (one commit for
        a leg event, not two); left over at the block's end, they are written then."""

    def claim(self, owner: str, *, lease: float, now: float, limit: int = 1) -> list[JournalEntry]:
        """Atomically claim up to ``limit`` due pending entries for ``lease`` seconds, counting an
        attempt on each; the earliest due first (empty when none is due).

        Due: ``next_attempt_at <= now`` and unclaimed or its claim expired (its owner died).
        Two owners never hold one entry at once.
        """

    def release(self, owner: str, entry_ids: list[int]) -> int:
        """Give back ``owner``'s claims on entries it has not tried (the attempt the claim counted
        is taken back), so any deliverer may claim them at once; how many were released."""

    def held(self, entry_id: int, owner: str) -> bool:
        """Whether ``owner`` still holds its claim on the pending entry (a deliverer asks just
        before sending: an entry erased meanwhile, by a privacy request, is not sent)."""

    def delivered(self, entry_id: int, call_log: dict) -> bool:
        """Mark a pending entry delivered with the body sent; False if it was not pending."""

    def retry_later(self, entry_id: int, owner: str, *, at: float, error: str) -> bool:
        """Release ``owner``'s claim and make the entry due at ``at``; False if not its claim."""

    def failed(self, entry_id: int, owner: str, *, error: str) -> bool:
        """Mark ``owner``'s claimed entry failed; False if the claim is not its own."""

    def requeue(self, entry_id: int) -> JournalEntry | None:
        """A failed entry back to pending, due now, attempts reset; the entry (any status) or None."""

    def get(self, entry_id: int) -> JournalEntry | None: ...

    def list(
        self,
        *,
        status: str | None = None,
        limit: int = 100,
        before: int | None = None,
        agent: str | None = None,
    ) -> list[JournalEntry]:
        """Entries newest first (by id), optionally of one status, naming one agent, and with ids
        below ``before``."""

    def counts(self) -> dict[str, int]:
        """Entries per status (pending, delivered, failed), zeros included."""
