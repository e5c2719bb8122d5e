"""The supervisor's board: each agent's latest status and its call legs in progress.

What the board shows changes with every status change and every ring, answer and end of a leg, on
any worker of any host; the board itself (``services/board.py``) is read from here. A write that
changes the board also appends the event that announces it (``announce``: kind, stream, payload)
to the store's event log, which the board's streams read: on SQL in the same transaction (one
commit, and the announcement never without the change). A leg only
moves forward (ringing, talking, ended): events of one leg landing out of order on several
processes never take it back, and an ended leg is kept (4 hours) so a late ring cannot revive it.

Implementations: ``sql.board.SqlBoard`` (SQLite or PostgreSQL) and ``redis_board.RedisBoard``
(with ``CTI_REDIS_URL``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

#: the event that announces a change: (kind, stream, payload), as ``Events.add`` takes it
Announce = tuple[str, str, dict]

RINGING, TALKING, ENDED = "ringing", "talking", "ended"
RANKS = {RINGING: 1, TALKING: 2, ENDED: 3}
KEEP_SECONDS = 4 * 3600  # a leg without an end is dropped this long after it started


@dataclass(frozen=True)
class BoardLeg:
    """One leg of a call at one agent; ``since`` when its state began, ``started`` when it did."""

    leg: str
    extension: str
    call_id: str
    direction: str  # inbound or outbound
    number: str | None  # the customer's, E.164
    state: str  # ringing, talking or ended
    since: float
    started: float


@dataclass(frozen=True)
class AgentState:
    """An agent the board has seen: its latest status (None: none known) and its legs not ended
    that started after the time asked."""

    extension: str
    status: str | None = None
    legs: tuple[BoardLeg, ...] = ()


class Board(Protocol):
    #: whether its legs can join the journal's transaction (``Journal.together``): SQL, on the
    #: journal's database; otherwise a leg is written after the journal's write, on its own
    rides_journal: bool

    def board_status(self, extension: str, status: str, *, at: float, announce: Announce) -> bool:
        """Record the agent's status as of ``at``, unless one of a later time is stored; whether
        its status is now another than before (then ``announce`` is appended)."""

    def board_leg(self, leg: BoardLeg, *, now: float, announce: Announce) -> bool | None:
        """Record a leg event: a new leg at its state, a known one moved forward (never back);
        whether anything changed (then ``announce`` is appended). A leg that started
        ``KEEP_SECONDS`` ago is forgotten. On SQL inside ``Journal.together``: None, the write
        joining the journal's next one (best effort)."""

    def board_agents(self, *, since: float) -> list[AgentState]:
        """Every agent seen (in a status or a leg), with its legs started after ``since``."""

    def board_agent(self, extension: str, *, since: float) -> AgentState:
        """One agent (an empty state when never seen)."""

    # privacy (``privacy.NumberData``): a leg holds its customer's number until it is forgotten

    def for_number(self, e164: str) -> list:
        """The legs held with the number (E.164), newest first."""

    def erase_number(self, e164: str) -> int:
        """Forget the legs held with the number; how many went."""
