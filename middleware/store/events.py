"""Live events (``store.events``): the log the agents' and the board's streams read (screen pops,
callbacks, board changes), numbered in increasing order.

Implementations: ``sql.events.SqlEvents`` (SQLite or PostgreSQL) and ``redis_events.RedisEvents``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

EVENT_KEEP_SECONDS = 3600  # a live event older than this has no reader left: it is deleted
ALL_AGENTS = "*"  # the ``agent`` of an event for every agent's stream (no extension is "*")


@dataclass(frozen=True)
class Event:
    """A live event for an agent (a ringing call), numbered in increasing order."""

    id: int
    kind: str
    agent: str | None
    payload: dict
    created_at: float


class Events(Protocol):
    #: whether ``ride`` joins the journal's transaction (``Journal.together``): SQL, on the
    #: journal's database; otherwise it writes at once, so it is called after the journal's write
    rides_journal: bool

    def add(self, kind: str, agent: str | None, payload: dict) -> int:
        """Append an event; its id is greater than every earlier one's."""

    def ride(self, kind: str, agent: str | None, payload: dict) -> int | None:
        """Append an event with the thread's next journal write, committed only with it (SQL,
        inside ``Journal.together``: best effort, a failure of its own is logged; None); written
        at once elsewhere (its id)."""

    def after(self, after: int, *, agent: str | None = None, limit: int = 100) -> list[Event]:
        """Events with ids above ``after``, oldest first: every one, or those for one agent
        (its own and those for ``ALL_AGENTS``)."""

    def last_id(self) -> int:
        """The newest event's id, 0 when there is none."""
