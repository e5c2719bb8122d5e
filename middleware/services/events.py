"""Live screen pops: ring events from the store, fanned out to the agents' open streams (with the
callbacks' changes, ``event: callback``, for the agent's own and every agent's open callbacks, and
the agent's status changes on the board, ``event: status``, its board entry).

A ring webhook may land on any worker (or host) while the agent's stream is open on another, so
events travel through the store's event log, which every worker reads. Each worker runs one poller
thread (only while it has open streams) that reads new events and wakes the streams of their agents:
50 open streams cost one small query per poll per worker, not 50.

A stream starts after the newest event, or after ``Last-Event-ID`` when the browser resumes: the
events it missed are read from the log first, then live ones follow, each sent once, in order. The
opening block carries ``id:`` (the event the stream starts after), so a browser that reconnects
before any pop resumes from there too and loses nothing.

Under gunicorn a stream holds a thread, so a worker holds at most ``CTI_STREAMS_PER_WORKER`` at
once (``StreamSlots``) and answers further ones 503 ``busy``; a worker without threads (gunicorn's
default ``sync``) holds none: it answers what is there and ends the stream, and the browser comes
back after the ``retry:`` delay. The stream server (``middleware/commands/stream_server.py``) serves streams
without a thread each; this module's ``ScreenPops.message`` builds the pops for both. The board's
stream (``services/board.py``) is another channel of the same log, served the same way.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator

from ..errors import Busy, Problem
from ..numbers import NumberError, e164, number_info, parse
from ..runtime import metrics
from ..runtime.capacity import stream_room
from ..runtime.forks import PerProcess
from ..store import Event, Events

log = logging.getLogger(__name__)

POLL_SECONDS = 0.1
HEARTBEAT_SECONDS = 5.0  # also how long a stream whose client left can hold its thread
STREAM_SECONDS = 300.0  # then the browser reconnects with Last-Event-ID; no event is lost
RETRY_MS = 2000  # the browser's reconnect delay after a stream ends
POLL_RETRY_MS = 2000  # a worker without threads answers and ends: the browser polls this often
BUSY_RETRY_SECONDS = 5  # Retry-After of a stream refused because the worker holds enough
SCREEN_POP = "screen-pop"
CALLBACK = "callback"  # a callback changed (services/callbacks.py): its payload is the callback
STATUS = "status"  # the agent's status changed on the board (services/board.py): its board entry
WARN_EVERY_SECONDS = 10.0


class StreamSlots:
    """At most ``limit`` streams held at once by this process (a threaded gunicorn worker), so
    streams never take the threads that lookups, click-to-calls and webhooks need."""

    def __init__(self, limit: int):
        self.limit = limit
        self._room: int | None = None  # ``limit``, bounded by the worker's threads: at first use
        self._held = 0
        self._lock = threading.Lock()

    def take(self):
        """A slot, as the function that gives it back (safe to call twice); ``Busy`` when full.
        The limit is also at most half the worker's threads (``runtime/capacity.py``)."""
        with self._lock:
            if self._room is None:
                self._room = stream_room(self.limit)
            if self._held >= self._room:
                raise Busy(
                    f"This worker holds its {self._room} screen-pop streams already; "
                    "try again shortly (or open the stream on the stream server).",
                    retry_after=BUSY_RETRY_SECONDS,
                )
            self._held += 1
        given_back = False

        def release() -> None:
            nonlocal given_back
            with self._lock:
                if not given_back:
                    given_back = True
                    self._held -= 1

        return release


class _Listening:
    """This process's poller and the streams waiting on it (made again in a forked child)."""

    def __init__(self, newest: int):
        self.changed = threading.Condition()
        self.listeners = 0
        self.newest = newest  # the newest event id this process has seen


class EventHub:
    def __init__(self, events: Events, *, poll_seconds: float = POLL_SECONDS):
        self.events = events  # the store's event log (``store.events``)
        self.poll_seconds = poll_seconds
        self._listening = PerProcess(self._start_poller)
        self._warned = 0.0

    def newest(self) -> int:
        return self.events.last_id()

    def wait_for_events(self, agent: str, after: int, timeout: float) -> list[Event]:
        """Events for ``agent`` above ``after``, waiting up to ``timeout`` for the first."""
        deadline = time.monotonic() + timeout
        listening = self._listening.get()
        changed = listening.changed
        with changed:
            listening.listeners += 1
            seen = listening.newest  # taken before the read below, so no wake-up can be missed
        try:
            while True:
                events = self.events.after(after, agent=agent)
                if events:
                    return events
                with changed:
                    while listening.newest == seen:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            return []
                        changed.wait(remaining)
                    seen = listening.newest
        finally:
            with changed:
                listening.listeners -= 1

    def _start_poller(self) -> _Listening:
        """One poller per process, started by its first stream (after gunicorn forks)."""
        listening = _Listening(self.events.last_id())  # may raise (Redis down): next time
        threading.Thread(
            target=self._poll, args=(listening,), name="event-hub", daemon=True
        ).start()
        return listening

    def _poll(self, listening: _Listening) -> None:
        while True:
            time.sleep(self.poll_seconds)
            with listening.changed:
                if listening.listeners == 0:
                    continue
            try:
                newest = self.events.last_id()
            except Exception as exc:  # the store is down (Redis): say so now and then, not 10x/s
                now = time.monotonic()
                if now - self._warned >= WARN_EVERY_SECONDS:
                    self._warned = now
                    log.warning("event hub: cannot read the event log: %s", _reason(exc))
                continue
            if newest != listening.newest:
                with listening.changed:
                    listening.newest = newest
                    listening.changed.notify_all()


