"""Claims, rate windows and live events on SQL (``claims.Claims``): one host's workers on SQLite,
or several hosts sharing PostgreSQL.

A claim or a rate window is read and written in one transaction with its row locked (on SQLite the
transaction holds the database's write lock from its start); an event rides the group commit of
the journal write it comes with (a ring's leg), and PostgreSQL orders event ids with a table lock.
Expired claims, rate windows and events older than ``claims.EVENT_KEEP_SECONDS`` are deleted in
the background (``retention.py``), never on a request's way.
"""

from __future__ import annotations

import json
import math
import time
import uuid

from sqlalchemy import bindparam, delete, func, select, update

from ...errors import UpstreamUnavailable
from ..claims import ALL_AGENTS, DONE, FAILED, OWNER, PENDING, Claim, Event
from .database import Database
from .tables import claims, events, rate_windows

_CLAIM_FOR_UPDATE = select(claims).where(claims.c.key == bindparam("k")).with_for_update()
_CLAIM_PEEK = select(claims).where(
    claims.c.key == bindparam("k"), claims.c.expires_at > bindparam("now")
)
_CLAIM_TAKE_OVER = (
    update(claims)
    .where(claims.c.key == bindparam("k"))
    .values(status=None, body=None)  # token, state, fingerprint, expires_at: from the parameters
)
_CLAIM_SETTLE = update(claims).where(
    claims.c.key == bindparam("k"), claims.c.token == bindparam("t")
)  # state, status, body, expires_at: from the parameters
_CLAIM_RELEASE = delete(claims).where(
    claims.c.key == bindparam("k"), claims.c.token == bindparam("t")
)
_RATE_SAVE = update(rate_windows).where(rate_windows.c.key == bindparam("k"))

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


def _claim(row) -> Claim:
    return Claim(row.state, row.token, row.fingerprint, row.status, row.body)


class SqlClaims:
    def __init__(self, db: Database):
        self.db = db
        # Statements are built once: SQLAlchemy then reuses their compiled form.
        self._claim_insert = (
            db.insert(claims).on_conflict_do_nothing(index_elements=["key"]).returning(claims.c.key)
        )
        rate = db.insert(rate_windows).values(key=bindparam("k"), hits="[]")
        # An upsert that changes nothing still locks the row: concurrent hits queue on it.
        self._rate_lock = rate.on_conflict_do_update(
            index_elements=["key"], set_={"key": rate.excluded.key}
        ).returning(rate_windows.c.hits)

    # claims ------------------------------------------------------------------------------------

    def claim(self, key: str, *, lease: float, fingerprint: str | None = None) -> Claim:
        now = time.time()
        token = uuid.uuid4().hex
        mine = {
            "token": token,
            "state": PENDING,
            "fingerprint": fingerprint,
            "expires_at": now + lease,
        }
        with self.db.transaction() as conn:
            for _ in range(3):
                row = conn.execute(_CLAIM_FOR_UPDATE, {"k": key}).first()
                if row is None:
                    created = conn.execute(self._claim_insert, {"key": key, **mine}).first()
                    if created is not None:
                        break
                    continue  # another host inserted it meanwhile (PostgreSQL): read its claim
                if row.expires_at > now and row.state != FAILED:
                    return _claim(row)
                conn.execute(_CLAIM_TAKE_OVER, {"k": key, **mine})
                break
            else:
                raise UpstreamUnavailable(self.db.backend, "a claim kept changing under us")
        return Claim(OWNER, token, fingerprint)

    def peek(self, key: str) -> Claim | None:
        with self.db.reading() as conn:
            row = conn.execute(_CLAIM_PEEK, {"k": key, "now": time.time()}).first()
        return None if row is None else _claim(row)

    def complete(self, key: str, token: str, *, status: int, body: str, ttl: float) -> None:
        self._settle(key, token, DONE, status, body, ttl)

    def fail(self, key: str, token: str, *, body: str, ttl: float) -> None:
        self._settle(key, token, FAILED, None, body, ttl)

    def release(self, key: str, token: str) -> None:
        with self.db.transaction() as conn:
            conn.execute(_CLAIM_RELEASE, {"k": key, "t": token})

    def _settle(self, key, token, state, status, body, ttl) -> None:
        settled = {"state": state, "status": status, "body": body, "expires_at": time.time() + ttl}
        with self.db.transaction() as conn:
            conn.execute(_CLAIM_SETTLE, {"k": key, "t": token, **settled})

    # rate windows ------------------------------------------------------------------------------

    def hit_rate(self, key: str, *, limit: int, window: float) -> float:
        now = time.time()
        with self.db.transaction() as conn:
            stored = conn.execute(self._rate_lock, {"k": key}).scalar_one()
            hits = [at for at in json.loads(stored) if at > now - window]
            if len(hits) >= limit:
                return max(1.0, math.ceil(min(hits) + window - now))
            hits.append(now)
            saved = {"k": key, "hits": json.dumps(hits), "expires_at": now + window}
            conn.execute(_RATE_SAVE, saved)
        return 0.0

    # events ------------------------------------------------------------------------------------

    def add_event(self, kind: str, agent: str | None, payload: dict) -> int:
        body = json.dumps(payload)

        def add(conn, now: float) -> int:
            return append_event(self.db, conn, now, kind, agent, body)

        # A ring's screen pop shares the group commit (and its fsync) of its leg. Last in the
        # group's order: the table lock is the last lock a group takes, so a group holding it
        # waits for nothing more, and groups never wait on each other in a circle.
        return self.db.group.write(add, order=("~events",))

    def events_after(
        self, after: int, *, agent: str | None = None, limit: int = 100
    ) -> list[Event]:
        params = {"after": after, "limit": limit, "agent": agent}
        with self.db.reading() as conn:
            rows = conn.execute(
                _EVENTS_AFTER if agent is None else _AGENT_EVENTS_AFTER, params
            ).all()
        return [Event(r.id, r.kind, r.agent, json.loads(r.payload), r.created_at) for r in rows]

    def last_event_id(self) -> int:
        with self.db.reading() as conn:
            return conn.execute(_LAST_EVENT).scalar() or 0
