"""The supervisor's board in Redis (``board.Board``), for every host at once.

With ``CTI_REDIS_URL`` set the board lives beside the other short-lived, hot state: a hash of the
agents' statuses (and one of the times they were set), a set of the agents seen, a hash per leg
that expires 4 hours after the leg started, and per agent a sorted set of its legs by start. Each
write is one Lua script: a status is kept only if it is the latest, a leg only moves forward (and
forgets its customer's number when it ends); a change is then announced on the event log of
``events`` (the store's ``RedisEvents``).
"""

from __future__ import annotations

from ..runtime.forks import PerProcess
from .board import KEEP_SECONDS, RANKS, AgentState, Announce, BoardLeg
from .redis import client, reaching_redis

# KEYS: statuses, their times, the agents seen. ARGV: extension, status, at.
STATUS = """
local at = redis.call('HGET', KEYS[2], ARGV[1])
if at and tonumber(at) > tonumber(ARGV[3]) then return 0 end
local before = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[1])
if before == ARGV[2] then return 0 end
return 1
"""

# KEYS: the leg's hash, the agent's legs, the agents seen. ARGV: leg, extension, call id,
# direction, number ('' for none), state, rank, since, started, now, keep (seconds).
LEG = """
local rank = tonumber(redis.call('HGET', KEYS[1], 'rank') or '0')
if rank >= tonumber(ARGV[7]) then return 0 end
local expires = math.floor((tonumber(ARGV[9]) + tonumber(ARGV[11])) * 1000)
local number = ARGV[5]
if ARGV[6] == 'ended' then number = '' end
if rank == 0 then
  redis.call('HSET', KEYS[1], 'extension', ARGV[2], 'call_id', ARGV[3], 'direction', ARGV[4],
    'number', number, 'started', ARGV[9])
  redis.call('ZADD', KEYS[2], ARGV[9], ARGV[1])
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[10]) - tonumber(ARGV[11]))
  redis.call('PEXPIREAT', KEYS[2], expires)
  redis.call('SADD', KEYS[3], ARGV[2])
elseif number == '' or redis.call('HGET', KEYS[1], 'number') == '' then
  redis.call('HSET', KEYS[1], 'number', number)
end
redis.call('HSET', KEYS[1], 'state', ARGV[6], 'rank', ARGV[7], 'since', ARGV[8])
redis.call('PEXPIREAT', KEYS[1], expires)
return 1
"""


class RedisBoard:
    rides_journal = False  # another database than the journal's: written after it

    def __init__(self, url: str, events, *, prefix: str = "cti:board:"):
        self.url = url
        self.events = events  # ``events.Events``: the event log in Redis
        self.prefix = prefix
        self._statuses = f"{prefix}status"
        self._status_times = f"{prefix}status_at"
        self._seen = f"{prefix}seen"
        self._scripts = PerProcess(dict)

    def _script(self, name: str, source: str):
        scripts = self._scripts.get()
        if name not in scripts:
            scripts[name] = client(self.url).register_script(source)
        return scripts[name]

    def _legs_key(self, extension: str) -> str:
        return f"{self.prefix}legs:{extension}"

    def board_status(self, extension: str, status: str, *, at: float, announce: Announce) -> bool:
        keys = [self._statuses, self._status_times, self._seen]
        with reaching_redis():
            changed = self._script("status", STATUS)(keys=keys, args=[extension, status, at])
        return self._announced(changed, announce)

    def _announced(self, changed, announce: Announce) -> bool:
        if changed:
            self.events.add(*announce)
        return bool(changed)

    def board_leg(self, leg: BoardLeg, *, now: float, announce: Announce) -> bool:
        if leg.started <= now - KEEP_SECONDS:
            return False
        keys = [f"{self.prefix}leg:{leg.leg}", self._legs_key(leg.extension), self._seen]
        args = [
            leg.leg,
            leg.extension,
            leg.call_id,
            leg.direction,
            leg.number or "",
            leg.state,
            RANKS[leg.state],
            leg.since,
            leg.started,
            now,
            KEEP_SECONDS,
        ]
        with reaching_redis():
            changed = self._script("leg", LEG)(keys=keys, args=args)
        return self._announced(changed, announce)

    def board_agents(self, *, since: float) -> list[AgentState]:
        with reaching_redis():
            extensions = sorted(client(self.url).smembers(self._seen))
        return self._states(extensions, since)

    def board_agent(self, extension: str, *, since: float) -> AgentState:
        with reaching_redis():
            seen = client(self.url).sismember(self._seen, extension)
        return self._states([extension], since)[0] if seen else AgentState(extension)

    def for_number(self, e164: str) -> list:
        return sorted(
            (leg for leg in self._every_leg() if leg.number == e164),
            key=lambda leg: leg.started,
            reverse=True,
        )

    def erase_number(self, e164: str) -> int:
        """Few legs are held (4 hours of calls): each is read, and those of the number deleted."""
        legs = [leg for leg in self._every_leg() if leg.number == e164]
        if legs:
            with reaching_redis():
                pipe = client(self.url).pipeline(transaction=False)
                for leg in legs:
                    pipe.delete(f"{self.prefix}leg:{leg.leg}")
                    pipe.zrem(self._legs_key(leg.extension), leg.leg)
                pipe.execute()
        return len(legs)

    def _every_leg(self) -> list[BoardLeg]:
        """Every leg held, ended ones too."""
        redis = client(self.url)
        with reaching_redis():
            extensions = sorted(redis.smembers(self._seen))
            pipe = redis.pipeline(transaction=False)
            for extension in extensions:
                pipe.zrange(self._legs_key(extension), 0, -1)
            ids = [leg for found in pipe.execute() for leg in found]
            pipe = redis.pipeline(transaction=False)
            for leg in ids:
                pipe.hgetall(f"{self.prefix}leg:{leg}")
            found = pipe.execute()
        return [leg for leg in map(_leg, ids, found) if leg is not None]

    def _states(self, extensions: list[str], since: float) -> list[AgentState]:
        """Two round trips: the statuses and leg ids, then the legs."""
        if not extensions:
            return []
        redis = client(self.url)
        with reaching_redis():
            pipe = redis.pipeline(transaction=False)
            pipe.hmget(self._statuses, extensions)
            for extension in extensions:
                pipe.zrangebyscore(self._legs_key(extension), f"({since}", "+inf")
            statuses, *leg_ids = pipe.execute()
            pipe = redis.pipeline(transaction=False)
            for ids in leg_ids:
                for leg in ids:
                    pipe.hgetall(f"{self.prefix}leg:{leg}")
            legs = iter(pipe.execute())
        states = []
        for extension, status, ids in zip(extensions, statuses, leg_ids, strict=True):
            found = [_leg(leg, next(legs)) for leg in ids]
            kept = tuple(leg for leg in found if leg is not None and leg.state != "ended")
            states.append(AgentState(extension, status, kept))
        return states


def _leg(leg: str, fields: dict) -> BoardLeg | None:
    if not fields.get("state"):
        return None  # expired between the two round trips
    return BoardLeg(
        leg,
        fields["extension"],
        fields["call_id"],
        fields["direction"],
        fields.get("number") or None,
        fields["state"],
        float(fields["since"]),
        float(fields["started"]),
    )
