"""Claims and rate windows in Redis (``claims.Claims``), for every host at once; and the Redis
client every Redis part of the store shares.

With ``CTI_REDIS_URL`` set, ``build_store`` makes a ``SharedStore``: claims (click-to-call dedupe
and ``Idempotency-Key`` records), sliding rate windows, the screen-pop event log
(``redis_events.py``) and the board go to Redis, the journal and the sandbox CRM to the SQL
database. Each read-then-write is one Lua script, so it is atomic across every worker of every
host; expiry is Redis's own (``PX`` in milliseconds), and rate windows are timed by the Redis
server's clock, so hosts with drifting clocks still share one window.

One client (and so one connection pool) per process and URL, made on first use: gunicorn forks
after import, and a socket must never be shared by two processes. A command that cannot reach
Redis raises ``SharedStoreUnavailable`` (503 ``upstream_unavailable``), so click-to-call refuses
rather than risk a second call and a ring webhook is retried by its sender. redis-py reconnects
by itself when Redis is back; nothing here keeps a broken state.
"""

from __future__ import annotations

import math
import threading
import uuid
from contextlib import contextmanager

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..errors import UpstreamUnavailable
from ..runtime.forks import PerProcess
from .claims import OWNER, Claim

CONNECT_TIMEOUT = 0.5  # seconds to open a connection; Redis is on the local network
READ_TIMEOUT = 1.0  # seconds for an answer; every command here is O(log n) or a short script
HEALTH_CHECK_SECONDS = 5  # a connection idle this long is PINGed first (it may predate a restart)


class _Clients:
    """This process's clients, by URL."""

    def __init__(self):
        self.lock = threading.Lock()
        self.by_url: dict[str, redis.Redis] = {}


_clients = PerProcess(_Clients)  # a forked child makes its own


def client(url: str) -> redis.Redis:
    """This process's client for ``url``, made on first use (and again after a fork)."""
    clients = _clients.get()
    found = clients.by_url.get(url)
    if found is None:
        with clients.lock:
            found = clients.by_url.get(url)
            if found is None:
                found = clients.by_url[url] = redis.Redis.from_url(
                    url,
                    decode_responses=True,
                    socket_connect_timeout=CONNECT_TIMEOUT,
                    socket_timeout=READ_TIMEOUT,
                    # One retry, on a refused or reset connection only (a pooled socket from
                    # before a restart): a timed-out command may have run, so it is never repeated.
                    retry=Retry(NoBackoff(), 1, (redis.ConnectionError,)),
                    health_check_interval=HEALTH_CHECK_SECONDS,
                )
    return found


class SharedStoreUnavailable(UpstreamUnavailable):
    """Redis cannot be reached: the caller answers 503 (the detail never holds the URL)."""

    def __init__(self, error: BaseException):
        super().__init__("redis", f"the shared store is unreachable ({type(error).__name__})")


@contextmanager
def reaching_redis():
    """Turn redis-py's errors into our 503 problem."""
    try:
        yield
    except redis.RedisError as exc:
        raise SharedStoreUnavailable(exc) from None


def ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


CLAIM = """
local state = redis.call('HGET', KEYS[1], 'state')
if state and state ~= 'failed' then
  return redis.call('HMGET', KEYS[1], 'state', 'token', 'fingerprint', 'status', 'body')
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'state', 'pending', 'token', ARGV[1])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'fingerprint', ARGV[3]) end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return false
"""

SETTLE = """
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'body', ARGV[3])
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[1], 'status', ARGV[4])
else
  redis.call('HDEL', KEYS[1], 'status')
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"""

RELEASE = """
if redis.call('HGET', KEYS[1], 'token') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# A sliding window in the Redis server's time (ms): drop hits older than the window, then count.
HIT_RATE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return tonumber(oldest[2]) + window - now
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return 0
"""


class Scripts:
    """A part's Lua scripts, registered once per process (EVALSHA, falling back to EVAL after a
    Redis restart)."""

    def __init__(self, url: str):
        self.url = url
        self._registered = PerProcess(dict)

    def __call__(self, name: str, source: str):
        scripts = self._registered.get()
        script = scripts.get(name)
        if script is None:
            script = scripts[name] = client(self.url).register_script(source)
        return script


class RedisClaims:
    """Claims and rate windows, in Redis under ``prefix``."""

    def __init__(self, url: str, *, prefix: str = "cti:"):
        self.url = url
        self.prefix = prefix
        self._script = Scripts(url)

    @property
    def redis(self) -> redis.Redis:
        return client(self.url)

    # claims ------------------------------------------------------------------------------------

    def _claim_key(self, key: str) -> str:
        return f"{self.prefix}claim:{key}"

    def claim(self, key: str, *, lease: float, fingerprint: str | None = None) -> Claim:
        token = uuid.uuid4().hex
        with reaching_redis():
            row = self._script("claim", CLAIM)(
                keys=[self._claim_key(key)], args=[token, ms(lease), fingerprint or ""]
            )
        if row is None:
            return Claim(OWNER, token, fingerprint)
        return _claim(row)

    def peek(self, key: str) -> Claim | None:
        with reaching_redis():
            row = self.redis.hmget(
                self._claim_key(key), "state", "token", "fingerprint", "status", "body"
            )
        return _claim(row) if row[0] is not None else None

    def complete(self, key: str, token: str, *, status: int, body: str, ttl: float) -> None:
        self._settle(key, token, "done", status, body, ttl)

    def fail(self, key: str, token: str, *, body: str, ttl: float) -> None:
        self._settle(key, token, "failed", None, body, ttl)

    def release(self, key: str, token: str) -> None:
        with reaching_redis():
            self._script("release", RELEASE)(keys=[self._claim_key(key)], args=[token])

    def _settle(self, key, token, state, status, body, ttl) -> None:
        args = [token, state, body, "" if status is None else str(status), ms(ttl)]
        with reaching_redis():
            self._script("settle", SETTLE)(keys=[self._claim_key(key)], args=args)

    # rate windows ------------------------------------------------------------------------------

    def hit_rate(self, key: str, *, limit: int, window: float, hit: str | None = None) -> float:
        with reaching_redis():
            wait_ms = self._script("hit_rate", HIT_RATE)(
                keys=[f"{self.prefix}rate:{key}"],
                args=[limit, ms(window), hit or uuid.uuid4().hex],
            )
        if not wait_ms:
            return 0.0
        return max(1.0, math.ceil(int(wait_ms) / 1000))

    def take_back_rate(self, key: str, hit: str) -> None:
        with reaching_redis():
            self.redis.zrem(f"{self.prefix}rate:{key}", hit)


def _claim(row) -> Claim:
    state, token, fingerprint, status, body = row
    return Claim(state, token, fingerprint, int(status) if status is not None else None, body)