class EventStream:
    """One channel of the event log (an agent's screen pops, the board) as Server-Sent Events:
    ``sends`` the events it sends, ``name`` their SSE event name, ``message`` their data."""

    def __init__(self, hub: EventHub, slots: StreamSlots):
        self.hub = hub
        self.slots = slots

    def sends(self, event: Event) -> bool:
        return True

    def name(self, event: Event) -> str:
        return event_name(event)

    def message(self, event: Event) -> dict:
        raise NotImplementedError

    def sse(self, event: Event, live_from: int, *, server: str = "gunicorn") -> str:
        return format_sse(event.id, self.name(event), self.message(event))

    def channel_stream(
        self, channel: str, label: str, last_event_id: int | None, *, threaded: bool
    ) -> Iterator[str]:
        """Server-Sent Events text of ``channel``: its events, heartbeats, and a clean end.

        When the event log cannot be read (Redis down), the stream ends cleanly and the browser
        reconnects after the ``retry`` delay, with ``Last-Event-ID`` when it had seen an event.
        Without threads (``threaded`` false) the stream sends what is there now and ends.
        """
        event_log = self.hub.events
        try:
            live_from = self.hub.newest()
            after = live_from if last_event_id is None else resume_after(last_event_id, live_from)
            backlog = [] if threaded else event_log.after(after, agent=channel)
        except Problem as problem:
            yield f"retry: {RETRY_MS}\n: {problem.code}: {problem.detail}\n\n"
            return
        retry = RETRY_MS if threaded else POLL_RETRY_MS
        yield f"retry: {retry}\nid: {after}\n: {label} after event {after} worker {os.getpid()}\n\n"
        if not threaded:
            for event in backlog:
                if self.sends(event):
                    yield self.sse(event, live_from)
            return
        ends = time.monotonic() + STREAM_SECONDS
        while (remaining := ends - time.monotonic()) > 0:
            try:
                events = self.hub.wait_for_events(channel, after, min(HEARTBEAT_SECONDS, remaining))
            except Problem as problem:
                yield f": {problem.code}: {problem.detail}\n\n"
                return
            if not events:
                yield ": heartbeat\n\n"
                continue
            for event in events:
                after = event.id
                if self.sends(event):
                    yield self.sse(event, live_from)


def resume_after(last_event_id: int, newest: int) -> int:
    """Where a stream resumes for a browser whose last event was ``last_event_id``: right after it;
    or, when that is beyond the newest event of the log, from the log's start. The log numbered
    its events anew (Redis restarted without its data, a store restored from a backup): resumed
    after the old number, the stream would skip every event until the numbering caught up."""
    return last_event_id if last_event_id <= newest else 0


class ScreenPops(EventStream):
    """Turns ring events into screen-pop messages for one agent's stream."""

    def __init__(
        self,
        hub: EventHub,
        lookup,
        region: str,
        *,
        streams_per_worker: int = 16,
        status_of: Callable[[str], dict] | None = None,
    ):
        super().__init__(hub, StreamSlots(streams_per_worker))
        self.lookup = lookup
        self.region = region
        self.status_of = status_of  # ``Board.entry``: an agent's board entry, read when sent

    def stream(self, agent: str, last_event_id: int | None, *, threaded: bool) -> Iterator[str]:
        """Screen pops for ``agent`` (``channel_stream``)."""
        return self.channel_stream(agent, f"agent {agent}", last_event_id, threaded=threaded)

    def sse(self, event: Event, live_from: int, *, server: str = "gunicorn") -> str:
        """The event's SSE text; a live pop (newer than ``live_from``) counts its ring-to-pop
        time."""
        text = format_sse(event.id, event_name(event), self.message(event))
        if event.id > live_from and is_pop(event):
            observe_pop(event, server)
        return text

    def message(self, event: Event) -> dict:
        """The ring's call id plus the caller lookup result (from the warmed cache, usually); a
        callback event's callback as it is; a status event's board entry of the agent as it is
        now (so the last message sent is the board's, whatever order changes were announced in)."""
        payload = event.payload
        if event.kind == CALLBACK:
            return payload
        if event.kind == STATUS:
            return self._status(event)
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
            "number_info": None,
        }
        try:
            number = parse(payload.get("phone") or "", self.region)
        except NumberError:
            return message
        message["number_info"] = dataclasses.asdict(number_info(e164(number)))  # offline data
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

    def _status(self, event: Event) -> dict:
        """The agent's board entry; ``{"extension", "error"}`` when the board cannot be read (the
        page reads ``GET /api/v1/agents/{extension}/status`` again)."""
        extension = str(event.payload.get("extension") or event.agent)
        if self.status_of is None:
            return {"extension": extension, "error": "unsupported"}
        try:
            return self.status_of(extension)
        except Problem as problem:
            return {"extension": extension, "error": problem.code}


def event_name(event: Event) -> str:
    """The SSE ``event:`` of an agent stream's message: ``callback``, ``status`` or
    ``screen-pop``."""
    return event.kind if event.kind in (CALLBACK, STATUS) else SCREEN_POP


def is_pop(event: Event) -> bool:
    """A screen pop (a ring), not a callback or status change: what ring-to-pop times."""
    return event.kind not in (CALLBACK, STATUS)


def observe_pop(event: Event, server: str) -> None:
    """``cti_screen_pop_seconds``: from the ring webhook's arrival (``received_at``, stored with the
    event; its storing time for an older event) to now, when the pop is written to a stream."""
    received = event.payload.get("received_at")
    started = received if isinstance(received, int | float) else event.created_at
    metrics.observe_screen_pop(server, max(0.0, time.time() - started))


def _reason(error: BaseException) -> str:
    return error.detail if isinstance(error, Problem) else type(error).__name__


def format_sse(event_id: int, name: str, data: dict) -> str:
    return f"id: {event_id}\nevent: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
