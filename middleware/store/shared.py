"""The store of several hosts: Redis for what is short-lived and hot, SQL for what must last.

Claims, rate windows, screen-pop events and the board go to Redis (``redis.RedisClaims``,
``redis_events.RedisEvents``, ``redis_board.RedisBoard``); the journal, its reports, the callbacks
and the sandbox CRM to the SQL database (``sql.SqlJournal``, ``sql.SqlReports``,
``sql.SqlSandbox``; PostgreSQL when hosts share it). Each part is its own object; this one only
builds them on the Redis URL and the ``Database``, and checks both halves.
"""

from __future__ import annotations

from ..errors import UpstreamUnavailable
from .redis import RedisClaims, client
from .redis_board import RedisBoard
from .redis_events import RedisEvents
from .redis_privacy import RedisClaimNumbers, RedisErasures, RedisEventNumbers
from .sql import (
    Database,
    SqlCallbacks,
    SqlJournal,
    SqlJournalNumbers,
    SqlReports,
    SqlRetention,
    SqlSandbox,
)


class SharedStore:
    def __init__(self, redis_url: str, db: Database):
        self.redis_url = redis_url
        self.db = db
        self.claims = RedisClaims(redis_url)
        self.events = RedisEvents(redis_url)
        self.journal = SqlJournal(db)
        self.sandbox = SqlSandbox(db)
        self.retention = SqlRetention(db)  # the journal's; Redis expires its own keys
        self.callbacks = SqlCallbacks(db)
        # privacy: what holds numbers, and the erasure log every host follows
        self.journal_numbers = SqlJournalNumbers(db)
        self.event_numbers = RedisEventNumbers(redis_url)
        self.claim_numbers = RedisClaimNumbers(redis_url)
        self.erasures = RedisErasures(redis_url)
        self.board = RedisBoard(redis_url, self.events)
        self.reports = SqlReports(db)

    def check(self) -> None:
        """Both halves answer; the problem names each one that does not."""
        failed = []
        halves = (
            ("redis", lambda: client(self.redis_url).ping()),  # redis-py's error names the trouble
            (self.db.backend, self.db.check),
        )
        for name, check in halves:
            try:
                check()
            except Exception as exc:
                failed.append((name, type(exc).__name__))
        if failed:
            names = " and ".join(name for name, _ in failed)
            reasons = ", ".join(f"{name}: {reason}" for name, reason in failed)
            raise UpstreamUnavailable(names, f"unreachable ({reasons})")

    def close(self) -> None:
        self.db.close()  # Redis connections belong to the process-wide pool
