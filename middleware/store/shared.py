"""The store of several hosts: Redis for what is short-lived and hot, SQL for what must last.

Claims, rate windows and screen-pop events go to Redis (``RedisStore``); the journal and the
sandbox CRM go to the SQL store (PostgreSQL when hosts share it). Every method is spelled out, so
the Store interface stays the one list of what shared state there is.
"""

from __future__ import annotations

from ..errors import UpstreamUnavailable
from . import Claim, Event, JournalEntry, Store, Summarise
from .redis import RedisStore


class SharedStore:
    def __init__(self, redis: RedisStore, sql: Store, *, sql_name: str = "database"):
        self.redis = redis
        self.sql = sql
        self.sql_name = sql_name

    def check(self) -> None:
        """Both halves answer; the problem names each one that does not."""
        failed = []
        for name, part in (("redis", self.redis), (self.sql_name, self.sql)):
            try:
                part.check()
            except Exception as exc:
                failed.append((name, type(exc).__name__))
        if failed:
            names = " and ".join(name for name, _ in failed)
            reasons = ", ".join(f"{name}: {reason}" for name, reason in failed)
            raise UpstreamUnavailable(names, f"unreachable ({reasons})")

    def close(self) -> None:
        self.redis.close()
        self.sql.close()

    # Redis: claims, rate windows, live events --------------------------------------------------

    def claim(self, key: str, *, lease: float, fingerprint: str | None = None) -> Claim:
        return self.redis.claim(key, lease=lease, fingerprint=fingerprint)

    def peek(self, key: str) -> Claim | None:
        return self.redis.peek(key)

    def complete(self, key: str, token: str, *, status: int, body: str, ttl: float) -> None:
        self.redis.complete(key, token, status=status, body=body, ttl=ttl)

    def fail(self, key: str, token: str, *, body: str, ttl: float) -> None:
        self.redis.fail(key, token, body=body, ttl=ttl)

    def release(self, key: str, token: str) -> None:
        self.redis.release(key, token)

    def hit_rate(self, key: str, *, limit: int, window: float) -> float:
        return self.redis.hit_rate(key, limit=limit, window=window)

    def add_event(self, kind: str, agent: str | None, payload: dict) -> int:
        return self.redis.add_event(kind, agent, payload)

    def events_after(
        self, after: int, *, agent: str | None = None, limit: int = 100
    ) -> list[Event]:
        return self.redis.events_after(after, agent=agent, limit=limit)

    def last_event_id(self) -> int:
        return self.redis.last_event_id()

    # SQL: the sandbox CRM ----------------------------------------------------------------------

    def sandbox_contacts(self) -> list[dict]:
        return self.sql.sandbox_contacts()

    def add_sandbox_contact(self, contact: dict) -> None:
        self.sql.add_sandbox_contact(contact)

    def add_sandbox_call_log(self, payload: dict) -> None:
        self.sql.add_sandbox_call_log(payload)

    def sandbox_call_logs(self, limit: int = 100) -> list[dict]:
        return self.sql.sandbox_call_logs(limit)

    # SQL: the call journal ---------------------------------------------------------------------

    def journal_add(
        self,
        source: str,
        key: str,
        call_log: dict,
        *,
        recording_url: str | None = None,
        agent: str | None = None,
    ) -> tuple[JournalEntry, bool]:
        return self.sql.journal_add(source, key, call_log, recording_url=recording_url, agent=agent)

    def journal_add_leg(
        self, key: str, leg: str, event: str, fields: dict, *, summarise: Summarise
    ) -> tuple[JournalEntry, bool]:
        return self.sql.journal_add_leg(key, leg, event, fields, summarise=summarise)

    def journal_claim(
        self, owner: str, *, lease: float, now: float, limit: int = 1
    ) -> list[JournalEntry]:
        return self.sql.journal_claim(owner, lease=lease, now=now, limit=limit)

    def journal_release(self, owner: str, entry_ids: list[int]) -> int:
        return self.sql.journal_release(owner, entry_ids)

    def journal_delivered(self, entry_id: int, call_log: dict) -> bool:
        return self.sql.journal_delivered(entry_id, call_log)

    def journal_retry_later(self, entry_id: int, owner: str, *, at: float, error: str) -> bool:
        return self.sql.journal_retry_later(entry_id, owner, at=at, error=error)

    def journal_failed(self, entry_id: int, owner: str, *, error: str) -> bool:
        return self.sql.journal_failed(entry_id, owner, error=error)

    def journal_requeue(self, entry_id: int) -> JournalEntry | None:
        return self.sql.journal_requeue(entry_id)

    def journal_get(self, entry_id: int) -> JournalEntry | None:
        return self.sql.journal_get(entry_id)

    def journal_list(
        self,
        *,
        status: str | None = None,
        limit: int = 100,
        before: int | None = None,
        agent: str | None = None,
    ) -> list[JournalEntry]:
        return self.sql.journal_list(status=status, limit=limit, before=before, agent=agent)

    def journal_counts(self) -> dict[str, int]:
        return self.sql.journal_counts()
