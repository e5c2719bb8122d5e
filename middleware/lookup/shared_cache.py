"""The contact cache of every host, in Redis, with a single flight across hosts.

With ``CTI_REDIS_URL`` set, the lookup service keeps its in-process ``ContactCache`` as a short
first level (``CTI_CACHE_LOCAL_TTL`` seconds, so a hot hit does no I/O) and this cache as the second:
fresh, negative and stale entries live in Redis under the cache key (E.164 number or ``email:`` +
lower-cased address) as JSON with their wall-clock ``fresh_until`` and ``stale_until``, expiring
with the stale window. A miss takes a lock (``SET NX PX``) so that one lookup on one host asks the
CRM; the others poll for its answer (or its failure) until the lookup deadline.

Redis is a cache here, never a dependency: when it cannot be reached, each call falls back to what
it would do without it (no entry, ask the CRM directly), logging the outage at most every few
seconds.
"""

from __future__ import annotations

import json
import logging
import time
import uuid

import redis

from ..errors import Problem, UpstreamTimeout, problem_from_dict
from ..store.redis import client, reaching_redis
from .cache import Entry, Lifetimes

log = logging.getLogger(__name__)

POLL_SECONDS = 0.02  # a follower's look at the leader's progress
LOCK_MARGIN_SECONDS = 1.0  # a lock outlives its leader's deadline by this much (then it is free)
FAILURE_VISIBLE_MS = 2000  # a leader's failure stays readable by its followers this long
WARN_EVERY_SECONDS = 10.0
ERASE_BATCH = 500  # keys read per round trip by an erasure

# Take the lock when it is free or holds a finished failure ("E<token>:<problem>").
ACQUIRE = """
local held = redis.call('GET', KEYS[1])
if held and string.sub(held, 1, 1) ~= 'E' then return held end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
"""

# Store the leader's answer only while it still holds the lock (``forget`` drops the lock).
PUT = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('DEL', KEYS[2])
return 1
"""

# End the leader's flight with a failure its followers can read.
FAILED = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], 'E' .. ARGV[1] .. ':' .. ARGV[2], 'PX', ARGV[3])
return 1
"""

RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class SharedContactCache:
    def __init__(self, url: str, lifetimes: Lifetimes, *, prefix: str = "cti:contact:"):
        self.url = url
        self.lifetimes = lifetimes
        self.prefix = prefix
        self._warned = 0.0

    @property
    def redis(self) -> redis.Redis:
        return client(self.url)

    def _keys(self, key: str) -> tuple[str, str]:
        return f"{self.prefix}{key}", f"{self.prefix}lock:{key}"

    # entries ----------------------------------------------------------------------------------

    def get(self, key: str) -> Entry | None:
        """The entry under ``key`` (fresh or stale, times on our monotonic clock), or None; None
        also when Redis cannot be reached."""
        try:
            text = self.redis.get(self._keys(key)[0])
        except redis.RedisError as exc:
            self._unreachable(exc)
            return None
        return _entry(text)

    def forget(self, key: str) -> None:
        """Drop the entry and any flight in progress for it (its answer is then not stored)."""
        try:
            self.redis.delete(*self._keys(key))
        except redis.RedisError as exc:
            self._unreachable(exc)

    def erase(self, holds) -> list[str]:
        """Delete every entry for which ``holds(key, contact)`` (a privacy erasure: every host
        reads them here), and the flight lock of each such key, so an answer in flight is not
        stored; the keys deleted. Reads every entry once (``SCAN``): erasures are rare. Unlike a
        lookup, an erasure fails (503) when Redis cannot be reached: it must not half succeed."""
        found = []
        lock_prefix = f"{self.prefix}lock:"
        with reaching_redis():
            names = [
                name
                for name in self.redis.scan_iter(match=f"{self.prefix}*", count=ERASE_BATCH)
                if not name.startswith(lock_prefix)
            ]
            for start in range(0, len(names), ERASE_BATCH):
                batch = names[start : start + ERASE_BATCH]
                for name, text in zip(batch, self.redis.mget(batch), strict=True):
                    key = name[len(self.prefix) :]
                    entry = _entry(text)
                    if holds(key, entry.contact if entry is not None else None):
                        found.append(key)
            if found:
                self.redis.delete(*(name for key in found for name in self._keys(key)))
        return found

    # single flight ----------------------------------------------------------------------------

    def fetch(self, key: str, fetch, deadline: float, *, upstream: str) -> dict | None:
        """``fetch()``'s answer for ``key``, asked by one caller across every host.

        The lock holder calls ``fetch`` and stores its answer; the others poll for the answer
        until ``deadline`` (monotonic) and raise the holder's failure, or ``UpstreamTimeout``.
        """
        entry_key, lock_key = self._keys(key)
        token = uuid.uuid4().hex
        try:
            while True:
                lease = max(deadline - time.monotonic(), 0) + LOCK_MARGIN_SECONDS
                holder = self.redis.eval(ACQUIRE, 1, lock_key, token, int(lease * 1000))
                if holder is None:
                    break
                found = self._follow(entry_key, lock_key, holder, deadline)
                if found is not None:
                    return found[0]
                if time.monotonic() >= deadline:
                    raise UpstreamTimeout(upstream, "did not answer in time")
            # Another host may have stored the answer between our read and our lock.
            entry = _entry(self.redis.get(entry_key))
            if entry is not None and time.monotonic() < entry.fresh_until:
                self.redis.eval(RELEASE, 1, lock_key, token)
                return entry.contact
        except redis.RedisError as exc:
            self._unreachable(exc)
            return fetch()
        return self._lead(entry_key, lock_key, token, fetch)

    def _lead(self, entry_key: str, lock_key: str, token: str, fetch) -> dict | None:
        try:
            contact = fetch()
        except Problem as problem:
            failure = json.dumps({"problem": problem.to_dict(), "headers": problem.headers})
            self._quietly(FAILED, lock_key, token, failure, FAILURE_VISIBLE_MS)
            raise
        except BaseException:
            self._quietly(RELEASE, lock_key, token)
            raise
        now = time.time()
        fresh, revalidate, stale = self.lifetimes.of(contact, now)
        record = {
            "contact": contact,
            "fresh_until": fresh,
            "revalidate_until": revalidate,
            "stale_until": stale,
        }
        keep_ms = max(1, int((record["stale_until"] - now) * 1000))
        self._quietly(PUT, entry_key, lock_key, token, json.dumps(record), keep_ms, keys=2)
        return contact

    def _follow(self, entry_key, lock_key, holder, deadline) -> tuple[dict | None] | None:
        """Poll while ``holder`` leads: (its answer,), its failure raised, or None when the lock
        is gone or changed hands without an answer (then the caller tries to take it)."""
        failed = "E" + holder + ":"
        while time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
            text, held = self.redis.mget(entry_key, lock_key)
            entry = _entry(text)
            if entry is not None and time.monotonic() < entry.fresh_until:
                return (entry.contact,)
            if held is not None and held.startswith(failed):
                failure = json.loads(held[len(failed) :])
                raise problem_from_dict(failure["problem"], failure["headers"])
            if held != holder:
                return None
        return None

    def _quietly(self, script: str, *args, keys: int = 1) -> None:
        """A leader's write-back: losing it costs a CRM request later, never the answer now."""
        try:
            self.redis.eval(script, keys, *args)
        except redis.RedisError as exc:
            self._unreachable(exc)

    def _unreachable(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._warned >= WARN_EVERY_SECONDS:
            self._warned = now
            log.warning(
                "contact cache: Redis unreachable (%s); asking the CRM directly",
                type(exc).__name__,
            )


def _entry(text: str | None) -> Entry | None:
    if text is None:
        return None
    record = json.loads(text)
    offset = time.monotonic() - time.time()
    fresh = record["fresh_until"] + offset
    revalidate = record.get("revalidate_until", record["fresh_until"]) + offset
    return Entry(record["contact"], fresh, record["stale_until"] + offset, revalidate)


def build_shared_cache(settings) -> SharedContactCache | None:
    """The shared contact cache when ``CTI_REDIS_URL`` is set, else None (one cache per worker)."""
    if not settings.redis_url:
        return None
    lifetimes = Lifetimes(
        settings.cache_ttl,
        settings.cache_negative_ttl,
        settings.cache_stale_ttl,
        settings.cache_revalidate_ttl,
    )
    return SharedContactCache(settings.redis_url, lifetimes)
