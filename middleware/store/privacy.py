"""What the store holds about one phone number, found and erased by it (contract section 4,
privacy), and the log of erasures that tells every process to forget what it cached of a number.

A part that holds numbers offers ``NumberData``: the journal (``store.journal_numbers``: entries
and their legs, by the journal's ``number`` column), the screen-pop events
(``store.event_numbers``), the claims (``store.claim_numbers``: a click-to-call's dedupe record
and its replayable answer). ``services/privacy.py`` lists them in one place. ``Erasures`` is the
log of erasures (``store.erasures``): each record holds the number only as log lines mask it, and
beside it who follows the log: each process that caches contacts says how far it has forgotten
(``Follower``), so an erasure can wait until every live one has (``services/forgetting.py``).

Implementations: ``sql/privacy.py`` (SQLite or PostgreSQL) and ``redis_privacy.py`` (the events,
claims and erasure log of a shared store).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class NumberData(Protocol):
    def for_number(self, e164: str) -> list:
        """What this part holds about the number (E.164), newest first."""

    def erase_number(self, e164: str) -> int:
        """Delete what this part holds about the number; how many records went."""


@dataclass(frozen=True)
class Erasure:
    """One erasure, numbered in increasing order; ``mask`` the number as log lines write it."""

    id: int
    mask: str
    created_at: float


@dataclass(frozen=True)
class Follower:
    """A process that follows the erasure log: it has forgotten what every erasure up to ``seen``
    names, dropping ``dropped`` cache entries for erasure ``seen`` itself; ``beat`` is when it
    last said so (epoch seconds)."""

    id: str
    seen: int
    dropped: int
    beat: float


class Erasures(Protocol):
    def add_erasure(self, mask: str) -> int:
        """Record an erasure of the number ``mask`` stands for; its id (above every earlier one)."""

    def erasures_after(self, after: int, *, limit: int = 100) -> list[Erasure]:
        """Erasures with ids above ``after``, oldest first."""

    def last_erasure_id(self) -> int:
        """The newest erasure's id, 0 when there is none."""

    def report_follower(
        self, follower: str, seen: int, dropped: int, *, stale_before: float
    ) -> None:
        """Record (now) that process ``follower`` has forgotten up to erasure ``seen``, dropping
        ``dropped`` entries for that one; forget followers silent since ``stale_before``."""

    def followers(self, *, since: float) -> list[Follower]:
        """The followers that reported at ``since`` (epoch seconds) or later."""

    def leave(self, follower: str) -> None:
        """Forget the follower (its process no longer caches contacts)."""
