"""Callbacks: a missed call opens one for its number; calling the number back closes it.

The journal marks each pbx and ibizfone entry for the callbacks in the row that stores it
(``store/sql/journal.py``, ``for_callbacks``). Once the entry's log is made (an IVR push at once;
a cc_agent call when its legs have settled) ``settle`` applies it, exactly once, by ``effect``: a Missed log opens the
number's callback (or counts one more miss on the one open or assigned), an Inbound or Outbound log
closes it (``answered``). Settling runs in every deliverer pass before entries are claimed
(``services/delivery.py``) and before each listing, so a list never misses a made log even where
no deliverer runs. A click-to-call placed to the number closes it too (``called``,
``services/calls.py``), and a supervisor may dismiss it.

Every change is published in the store's event log as a ``callback`` event (the callback as the API
shows it), for the callback's agent, or for every agent (``ALL_AGENTS``) while it is open: the
agents' streams carry it as ``event: callback`` and the console reads it from the log.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable

from ..auth import AGENT, Principal
from ..errors import Conflict, Forbidden, NotFound, ValidationFailed
from ..journal.call_logs import INBOUND, MISSED, OUTBOUND
from ..numbers import NumberError, e164, parse
from ..store import Callback, Events
from ..store import Callbacks as CallbacksPart
from ..store.callbacks import (
    ASSIGNED,
    CALLBACK_SOURCES,
    DONE_CALLBACK,
    OPEN,
    Effect,
    LoggedCall,
)
from ..store.events import ALL_AGENTS
from .events import CALLBACK

log = logging.getLogger(__name__)

STATUSES = (OPEN, ASSIGNED, DONE_CALLBACK)
SETTLE_BATCH = 200
SETTLE_BATCHES = 10  # per pass; a longer backlog is settled by the next passes
MAX_ID = 2**63  # ids are 64-bit signed integers in every store


class CallbackConflict(Conflict):
    title = "Conflict"


def effect(call: LoggedCall, region: str = "ZZ") -> Effect | None:
    """What a made call log does to its number's callback (contract section 4). ``region``:
    any (a number with its ``+`` parses alike in every region); the app's default region shares
    the parse's memo with the deliverer's lookup of the same number."""
    body = call.call_log
    number = body.get("Number")
    if call.source not in CALLBACK_SOURCES or not _is_e164(number, region):
        return None  # a withheld or internal number has nobody to call back
    if body.get("CallType") == MISSED:
        return Effect("miss", number, name=body.get("Name") or None)
    if body.get("CallType") in (INBOUND, OUTBOUND):
        return Effect("answer", number, agent=call.agent)
    return None


def _is_e164(number, region: str = "ZZ") -> bool:
    if not isinstance(number, str) or not number.startswith("+"):
        return False
    try:
        return e164(parse(number, region)) == number
    except NumberError:
        return False


class Callbacks:
    def __init__(
        self,
        part: CallbacksPart,
        events: Events,
        dump: Callable[[Callback], dict],
        *,
        region: str = "ZZ",
        clock=time.time,
    ):
        self.part = part  # the store's callbacks (``store.callbacks``)
        self.events = events
        self.dump = dump  # the API's schema, given by the factory: events carry what GET shows
        self.region = region  # CTI_DEFAULT_REGION: see ``effect``
        self._rule = functools.partial(effect, region=region)
        self.clock = clock

    # the journal's logs and the click-to-calls -------------------------------------------------

    def settle(self, now: float | None = None) -> int:
        """Apply the made logs waiting for the callbacks; how many callbacks changed."""
        changes = 0
        for _ in range(SETTLE_BATCHES):
            at = self.clock() if now is None else now
            changed, more = self.part.settle(self._rule, now=at, limit=SETTLE_BATCH)
            for callback in changed:
                self._publish(callback)
            changes += len(changed)
            if not more:
                break
        return changes

    def called(self, number, agent: str) -> None:
        """A click-to-call to ``number`` (parsed) was placed by ``agent``: its callback is done.
        The call is placed whatever happens here, so a failure is logged, not raised."""
        try:
            self.settle()  # a miss logged by now counts, even before a deliverer settled it
            for callback in self.part.called(e164(number), agent, now=self.clock()):
                self._publish(callback)
        except Exception as exc:
            log.warning("callbacks: a placed call could not close its callback: %s", exc)

    def delivered(self, source: str, call_log: dict) -> None:
        """A delivered log's ``Name`` (the CRM's contact) names its number's callback."""
        if source not in CALLBACK_SOURCES or call_log.get("CallType") != MISSED:
            return
        number, name = call_log.get("Number"), call_log.get("Name")
        if not name or not _is_e164(number, self.region):
            return
        try:
            callback = self.part.name(number, name)
        except Exception as exc:
            log.warning("callbacks: a delivered log could not name its callback: %s", exc)
            return
        if callback is not None:
            self._publish(callback)

    # the API -----------------------------------------------------------------------------------

    def page(
        self,
        principal: Principal,
        *,
        status: str | None = None,
        agent: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> dict:
        """Open and assigned callbacks oldest first, then done ones newest first (or one status);
        an agent's token sees the open ones and its own only."""
        visible_to = None
        if principal.kind == AGENT:
            if agent is not None and agent != principal.agent:
                raise Forbidden(f"This agent token sees agent {principal.agent}'s callbacks only.")
            visible_to = principal.agent
        self.settle()
        rows = self.part.list(
            statuses=(status,) if status else STATUSES,
            agent=agent,
            visible_to=visible_to,
            after=_position(cursor),
            limit=limit + 1,
        )
        page = rows[:limit]
        more = len(rows) > limit
        return {"callbacks": page, "next": _cursor(page[-1]) if more and page else None}

    def assign(self, callback_id: int, agent: str | None, principal: Principal) -> Callback:
        taker = principal.agent if principal.kind == AGENT else None
        if taker is not None and agent != taker:
            raise Forbidden(f"This agent token may assign callbacks to agent {taker} only.")
        before = self._get(callback_id)
        after, changed = self.part.assign(callback_id, agent, taker=taker)
        if after is None:
            raise NotFound(f"No callback {callback_id}.")
        if after.status == DONE_CALLBACK:
            raise CallbackConflict(f"Callback {callback_id} is done already.")
        if after.agent != agent:
            raise CallbackConflict(
                f"Callback {callback_id} is assigned to agent {after.agent}; "
                "a supervisor may reassign it."
            )
        if changed:
            self._publish(after, before)
        return after

    def dismiss(self, callback_id: int) -> Callback:
        if not 0 < callback_id < MAX_ID:
            raise NotFound(f"No callback {callback_id}.")
        after, changed = self.part.dismiss(callback_id, now=self.clock())
        if after is None:
            raise NotFound(f"No callback {callback_id}.")
        if not changed:
            raise CallbackConflict(f"Callback {callback_id} is done already.")
        self._publish(after)
        return after

    def _get(self, callback_id: int) -> Callback:
        found = self.part.get(callback_id) if 0 < callback_id < MAX_ID else None
        if found is None:
            raise NotFound(f"No callback {callback_id}.")
        return found

    # live pages --------------------------------------------------------------------------------

    def _publish(self, callback: Callback, before: Callback | None = None) -> None:
        """One ``callback`` event per audience: its agent's stream, or every agent's while it is
        open (a done one goes where it was), and the agent it left when it was reassigned. The
        state is committed already: an event that cannot be written is logged, not raised."""
        audiences = {_audience(callback)}
        if before is not None:
            audiences.add(_audience(before))
        payload = self.dump(callback)
        for audience in sorted(audiences):
            try:
                self.events.add(CALLBACK, audience, payload)
            except Exception as exc:
                log.warning("callbacks: event for callback %s not written: %s", callback.id, exc)


def _audience(callback: Callback) -> str:
    return callback.agent if callback.agent is not None else ALL_AGENTS


def _cursor(callback: Callback) -> str:
    """Where the next page starts: after this callback (its done time too when done)."""
    if callback.status == DONE_CALLBACK:
        return f"{callback.done_at!r}:{callback.id}"
    return str(callback.id)


def _position(cursor: str | None) -> tuple | None:
    if cursor is None:
        return None
    done_at, colon, last_id = cursor.rpartition(":")
    try:
        if not cursor.isascii() or not last_id.isdigit() or not 0 < int(last_id) < MAX_ID:
            raise ValueError(cursor)
        if not colon:
            return (False, int(last_id))
        at = float(done_at)
        if not math.isfinite(at):
            raise ValueError(cursor)
        return (True, at, int(last_id))
    except ValueError:
        raise ValidationFailed(
            "The cursor is not one this API gave out.", errors={"cursor": ["Invalid."]}
        ) from None
