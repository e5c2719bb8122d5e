"""The supervisor's board on SQL (``board.Board``): one host's workers on SQLite, or several
hosts sharing PostgreSQL.

A status or a leg is one upsert whose ``WHERE`` keeps the later status and lets a leg only move
forward, so concurrent events of one agent or leg on several processes need no lock of their own.
The writes ride the group commit of the journal's webhooks (``commit.GroupCommit``), and a change
appends its announcement in the same transaction, after every other write of it (the event log's
lock is a transaction's last, ``claims.append_event``). A leg rides the journal's write of its own
event, in the same transaction (``GroupCommit.ride``), best effort: when it fails, the journal's
write commits without it.
"""

from __future__ import annotations

import json

from sqlalchemy import bindparam, case, delete, func, or_, select

from ..board import KEEP_SECONDS, RANKS, AgentState, Announce, BoardLeg
from .database import Database
from .events import append_event
from .tables import board_agents, board_legs

_PURGE_EVERY = 100
_STATUS_OF = select(board_agents.c.status).where(board_agents.c.extension == bindparam("extension"))
_LEGS_PURGE = delete(board_legs).where(board_legs.c.started < bindparam("before"))
_OPEN_LEGS = (
    select(board_legs)
    .where(board_legs.c.rank < RANKS["ended"], board_legs.c.started > bindparam("since"))
    .order_by(board_legs.c.extension, board_legs.c.started)
)
_AGENT_LEGS = _OPEN_LEGS.where(board_legs.c.extension == bindparam("extension"))
_AGENTS = select(board_agents.c.extension, board_agents.c.status)
_LEGS_OF_NUMBER = (
    select(board_legs)
    .where(board_legs.c.number == bindparam("number"))
    .order_by(board_legs.c.started.desc())
)
_ERASE_NUMBER = delete(board_legs).where(board_legs.c.number == bindparam("number"))
_AGENT = _AGENTS.where(board_agents.c.extension == bindparam("extension"))


def _leg(row) -> BoardLeg:
    return BoardLeg(
        row.leg,
        row.extension,
        row.call_id,
        row.direction,
        row.number,
        row.state,
        row.since,
        row.started,
    )


class SqlBoard:
    rides_journal = True  # on the journal's database (the store's one ``Database``)

    def __init__(self, db: Database):
        self.db = db
        status = db.insert(board_agents)
        self._status_upsert = status.on_conflict_do_update(
            index_elements=["extension"],
            set_={"status": status.excluded.status, "status_at": status.excluded.status_at},
            where=or_(
                board_agents.c.status_at.is_(None),
                board_agents.c.status_at <= status.excluded.status_at,
            ),
        ).returning(board_agents.c.extension)
        self._seen = db.insert(board_agents).on_conflict_do_nothing(index_elements=["extension"])
        leg = db.insert(board_legs)
        self._leg_upsert = leg.on_conflict_do_update(
            index_elements=["leg"],
            set_={
                "state": leg.excluded.state,
                "rank": leg.excluded.rank,
                "since": leg.excluded.since,
                # the customer's number only while the call is on (privacy)
                "number": case(
                    (leg.excluded.rank == RANKS["ended"], None),
                    else_=func.coalesce(board_legs.c.number, leg.excluded.number),
                ),
            },
            where=board_legs.c.rank < leg.excluded.rank,
        ).returning(board_legs.c.leg)
        self._writes = 0
        # Agents whose row this process has seen committed: rows are never deleted, so their
        # "seen" insert is left out of later legs (one statement fewer per leg).
        self._known: set[str] = set()

    def board_status(self, extension: str, status: str, *, at: float, announce: Announce) -> bool:
        def write(conn, _now: float) -> bool:
            before = conn.execute(_STATUS_OF, {"extension": extension}).scalar()
            row = {"extension": extension, "status": status, "status_at": at}
            stored = conn.execute(self._status_upsert, row).first() is not None
            return stored and before != status

        return self.db.group.write(
            write, order=("board", extension), then=self._announcing(announce)
        )

    def _announcing(self, announce: Announce):
        kind, stream, payload = announce
        body = json.dumps(payload)

        def then(conn, now: float, changed: bool) -> bool:
            if changed:
                append_event(self.db, conn, now, kind, stream, body)
            return changed

        return then

    def board_leg(self, leg: BoardLeg, *, now: float, announce: Announce) -> bool:
        if leg.started <= now - KEEP_SECONDS:
            return False
        row = {
            "leg": leg.leg,
            "extension": leg.extension,
            "call_id": leg.call_id,
            "direction": leg.direction,
            "number": None if leg.state == "ended" else leg.number,
            "state": leg.state,
            "rank": RANKS[leg.state],
            "since": leg.since,
            "started": leg.started,
        }

        known = leg.extension in self._known

        def write(conn, _now: float) -> bool:
            if not known:
                conn.execute(self._seen, {"extension": leg.extension})
            moved = conn.execute(self._leg_upsert, row).first() is not None
            self._writes += 1
            if self._writes % _PURGE_EVERY == 0:
                conn.execute(_LEGS_PURGE, {"before": now - KEEP_SECONDS})
            return moved

        # Rides the journal's write of the same event (``Journal.together``) when there is one.
        return self.db.group.ride(
            write,
            order=("board", leg.extension, leg.leg),
            then=self._announcing(announce),
            what="the board's leg",
            committed=None if known else lambda: self._known.add(leg.extension),
        )

    def board_agents(self, *, since: float) -> list[AgentState]:
        with self.db.reading() as conn:
            agents = conn.execute(_AGENTS).all()
            legs = conn.execute(_OPEN_LEGS, {"since": since}).all()
        return _states(agents, legs)

    def board_agent(self, extension: str, *, since: float) -> AgentState:
        params = {"extension": extension, "since": since}
        with self.db.reading() as conn:
            agents = conn.execute(_AGENT, params).all()
            legs = conn.execute(_AGENT_LEGS, params).all()
        return next(iter(_states(agents, legs)), AgentState(extension))

    def for_number(self, e164: str) -> list:
        with self.db.reading() as conn:
            return [_leg(row) for row in conn.execute(_LEGS_OF_NUMBER, {"number": e164})]

    def erase_number(self, e164: str) -> int:
        with self.db.transaction() as conn:
            return conn.execute(_ERASE_NUMBER, {"number": e164}).rowcount


def _states(agents, legs) -> list[AgentState]:
    by_agent: dict[str, list[BoardLeg]] = {}
    for row in legs:
        by_agent.setdefault(row.extension, []).append(_leg(row))
    return [
        AgentState(row.extension, row.status, tuple(by_agent.get(row.extension, ())))
        for row in agents
    ]
