"""Live screen pops: ring events from the store, fanned out to the agents' open streams.

A ring webhook may land on any worker (or host) while the agent's stream is open on another, so
events travel through the store's event log, which every worker reads. Each worker runs one poller
thread (only while it has open streams) that reads new events and wakes the streams of their agents:
50 open streams cost one small query per poll per worker, not 50.

A stream starts after the newest event, or after ``Last-Event-ID`` when the browser resumes: the
events it missed are read from the log first, then live ones follow, each sent once, in order.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator

from ..errors import Problem
from ..numbers import NumberError, parse
from ..store import Event, Store

log = logging.getLogger(__name__)

POLL_SECONDS = 0.1
HEARTBEAT_SECONDS = 5.0  # also how long a stream whose client left can hold its thread
STREAM_SECONDS = 300.0  # then the browser reconnects with Last-Event-ID; no event is lost
SINGLE_THREAD_STREAM_SECONDS = 25.0  # a sync worker must not be held long by one stream
SCREEN_POP = "screen-pop"
WARN_EVERY_SECONDS = 10.0


class EventHub:
    def __init__(self, store: Store, *, poll_seconds: float = POLL_SECONDS):
        self.store = store
        self.poll_seconds = poll_seconds
        self._changed = threading.Condition()
        self._listeners = 0
        self._newest = 0  # the newest event id this process has seen
        self._pid = None
        self._warned = 0.0

    def newest(self) -> int:
        return self.store.last_event_id()

    def wait_for_events(self, agent: str, after: int, timeout: float) -> list[Event]:
        """Events for ``agent`` above ``after``, waiting up to ``timeout`` for the first."""
        deadline = time.monotonic() + timeout
        with self._changed:
            self._ensure_poller()
            self._listeners += 1
            seen = self._newest  # taken before the read below, so no wake-up can be missed
        try:
            while True:
                events = self.store.events_after(after, agent=agent)
                if events:
                    return events
                with self._changed:
                    while self._newest == seen:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            return []
                        self._changed.wait(remaining)
                    seen = self._newest
        finally:
            with self._changed:
                self._listeners -= 1

    def _ensure_poller(self) -> None:
        """One poller per process, started after gunicorn forks (called under the condition)."""
        if self._pid == os.getpid():
            return
        self._newest = self.store.last_event_id()  # may raise (Redis down): then try next time
        self._pid = os.getpid()
        threading.Thread(target=self._poll, name="event-hub", daemon=True).start()

    def _poll(self) -> None:
        while True:
            time.sleep(self.poll_seconds)
            with self._changed:
                if self._listeners == 0:
                    continue
            try:
                newest = self.store.last_event_id()
            except Exception as exc:  # the store is down (Redis): say so now and then, not 10x/s
                now = time.monotonic()
                if now - self._warned >= WARN_EVERY_SECONDS:
                    self._warned = now
                    log.warning("event hub: cannot read the event log: %s", _reason(exc))
                continue
            if newest != self._newest:
                with self._changed:
                    self._newest = newest
                    self._changed.notify_all()


class ScreenPops:
    """Turns ring events into screen-pop messages for one agent's stream."""

    def __init__(self, hub: EventHub, lookup, region: str):
        self.hub = hub
        self.lookup = lookup
        self.region = region

    def stream(self, agent: str, last_event_id: int | None, *, threaded: bool) -> Iterator[str]:
        """Server-Sent Events text for ``agent``: screen pops, heartbeats, and a clean end.

        When the event log cannot be read (Redis down), the stream ends cleanly and the browser
        reconnects after the ``retry`` delay, with ``Last-Event-ID`` when it had seen an event.
        """
        try:
            after = self.hub.newest() if last_event_id is None else last_event_id
        except Problem as problem:
            yield f"retry: 2000\n: {problem.code}: {problem.detail}\n\n"
            return
        lifetime = STREAM_SECONDS if threaded else SINGLE_THREAD_STREAM_SECONDS
        ends = time.monotonic() + lifetime
        yield f"retry: 2000\n: agent {agent} after event {after} worker {os.getpid()}\n\n"
        while (remaining := ends - time.monotonic()) > 0:
            try:
                events = self.hub.wait_for_events(agent, after, min(HEARTBEAT_SECONDS, remaining))
            except Problem as problem:
                yield f": {problem.code}: {problem.detail}\n\n"
                return
            if not events:
                yield ": heartbeat\n\n"
                continue
            for event in events:
                after = event.id
                yield format_sse(event.id, SCREEN_POP, self.message(event))

    def message(self, event: Event) -> dict:
        """The ring's call id plus the caller lookup result (from the warmed cache, usually)."""
        payload = event.payload
        message = {
            "event_id": event.id,
            "call_id": payload.get("call_id"),
            "agent": event.agent,
            "cid_name": payload.get("cid_name"),
            "ts": payload.get("ts"),
            "found": False,
            "phone": payload.get("phone"),
            "contact": None,
            "cached": False,
            "stale": False,
            "screen_pop_url": None,
        }
        try:
            number = parse(payload.get("phone") or "", self.region)
        except NumberError:
            return message
        try:
            result = self.lookup.lookup_phone(number)
        except Problem as problem:
            message["error"] = problem.code
            return message
        message.update(
            found=result.found,
            phone=result.phone,
            contact=result.contact,
            cached=result.cached,
            stale=result.stale,
            screen_pop_url=self.lookup.screen_pop_url(result),
        )
        return message


def _reason(error: BaseException) -> str:
    return error.detail if isinstance(error, Problem) else type(error).__name__


def format_sse(event_id: int, name: str, data: dict) -> str:
    return f"id: {event_id}\nevent: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
