"""Claims, rate windows and live events in Redis (``claims.Claims``), for every host at once.

With ``CTI_REDIS_URL`` set, ``build_store`` makes a ``SharedStore``: claims (click-to-call dedupe
and ``Idempotency-Key`` records), sliding rate windows and the screen-pop event log go to Redis, the
journal and the sandbox CRM to the SQL database. Each read-then-write is one Lua script, so it is
atomic across every worker of every host; expiry is Redis's own (``PX`` in milliseconds), and rate
windows are timed by the Redis server's clock, so hosts with drifting clocks still share one window.

One client (and so one connection pool) per process and URL, made on first use: gunicorn forks
after import, and a socket must never be shared by two processes. A command that cannot reach
Redis raises ``SharedStoreUnavailable`` (503 ``upstream_unavailable``), so click-to-call refuses
rather than risk a second call and a ring webhook is retried by its sender. redis-py reconnects
by itself when Redis is back; nothing here keeps a broken state.
"""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from contextlib import contextmanager

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..errors import UpstreamUnavailable
from ..runtime.forks import PerProcess
from .claims import ALL_AGENTS, OWNER, Claim, Event

CONNECT_TIMEOUT = 0.5  # seconds to open a connection; Redis is on the local network
READ_TIMEOUT = 1.0  # seconds for an answer; every command here is O(log n) or a short script
HEALTH_CHECK_SECONDS = 5  # a connection idle this long is PINGed first (it may predate a restart)
EVENT_KEEP = 1000  # events kept per agent (and 10x that in the global log) for Last-Event-ID
EVENT_KEEP_SECONDS = 3600  # an agent's log with no new event for this long disappears


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


def _ms(seconds: float) -> int:
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


class RedisClaims:
    """Claims, rate windows and events, in Redis under ``prefix``."""

    def __init__(self, url: str, *, prefix: str = "cti:"):
        self.url = url
        self.prefix = prefix
        self._scripts = PerProcess(dict)  # registered once per process

    @property
    def redis(self) -> redis.Redis:
        return client(self.url)

    def _script(self, name: str, source: str):
        """Registered per process (EVALSHA, falling back to EVAL after a Redis restart)."""
        scripts = self._scripts.get()
        script = scripts.get(name)
        if script is None:
            script = scripts[name] = self.redis.register_script(source)
        return script

    def check(self) -> None:
        """Raise redis-py's own error (its type names the trouble in ``/readyz``)."""
        self.redis.ping()

    def close(self) -> None:
        """Connections belong to the process-wide pool, which closes at exit."""

    # claims ------------------------------------------------------------------------------------

    def _claim_key(self, key: str) -> str:
        return f"{self.prefix}claim:{key}"

    def claim(self, key: str, *, lease: float, fingerprint: str | None = None) -> Claim:
        token = uuid.uuid4().hex
        with reaching_redis():
            row = self._script("claim", CLAIM)(
                keys=[self._claim_key(key)], args=[token, _ms(lease), fingerprint or ""]
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
        args = [token, state, body, "" if status is None else str(status), _ms(ttl)]
        with reaching_redis():
            self._script("settle", SETTLE)(keys=[self._claim_key(key)], args=args)

    # rate windows ------------------------------------------------------------------------------

    def hit_rate(self, key: str, *, limit: int, window: float) -> float:
        with reaching_redis():
            wait_ms = self._script("hit_rate", HIT_RATE)(
                keys=[f"{self.prefix}rate:{key}"],
                args=[limit, _ms(window), uuid.uuid4().hex],
            )
        if not wait_ms:
            return 0.0
        return max(1.0, math.ceil(int(wait_ms) / 1000))

    # live events -------------------------------------------------------------------------------

    def _log_key(self, agent: str | None) -> str:
        return f"{self.prefix}events:log" if agent is None else f"{self.prefix}events:agent:{agent}"

    def add_event(self, kind: str, agent: str | None, payload: dict) -> int:
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
                    keys=keys, args=[record, EVENT_KEEP, _ms(EVENT_KEEP_SECONDS)]
                )
            )

    def events_after(
        self, after: int, *, agent: str | None = None, limit: int = 100
    ) -> list[Event]:
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

    def last_event_id(self) -> int:
        with reaching_redis():
            return int(self.redis.get(f"{self.prefix}events:id") or 0)


def _claim(row) -> Claim:
    state, token, fingerprint, status, body = row
    return Claim(state, token, fingerprint, int(status) if status is not None else None, body)
