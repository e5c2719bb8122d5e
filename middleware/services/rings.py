"""A ringing call: stored for the agent's screen pop, and the caller's cache entry warmed.

The lookup runs beside the webhook's answer on a small pool of this process (the PBX does not wait
for the CRM); its result lands in the contact cache, where the screen pop and the later call log
find it.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from ..directory import AgentDirectory, leg_user_id
from ..errors import Problem
from ..journal.call_logs import customer_number
from ..numbers import NumberError, parse
from ..runtime import logs
from ..runtime.forks import PerProcess
from ..settings import Settings
from ..store import Events

log = logging.getLogger(__name__)

EXTENSION_DIGITS = 6  # a dialed number this short is an internal extension
WARM_THREADS = 4


def _warm_pool() -> ThreadPoolExecutor:
    """Not ``background.py``'s pool: a warm waits on the lookup's flight, which runs there; in one
    pool a burst of rings would hold every thread waiting on flights queued behind them. Four
    threads also bound how much of the CRM a flood of rings takes."""
    return ThreadPoolExecutor(max_workers=WARM_THREADS, thread_name_prefix="lookup-warm")


class Rings:
    def __init__(self, settings: Settings, events: Events, directory: AgentDirectory, lookup):
        self.settings = settings
        self.events = events  # the store's event log, which the streams read
        self.directory = directory
        self.lookup = lookup
        self._warmer = PerProcess(_warm_pool)

    @property
    def rides_journal(self) -> bool:
        """Whether the pop's event joins the journal's transaction of its leg (SQL)."""
        return self.events.rides_journal

    def ring(self, event: dict) -> int | None:
        """Store the ringing call for the agent's screen pop, and warm the caller's cache entry.

        On SQL, called inside ``Journal.together`` before the leg's write: the pop's event joins
        that transaction (None); elsewhere, called after it (the event's id). The lookup runs
        beside the answer (the PBX does not wait for the CRM); its result lands in the contact
        cache, where the screen pop and the later call log find it.
        """
        agent = self._ringing_agent(event)
        raw = event.get("cid_num")
        payload = {
            "id": event.get("id"),
            "call_id": event.get("call_id") or event.get("id"),
            "agent": agent,
            "phone": customer_number(raw, self.settings.default_region) or None,
            "cid_name": event.get("cid_name") or None,
            "ts": event.get("ts"),
            "received_at": logs.arrived_at(),  # for cti_screen_pop_seconds (ring to pop)
        }
        event_id = self.events.ride("call:ring", agent, payload)
        try:
            number = parse(str(raw or ""), self.settings.default_region)
        except NumberError:
            return event_id
        self._warmer.get().submit(self._warm, number)
        return event_id

    def _ringing_agent(self, event: dict) -> str | None:
        """The agent whose leg rings, as the journal and the board read a leg's agent (contract
        section 4): ``dst_user_id`` of inbound and queue calls (and of a ring without a type),
        ``src_user_id`` of outbound ones, else the other; the directory's extension of that user
        id, else the id in the directory's one spelling. Only a ring naming no such user id falls
        back to the agent's device, then (not outbound) a dialed number short enough to be an
        extension."""
        outbound = event.get("type") == "outbound"
        agent = self.directory.extension_of_user(leg_user_id(event))
        if agent is not None:
            return agent
        device_field = "src_device_id" if outbound else "dst_device_id"
        device = self.directory.by_device_id(event.get(device_field))
        if device is not None:
            return device.extension
        dialed = "" if outbound else event.get("dst_num") or ""
        if dialed.isdigit() and len(dialed) <= EXTENSION_DIGITS:
            return self.directory.spelling(dialed)
        return None

    def _warm(self, number) -> None:
        try:
            self.lookup.lookup_phone(number)
        except Problem as exc:
            log.info("ring: caller lookup failed (%s); the screen pop will try again", exc.code)
        except Exception:
            log.exception("ring: caller lookup failed")
