"""What a shared store keeps in Redis about one number (``privacy.NumberData``): screen-pop events
and claims; and the erasure log every process of every host follows (``privacy.Erasures``).

Events live in sorted sets (the global log and one per agent, ``redis.py``), claims in hashes
under ``claim:``. An erasure reads them (``SCAN``, bounded by what Redis keeps: 10,000 events in
the log, 1,000 per agent) and removes the members and keys that name the number
(``numbers.Written``); it is rare, so reading everything once is cheaper than indexing numbers.
The erasure log is a sorted set of ``<id>:<mask>`` scored by id (an ``INCR`` counter), trimmed to
its newest ``ERASURE_KEEP`` records.
"""

from __future__ import annotations

import time

from ..numbers import written
from .privacy import Erasure, Follower
from .redis import client, reaching_redis

ERASURE_KEEP = 1000
SCAN_COUNT = 500

# KEYS: the id counter, the log. ARGV: the mask, how many to keep.
ADD_ERASURE = """
local id = redis.call('INCR', KEYS[1])
redis.call('ZADD', KEYS[2], id, id .. ':' .. ARGV[2] .. ':' .. ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -tonumber(ARGV[3]) - 1)
return id
"""


class _Redis:
    def __init__(self, url: str, *, prefix: str = "cti:"):
        self.url = url
        self.prefix = prefix

    @property
    def redis(self):
        return client(self.url)

    def _keys(self, pattern: str) -> list[str]:
        return list(self.redis.scan_iter(match=f"{self.prefix}{pattern}", count=SCAN_COUNT))


class RedisEventNumbers(_Redis):
    """Screen-pop events (in the global log and each agent's) whose record names the number."""

    def _naming(self, e164: str) -> dict[str, list[str]]:
        number = written(e164)
        found = {}
        with reaching_redis():
            for key in self._keys("events:log") + self._keys("events:agent:*"):
                members = [m for m in self.redis.zrange(key, 0, -1) if number.found_in(m)]
                if members:
                    found[key] = members
        return found

    def for_number(self, e164: str) -> list:
        log = self._naming(e164).get(f"{self.prefix}events:log", [])
        return sorted(log, key=lambda member: int(member.partition(":")[0]), reverse=True)

    def erase_number(self, e164: str) -> int:
        found = self._naming(e164)
        with reaching_redis():
            for key, members in found.items():
                self.redis.zrem(key, *members)
        return len(found.get(f"{self.prefix}events:log", []))


class RedisClaimNumbers(_Redis):
    """Claims whose key or stored answer names the number."""

    def for_number(self, e164: str) -> list:
        number = written(e164)
        with reaching_redis():
            keys = self._keys("claim:*")
            pipe = self.redis.pipeline(transaction=False)
            for key in keys:
                pipe.hget(key, "body")
            bodies = pipe.execute() if keys else []
        return sorted(
            key.removeprefix(f"{self.prefix}claim:")
            for key, body in zip(keys, bodies, strict=True)
            if number.found_in(key) or number.found_in(body)
        )

    def erase_number(self, e164: str) -> int:
        keys = [f"{self.prefix}claim:{key}" for key in self.for_number(e164)]
        with reaching_redis():
            return self.redis.delete(*keys) if keys else 0


class RedisErasures(_Redis):
    def add_erasure(self, mask: str) -> int:
        keys = [f"{self.prefix}erasures:id", f"{self.prefix}erasures:log"]
        with reaching_redis():
            return int(self.redis.eval(ADD_ERASURE, 2, *keys, mask, time.time(), ERASURE_KEEP))

    def erasures_after(self, after: int, *, limit: int = 100) -> list[Erasure]:
        with reaching_redis():
            members = self.redis.zrangebyscore(
                f"{self.prefix}erasures:log", f"({int(after)}", "+inf", start=0, num=limit
            )
        found = []
        for member in members:
            erasure_id, at, mask = member.split(":", 2)
            found.append(Erasure(int(erasure_id), mask, float(at)))
        return found

    def last_erasure_id(self) -> int:
        with reaching_redis():
            return int(self.redis.get(f"{self.prefix}erasures:id") or 0)

    # the followers: a hash of "seen:dropped:beat" by follower id (a few per host)

    def report_follower(
        self, follower: str, seen: int, dropped: int, *, stale_before: float
    ) -> None:
        key = f"{self.prefix}erasures:followers"
        with reaching_redis():
            stale = [found.id for found in self._followers() if found.beat < stale_before]
            pipe = self.redis.pipeline(transaction=False)
            if stale:
                pipe.hdel(key, *stale)
            pipe.hset(key, follower, f"{int(seen)}:{int(dropped)}:{time.time()!r}")
            pipe.execute()

    def followers(self, *, since: float) -> list[Follower]:
        with reaching_redis():
            return [found for found in self._followers() if found.beat >= since]

    def leave(self, follower: str) -> None:
        with reaching_redis():
            self.redis.hdel(f"{self.prefix}erasures:followers", follower)

    def _followers(self) -> list[Follower]:
        found = []
        for follower, value in self.redis.hgetall(f"{self.prefix}erasures:followers").items():
            seen, dropped, beat = value.split(":")
            found.append(Follower(follower, int(seen), int(dropped), float(beat)))
        return found
