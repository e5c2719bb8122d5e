"""Live events on SQL (``events.Events``): one host's workers on SQLite, or several hosts sharing
PostgreSQL.

An event rides the group commit of the journal write it comes with (a ring's leg), and PostgreSQL
orders event ids with a table lock. Events older than ``events.EVENT_KEEP_SECONDS`` are deleted in
the background (``retention.py``), never on a request's way.
"""

from __future__ import annotations

import json

from sqlalchemy import bindparam, func, select

from ..events import ALL_AGENTS, Event
from .database import Database
from .tables import events

_ADD_EVENT = events.insert().returning(events.c.id)
_EVENTS_AFTER = (
    select(events)
    .where(events.c.id > bindparam("after"))
    .order_by(events.c.id)
    .limit(bindparam("limit"))
)
_AGENT_EVENTS_AFTER = _EVENTS_AFTER.where(events.c.agent.in_([bindparam("agent"), ALL_AGENTS]))
_LAST_EVENT = select(func.max(events.c.id))


def append_event(db: Database, conn, now: float, kind: str, agent: str | None, body: str) -> int:
    """Insert an event in a write transaction (the last lock it takes: ``lock_events``); its id."""
    db.lock_events(conn)
    return conn.execute(
        _ADD_EVENT, {"kind": kind, "agent": agent, "payload": body, "created_at": now}
    ).scalar_one()


class SqlEvents:
    rides_journal = True  # on the journal's database (the store's one ``Database``)

    def __init__(self, db: Database):
        self.db = db

    def add(self, kind: str, agent: str | None, payload: dict) -> int:
        # Shares the group commit (and its fsync) of the writes of the moment. Last in the
        # group's order: the table lock is the last lock a group takes, so a group holding it
        # waits for nothing more, and groups never wait on each other in a circle.
        return self.db.group.write(self._append(kind, agent, payload), order=("~events",))

    def ride(self, kind: str, agent: str | None, payload: dict) -> int | None:
        # A ring's screen pop, in the transaction of its leg (``Journal.together``).
        return self.db.group.ride(
            self._append(kind, agent, payload), order=("~events",), what=f"the {kind} event"
        )

    def _append(self, kind: str, agent: str | None, payload: dict):
        body = json.dumps(payload)

        def add(conn, now: float) -> int:
            return append_event(self.db, conn, now, kind, agent, body)

        return add

    def after(self, after: int, *, agent: str | None = None, limit: int = 100) -> list[Event]:
        params = {"after": after, "limit": limit, "agent": agent}
        with self.db.reading() as conn:
            rows = conn.execute(
                _EVENTS_AFTER if agent is None else _AGENT_EVENTS_AFTER, params
            ).all()
        return [Event(r.id, r.kind, r.agent, json.loads(r.payload), r.created_at) for r in rows]

    def last_id(self) -> int:
        with self.db.reading() as conn:
            return conn.execute(_LAST_EVENT).scalar() or 0
