"""Claims and rate windows on SQL (``claims.Claims``): one host's workers on SQLite, or several
hosts sharing PostgreSQL.

A claim or a rate window is read and written in one transaction with its row locked (on SQLite the
transaction holds the database's write lock from its start). Expired claims and rate windows are
deleted in the background (``retention.py``), never on a request's way.
"""

from __future__ import annotations

import json
import math
import time
import uuid

from sqlalchemy import bindparam, delete, select, update

from ...errors import UpstreamUnavailable
from ..claims import DONE, FAILED, OWNER, PENDING, Claim
from .database import Database
from .tables import claims, rate_windows

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


def _hit_at(entry) -> float:
    """When a stored rate event happened: ``[at, id]``, or a bare time (stored before ids)."""
    return entry[0] if isinstance(entry, list) else entry


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

    def hit_rate(self, key: str, *, limit: int, window: float, hit: str | None = None) -> float:
        now = time.time()
        with self.db.transaction() as conn:
            stored = conn.execute(self._rate_lock, {"k": key}).scalar_one()
            hits = [entry for entry in json.loads(stored) if _hit_at(entry) > now - window]
            if len(hits) >= limit:
                return max(1.0, math.ceil(min(map(_hit_at, hits)) + window - now))
            hits.append([now, hit or uuid.uuid4().hex])
            saved = {"k": key, "hits": json.dumps(hits), "expires_at": now + window}
            conn.execute(_RATE_SAVE, saved)
        return 0.0

    def take_back_rate(self, key: str, hit: str) -> None:
        with self.db.transaction() as conn:
            stored = conn.execute(self._rate_lock, {"k": key}).scalar_one()
            hits = json.loads(stored)
            kept = [entry for entry in hits if not (isinstance(entry, list) and entry[1] == hit)]
            if len(kept) != len(hits):
                conn.execute(_RATE_SAVE, {"k": key, "hits": json.dumps(kept)})
