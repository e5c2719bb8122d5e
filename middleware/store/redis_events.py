"""Live events in Redis (``events.Events``), for every host at once.

The log is a sorted set of ``<id>:<json>`` members scored by id (an ``INCR`` counter), kept
globally and per agent; each keeps its newest entries only, and disappears an hour after its last
event (Redis's own expiry), so nothing needs purging. One Lua script appends to both.
"""

from __future__ import annotations

import json
import time

from .events import ALL_AGENTS, Event
from .redis import Scripts, client, ms, reaching_redis

EVENT_KEEP = 1000  # events kept per agent (and 10x that in the global log) for Last-Event-ID
EVENT_KEEP_SECONDS = 3600  # an agent's log with no new event for this long disappears

# KEYS: the id counter, the global log, the agent's log (absent for an event without agent).
# Members are "<id>:<json>", scored by id; each log keeps its newest entries only.
ADD_EVENT = """
local id = redis.call('INCR', KEYS[1])
local member = id .. ':' .. ARGV[1]
local keep = tonumber(ARGV[2])
redis.call('ZADD', KEYS[2], id, member)
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(keep * 10) - 1)
redis.call('PEXPIRE', KEYS[2], ARGV[3])
if KEYS[3] then
  redis.call('ZADD', KEYS[3], id, member)
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -keep - 1)
  redis.call('PEXPIRE', KEYS[3], ARGV[3])
end
return id
"""


class RedisEvents:
    """The event log, in Redis under ``prefix``."""

    def __init__(self, url: str, *, prefix: str = "cti:"):
        self.url = url
        self.prefix = prefix
        self._script = Scripts(url)

    @property
    def redis(self):
        return client(self.url)

    def _log_key(self, agent: str | None) -> str:
        return f"{self.prefix}events:log" if agent is None else f"{self.prefix}events:agent:{agent}"

    rides_journal = False  # another database than the journal's: written after it

    def ride(self, kind: str, agent: str | None, payload: dict) -> int:
        return self.add(kind, agent, payload)

    def add(self, kind: str, agent: str | None, payload: dict) -> int:
        record = json.dumps(
            {"kind": kind, "agent": agent, "payload": payload, "created_at": time.time()},
            separators=(",", ":"),
        )
        keys = [f"{self.prefix}events:id", self._log_key(None)]
        if agent is not None:
            keys.append(self._log_key(agent))
        with reaching_redis():
            return int(
                self._script("add_event", ADD_EVENT)(
                    keys=keys, args=[record, EVENT_KEEP, ms(EVENT_KEEP_SECONDS)]
                )
            )

    def after(self, after: int, *, agent: str | None = None, limit: int = 100) -> list[Event]:
        logs = [self._log_key(agent)] + ([self._log_key(ALL_AGENTS)] if agent else [])
        with reaching_redis():
            members = [
                member
                for key in logs
                for member in self.redis.zrangebyscore(
                    key, f"({int(after)}", "+inf", start=0, num=limit
                )
            ]
        if len(logs) > 1:  # the agent's own and every agent's, merged by id
            members = sorted(members, key=lambda member: int(member.partition(":")[0]))[:limit]
        events = []
        for member in members:
            event_id, _, text = member.partition(":")
            record = json.loads(text)
            events.append(
                Event(
                    int(event_id),
                    record["kind"],
                    record["agent"],
                    record["payload"],
                    record["created_at"],
                )
            )
        return events

    def last_id(self) -> int:
        with reaching_redis():
            return int(self.redis.get(f"{self.prefix}events:id") or 0)
