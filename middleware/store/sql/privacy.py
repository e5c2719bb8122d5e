"""What the SQL store holds about one number, found and erased by it (``privacy.NumberData``), and
the erasure log (``privacy.Erasures``).

The journal is found by its indexed ``number`` column (E.164, filled when an entry is stored or its
legs remake it; schema version 4). Events and claims hold numbers inside text (a screen pop's
payload, a replayable click-to-call answer, a dedupe key): a ``LIKE`` on the number's national
digits narrows them, then ``numbers.Written`` decides on each. Each erasure is one transaction.
"""

from __future__ import annotations

import json
import time

from sqlalchemy import bindparam, delete, func, or_, select, text

from ...numbers import written
from ..events import Event
from ..privacy import Erasure, Follower
from .database import Database
from .journal_rows import entry_of
from .tables import claims, erasure_followers, erasures, events, journal, journal_legs

ERASURE_KEEP_SECONDS = 86400  # far beyond the second in which every process reads a new one

_BY_NUMBER = (
    select(journal).where(journal.c.number == bindparam("number")).order_by(journal.c.id.desc())
)
_IDS_BY_NUMBER = select(journal.c.id).where(journal.c.number == bindparam("number"))
_ERASE_LEGS = delete(journal_legs).where(
    journal_legs.c.entry_id.in_(bindparam("ids", expanding=True))
)
_ERASE_ENTRIES = delete(journal).where(journal.c.id.in_(bindparam("ids", expanding=True)))
_EVENTS_NAMING = select(events).where(events.c.payload.contains(bindparam("core")))
_ERASE_EVENTS = delete(events).where(events.c.id.in_(bindparam("ids", expanding=True)))
_CLAIMS_NAMING = select(claims.c.key, claims.c.body).where(
    or_(
        claims.c.key.contains(bindparam("core")),
        claims.c.body.contains(bindparam("core")),
    )
)
_ERASE_CLAIMS = delete(claims).where(claims.c.key.in_(bindparam("keys", expanding=True)))
_ADD_ERASURE = erasures.insert().returning(erasures.c.id)
_ERASURES_PURGE = delete(erasures).where(erasures.c.created_at < bindparam("before"))
_ERASURES_AFTER = (
    select(erasures)
    .where(erasures.c.id > bindparam("after"))
    .order_by(erasures.c.id)
    .limit(bindparam("limit"))
)
_LAST_ERASURE = select(func.max(erasures.c.id))
_FOLLOWERS = select(erasure_followers).where(erasure_followers.c.beat >= bindparam("since"))
_FOLLOWERS_STALE = delete(erasure_followers).where(erasure_followers.c.beat < bindparam("before"))
_FOLLOWER_LEAVE = delete(erasure_followers).where(erasure_followers.c.id == bindparam("id"))


class SqlJournalNumbers:
    """Journal entries (any status) whose call log's ``Number`` is the number, with their legs."""

    def __init__(self, db: Database):
        self.db = db

    def for_number(self, e164: str) -> list:
        with self.db.reading() as conn:
            rows = conn.execute(_BY_NUMBER, {"number": e164}).all()
        return [entry_of(row) for row in rows]

    def erase_number(self, e164: str) -> int:
        """Entries and legs in one transaction. A deliverer holding one of them finds its claim
        gone just before sending (``Journal.held``) and sends nothing."""
        with self.db.transaction() as conn:
            ids = list(conn.execute(_IDS_BY_NUMBER, {"number": e164}).scalars())
            if ids:
                conn.execute(_ERASE_LEGS, {"ids": ids})
                conn.execute(_ERASE_ENTRIES, {"ids": ids})
        return len(ids)


class SqlEventNumbers:
    """Screen-pop events whose payload names the number."""

    def __init__(self, db: Database):
        self.db = db

    def for_number(self, e164: str) -> list:
        number = written(e164)
        with self.db.reading() as conn:
            rows = conn.execute(_EVENTS_NAMING, {"core": number.core}).all()
        return [
            Event(row.id, row.kind, row.agent, json.loads(row.payload), row.created_at)
            for row in sorted(rows, key=lambda row: row.id, reverse=True)
            if number.found_in(row.payload)
        ]

    def erase_number(self, e164: str) -> int:
        number = written(e164)
        with self.db.transaction() as conn:
            rows = conn.execute(_EVENTS_NAMING, {"core": number.core}).all()
            ids = [row.id for row in rows if number.found_in(row.payload)]
            if ids:
                conn.execute(_ERASE_EVENTS, {"ids": ids})
        return len(ids)


class SqlClaimNumbers:
    """Claims whose key or stored answer names the number (a click-to-call's dedupe record and
    its ``Idempotency-Key`` answer): erased, a replay can no longer answer the number."""

    def __init__(self, db: Database):
        self.db = db

    def for_number(self, e164: str) -> list:
        number = written(e164)
        with self.db.reading() as conn:
            rows = conn.execute(_CLAIMS_NAMING, {"core": number.core}).all()
        return sorted(row.key for row in rows if _names(number, row.key, row.body))

    def erase_number(self, e164: str) -> int:
        number = written(e164)
        with self.db.transaction() as conn:
            rows = conn.execute(_CLAIMS_NAMING, {"core": number.core}).all()
            keys = [row.key for row in rows if _names(number, row.key, row.body)]
            if keys:
                conn.execute(_ERASE_CLAIMS, {"keys": keys})
        return len(keys)


def _names(number, key: str, body: str | None) -> bool:
    return number.found_in(key) or number.found_in(body)


class SqlErasures:
    def __init__(self, db: Database):
        self.db = db
        report = db.insert(erasure_followers)
        self._report = report.on_conflict_do_update(
            index_elements=["id"],
            set_={name: report.excluded[name] for name in ("seen", "dropped", "beat")},
        )

    def add_erasure(self, mask: str) -> int:
        now = time.time()
        with self.db.transaction() as conn:
            if self.db.postgresql:  # no reader may see an id before a smaller one commits
                conn.execute(text("LOCK TABLE erasures IN SHARE ROW EXCLUSIVE MODE"))
            conn.execute(_ERASURES_PURGE, {"before": now - ERASURE_KEEP_SECONDS})
            return conn.execute(_ADD_ERASURE, {"mask": mask, "created_at": now}).scalar_one()

    def erasures_after(self, after: int, *, limit: int = 100) -> list[Erasure]:
        with self.db.reading() as conn:
            rows = conn.execute(_ERASURES_AFTER, {"after": after, "limit": limit}).all()
        return [Erasure(row.id, row.mask, row.created_at) for row in rows]

    def last_erasure_id(self) -> int:
        with self.db.reading() as conn:
            return conn.execute(_LAST_ERASURE).scalar() or 0

    def report_follower(
        self, follower: str, seen: int, dropped: int, *, stale_before: float
    ) -> None:
        row = {"id": follower, "seen": seen, "dropped": dropped, "beat": time.time()}
        with self.db.transaction() as conn:
            conn.execute(_FOLLOWERS_STALE, {"before": stale_before})
            conn.execute(self._report, row)

    def followers(self, *, since: float) -> list[Follower]:
        with self.db.reading() as conn:
            rows = conn.execute(_FOLLOWERS, {"since": since}).all()
        return [Follower(row.id, row.seen, row.dropped, row.beat) for row in rows]

    def leave(self, follower: str) -> None:
        with self.db.transaction() as conn:
            conn.execute(_FOLLOWER_LEAVE, {"id": follower})
