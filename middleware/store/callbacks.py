"""Callbacks: the numbers whose call was missed, until someone calls them back (contract section 4).

A journal entry of a source that can miss a call (``CALLBACK_SOURCES``) is marked for the
callbacks by the insert that creates it (``sql.journal``, the row's ``for_callbacks``). Once its
log is made (the entry is due: settled, for a cc_agent call) ``settle`` applies it exactly once,
in one transaction with clearing the mark: a Missed log opens the number's callback or counts
one more miss on it, an Inbound or Outbound log closes it. One callback per number is open or
assigned at a time, which the database enforces (a unique partial index). Implementation:
``sql.callbacks.SqlCallbacks``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

# statuses, and how a callback was done
OPEN, ASSIGNED, DONE_CALLBACK = "open", "assigned", "done"
CALLED, ANSWERED, DISMISSED = "called", "answered", "dismissed"
CALLBACK_SOURCES = ("pbx", "ibizfone")  # the journal sources whose logs open and close callbacks


@dataclass(frozen=True)
class Callback:
    id: int
    number: str  # E.164
    name: str | None
    status: str  # open, assigned or done
    agent: str | None  # the extension it is (or was, when done) assigned to
    missed: int
    first_missed_at: float
    last_missed_at: float
    done_at: float | None = None
    done_by: str | None = None
    done_how: str | None = None  # called, answered or dismissed


@dataclass(frozen=True)
class LoggedCall:
    """A journal entry whose log is made, as ``settle`` hands it to the rule."""

    entry_id: int
    source: str
    call_log: dict
    agent: str | None
    logged_at: float  # when its log was made (its due time, at most now)


@dataclass(frozen=True)
class Effect:
    """What one logged call does: a ``miss`` of ``number`` (opens or counts), or an ``answer``
    (closes the number's callback, done by ``agent``)."""

    kind: str  # "miss" or "answer"
    number: str
    name: str | None = None
    agent: str | None = None


#: a logged call -> its effect on the callbacks, or None
Rule = Callable[[LoggedCall], Effect | None]


class Callbacks(Protocol):
    def settle(self, rule: Rule, *, now: float, limit: int = 200) -> tuple[list[Callback], bool]:
        """Apply up to ``limit`` queued entries whose log is made by ``now`` (due, or claimed
        already), each once, earliest due first; the callbacks changed and whether more wait."""

    def list(
        self,
        *,
        statuses: tuple[str, ...],
        agent: str | None = None,
        visible_to: str | None = None,
        after: tuple | None = None,
        limit: int = 100,
    ) -> list[Callback]:
        """Callbacks of these statuses: open and assigned ones oldest first (by id) then done
        ones newest first (by ``done_at``, id). ``agent``: only those assigned to it;
        ``visible_to``: only open ones and those assigned to that agent. ``after``: the position
        of the last one of the previous page, ``(False, id)`` or ``(True, done_at, id)``."""

    def get(self, callback_id: int) -> Callback | None: ...

    def assign(
        self, callback_id: int, agent: str | None, *, taker: str | None
    ) -> tuple[Callback | None, bool]:
        """Assign a callback that is not done (``agent`` None: open again); with ``taker`` (an
        agent assigning itself) only when it is open or assigned to ``taker`` already. The
        callback as it is afterwards (None: no such id) and whether this changed it."""

    def dismiss(self, callback_id: int, *, now: float) -> tuple[Callback | None, bool]:
        """Mark a callback that is not done done (``dismissed``); the callback as it is
        afterwards (None: no such id) and whether this changed it."""

    def called(self, number: str, agent: str, *, now: float) -> list[Callback]:
        """A click-to-call to ``number`` was placed: its callback is done (``called``)."""

    def name(self, number: str, name: str) -> Callback | None:
        """The callback of ``number`` that is not done takes ``name`` (a delivered log's
        ``Name``); it when it changed."""

    def purge_done(self, before: float, limit: int) -> int:
        """Delete up to ``limit`` callbacks done before ``before``; how many (retention)."""

    def for_number(self, number: str) -> list[Callback]:
        """Every callback of ``number`` (E.164), oldest first (privacy)."""

    def erase_number(self, number: str) -> int:
        """Delete every callback of ``number`` (E.164); how many (privacy)."""
