"""The stream server: screen-pop streams (``GET /api/v1/agents/{extension}/events``) and the
board's (``GET /api/v1/board/events``) on one event loop, so a thousand open streams hold no
request thread anywhere.

    python -m middleware.commands.stream_server [--host 127.0.0.1] [--port 8001]

It is the same service as the Flask app, built by the same factory: the same settings, the same
credential check (``auth.stream_principal``, one call per stream), the same store and the same
screen-pop messages (``ScreenPops.message``). It reads the same event log (SQL, or Redis when
``CTI_REDIS_URL`` is set) as every gunicorn worker, so a ring taken by any worker on any host reaches
its streams within a poll interval.

Blocking work never runs on the loop: one poller task per process reads new events from the store
in a small thread pool every ``POLL_SECONDS`` and fans each out to the queues of its agent's open
streams; a pop's message (the caller lookup, from the cache as a rule) is built once per event, in
the same pool, however many streams the agent has open. A stream costs a queue and a socket, and a
heartbeat comment every 5 s (which is also how a stream whose client left is noticed).

What the gunicorn view promises holds here too: ``Last-Event-ID`` (header or ``last_event_id``)
resumes without loss, the opening block carries ``id:``, ``retry:`` sets the reconnect delay,
and a stream ends after ``STREAM_SECONDS`` (the browser reconnects). Errors are problem+json.
One credential holds at most ``CTI_STREAMS_PER_CREDENTIAL`` streams of one agent on this host
(``credential_slots``; 503 ``busy`` beyond), and the connection rules of ``stream_guard`` apply:
idle and slow-header connections are dropped within seconds, over-long requests are refused
without repeating them, and no answer may be cached.
Browsers on another origin (``make run``: the page on :8000, this server on :8001) may read the
stream when their origin is listed in ``CTI_STREAM_ORIGINS``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import logging
import os
import resource
import time
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from schemas.agents import AgentPathSchema
from schemas.events import EventsQuerySchema

from .. import auth
from ..api.common import load
from ..errors import MethodNotAllowed, NotFound, Problem
from ..runtime import logs, metrics
from ..services.board import CHANNEL
from ..services.events import (
    HEARTBEAT_SECONDS,
    RETRY_MS,
    STREAM_SECONDS,
    WARN_EVERY_SECONDS,
    format_sse,
    is_pop,
    observe_pop,
    resume_after,
)
from ..store.events import ALL_AGENTS
from .stream_guard import bounded, handler_args, no_store, problem_answer

log = logging.getLogger("middleware.streams")
request_log = logging.getLogger("middleware.request")

EVENTS_ROUTE = "/api/v1/agents/{extension}/events"
BOARD_ROUTE = "/api/v1/board/events"
POLL_SECONDS = 0.05  # one small read of the event log per poll, whatever the number of streams
READ_THREADS = 4  # store reads and pop messages; the loop itself never blocks
BATCH = 500  # events read per poll; a longer backlog is read in several polls, without a pause
SHUTDOWN_SECONDS = 5.0
FIRST_READ_SECONDS = 2.0  # a stream opened before the first read of the event log waits this long
query_schema = EventsQuerySchema()


class Fanout:
    """One poller per process: reads the event log and hands each event to its agent's streams."""

    def __init__(self, services, executor: ThreadPoolExecutor):
        self.events = services.store.events
        self.screen_pops = services.screen_pops
        self.board = services.board_stream
        self.executor = executor
        self.listeners: dict[str, set[asyncio.Queue]] = {}
        self.seen: int | None = None  # the newest event id read; None until the store answered
        self.started = asyncio.Event()  # set once ``seen`` is known
        self._warned = 0.0

    async def read(self, function, *args, **kwargs):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.executor, functools.partial(function, *args, **kwargs)
        )

    def feed(self, channel: str | None):
        """What writes the events of ``channel``: the board's stream, or an agent's screen pops."""
        return self.board if channel == CHANNEL else self.screen_pops

    def subscribe(self, agent: str) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue()
        self.listeners.setdefault(agent, set()).add(queue)
        return queue

    def unsubscribe(self, agent: str, queue: asyncio.Queue) -> None:
        queues = self.listeners.get(agent)
        if queues is not None:
            queues.discard(queue)
            if not queues:
                del self.listeners[agent]

    def close_all(self) -> None:
        """Wake every stream with the end marker (server shutdown)."""
        for queues in self.listeners.values():
            for queue in queues:
                queue.put_nowait(None)

    async def run(self) -> None:
        while True:
            try:
                if self.seen is None:
                    self.seen = await self.read(self.events.last_id)
                    self.started.set()
                events = await self.read(self.events.after, self.seen, limit=BATCH)
            except Exception as exc:  # the store is down: say so now and then, keep polling
                now = time.monotonic()
                if now - self._warned >= WARN_EVERY_SECONDS:
                    self._warned = now
                    reason = exc.detail if isinstance(exc, Problem) else type(exc).__name__
                    log.warning("stream server: cannot read the event log: %s", reason)
                await asyncio.sleep(POLL_SECONDS)
                continue
            for event in events:
                self.seen = event.id
                if event.agent == ALL_AGENTS:  # an open callback: every agent's streams
                    queues = [
                        queue
                        for channel, held in self.listeners.items()
                        if channel != CHANNEL
                        for queue in held
                    ]
                else:
                    queues = self.listeners.get(event.agent)
                feed = self.feed(event.agent)
                if queues and feed.sends(event):
                    message = asyncio.ensure_future(self.read(feed.message, event))
                    for queue in queues:
                        queue.put_nowait((event, message))
            if len(events) < BATCH:
                await asyncio.sleep(POLL_SECONDS)


class StreamServer:
    def __init__(self, services):
        self.services = services
        self.settings = services.settings
        # Not background.py's pool: a pop's message waits on the caller's lookup flight, which runs
        # there, and the loop's event-log reads must not queue behind slow CRM requests.
        self.executor = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="stream-read")
        self.fanout = Fanout(services, self.executor)
        self.open = 0
        self.path_schema = AgentPathSchema(directory=services.directory)

    def application(self) -> web.Application:
        app = web.Application(middlewares=[bounded], handler_args=handler_args())
        app.on_response_prepare.append(no_store)
        app.router.add_get(EVENTS_ROUTE, self.events, allow_head=False)
        app.router.add_route("OPTIONS", EVENTS_ROUTE, self.preflight)
        app.router.add_route("*", EVENTS_ROUTE, self.not_allowed)
        app.router.add_get(BOARD_ROUTE, self.board_events, allow_head=False)
        app.router.add_route("OPTIONS", BOARD_ROUTE, self.preflight)
        app.router.add_route("*", BOARD_ROUTE, self.not_allowed)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_route("*", "/{tail:.*}", self.not_found)
        app.on_startup.append(self._start)
        app.on_shutdown.append(self._shutdown)
        app.on_cleanup.append(self._cleanup)
        return app

    async def _start(self, app: web.Application) -> None:
        self._poller = asyncio.create_task(self.fanout.run())

    async def _shutdown(self, app: web.Application) -> None:
        self.fanout.close_all()  # streams end now; browsers reconnect to a live server

    async def _cleanup(self, app: web.Application) -> None:
        self._poller.cancel()
        self.executor.shutdown(wait=False, cancel_futures=True)

    def cors(self, request: web.Request) -> dict:
        origin = request.headers.get("Origin")
        if origin and origin.lower() in self.settings.stream_origins:
            return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        return {}

    async def preflight(self, request: web.Request) -> web.Response:
        headers = self.cors(request)
        if headers:
            headers.update(
                {
                    "Access-Control-Allow-Methods": "GET",
                    "Access-Control-Allow-Headers": "Last-Event-ID, Cache-Control, X-API-Key, "
                    "Authorization",
                    "Access-Control-Max-Age": "600",
                }
            )
        return web.Response(status=204, headers=headers)

    async def not_allowed(self, request: web.Request) -> web.Response:
        return problem_answer(MethodNotAllowed(f"{request.method} is not allowed here."))

    async def not_found(self, request: web.Request) -> web.Response:
        return problem_answer(NotFound("The stream server serves only the event streams."))

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "streams": self.open})

    async def metrics(self, request: web.Request) -> web.Response:
        body = await self.fanout.read(metrics.render, None)
        return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE})

    async def events(self, request: web.Request) -> web.StreamResponse:
        """An agent's screen pops (and callbacks, and its status changes)."""
        extension = request.match_info["extension"]
        return await self._stream(request, extension, auth.OWN_AGENT_PATH, EVENTS_ROUTE)

    async def board_events(self, request: web.Request) -> web.StreamResponse:
        """The board's changes (a full key or a supervisor token)."""
        return await self._stream(request, None, auth.SUPERVISORS, BOARD_ROUTE)

    async def _stream(self, request, extension, access, route) -> web.StreamResponse:
        started = time.perf_counter()
        cors = self.cors(request)
        named = extension
        try:
            principal = auth.stream_principal(
                self.services.credentials,
                None
                if extension is None
                else self.services.directory.spelling(extension) or extension,
                x_api_key=request.headers.get("X-API-Key"),
                authorization=request.headers.get("Authorization"),
                api_key=request.query.get("api_key"),
                access=access,
            )
            if extension is not None:
                extension = load(self.path_schema, {"extension": extension})["extension"]
            args = {k: request.query.get(k) for k in request.query if k != "api_key"}
            last = load(query_schema, args).get("last_event_id")
            header = request.headers.get("Last-Event-ID", "").strip()
            if last is None and header:
                last = load(query_schema, {"last_event_id": header})["last_event_id"]
            channel = CHANNEL if extension is None else extension
            # A few non-blocking system calls (``LOCK_NB``), taken on the loop: no await between
            # taking the slot and the ``finally`` that gives it back, so a cancelled handler
            # cannot lose one.
            release = self.services.stream_slots.take(principal.client_id, channel)
        except Problem as problem:
            self._log(request, problem.status, started, named, route)
            return problem_answer(problem, cors)
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "X-Accel-Buffering": "no", **cors}
        )
        self.open += 1
        queue = self.fanout.subscribe(channel)
        try:
            await response.prepare(request)
            await self._serve(response, queue, channel, last)
        except ConnectionError:  # the client left; its heartbeat or pop could not be written
            pass
        finally:
            release()
            self.fanout.unsubscribe(channel, queue)
            self.open -= 1
            self._log(request, 200, started, extension, route)
        return response

    async def _serve(self, response, queue: asyncio.Queue, channel: str, last: int | None) -> None:
        # Subscribed before reading where to start: an event is either at or below the poller's
        # position (``seen``, read from the log already) or still to be handed to our queue.
        if self.fanout.seen is None:  # a stream opened as the process starts: the first read
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.fanout.started.wait(), FIRST_READ_SECONDS)
        seen = self.fanout.seen
        if seen is None:
            await response.write(
                f"retry: {RETRY_MS}\n: upstream_unavailable: the event log cannot be read\n\n".encode()
            )
            return
        feed = self.fanout.feed(channel)
        label = "board" if channel == CHANNEL else f"agent {channel}"
        if last is not None:  # the log's own newest: the fan-out may not have read it yet
            last = resume_after(last, await self.fanout.read(self.fanout.events.last_id))
        after = seen if last is None else last
        backlog = [] if last is None else await self._backlog(channel, last)
        await response.write(
            f"retry: {RETRY_MS}\nid: {after}\n: {label} after event {after} "
            f"stream-server {os.getpid()}\n\n".encode()
        )
        for event in backlog:
            if feed.sends(event):
                message = await self.fanout.read(feed.message, event)
                await response.write(format_sse(event.id, feed.name(event), message).encode())
            after = event.id
        loop = asyncio.get_running_loop()
        ends = loop.time() + STREAM_SECONDS
        while (remaining := ends - loop.time()) > 0:
            try:
                item = await asyncio.wait_for(queue.get(), min(HEARTBEAT_SECONDS, remaining))
            except TimeoutError:
                await response.write(b": heartbeat\n\n")
                continue
            if item is None:  # shutting down
                return
            event, message = item
            if event.id <= after:
                continue
            try:
                data = await message
            except Exception:
                log.exception("stream server: message of event %s could not be built", event.id)
                continue
            await response.write(format_sse(event.id, feed.name(event), data).encode())
            after = event.id
            if event.id > seen and feed is self.fanout.screen_pops and is_pop(event):
                observe_pop(event, "stream-server")

    async def _backlog(self, agent: str, last: int) -> list:
        """What the agent missed since ``last``, oldest first (read in pages)."""
        events: list = []
        after = last
        while True:
            page = await self.fanout.read(self.fanout.events.after, after, agent=agent, limit=BATCH)
            events += page
            if len(page) < BATCH:
                return events
            after = page[-1].id

    def _log(self, request, status: int, started: float, agent: str | None, route: str) -> None:
        logs.info(
            request_log,
            "%s %s %s",
            (request.method, route, status),
            request_id=logs.request_id(request.headers.get(logs.REQUEST_ID)),
            method=request.method,
            route=route,
            status=status,
            agent=agent,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
            server="stream-server",
        )


def raise_open_files_limit() -> int:
    """Every stream is a socket: raise the soft limit on open files to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        return wanted
    return soft


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The CTI middleware's screen-pop stream server.")
    parser.add_argument("--host", default=os.environ.get("STREAM_HOST") or "127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("STREAM_PORT") or 8001))
    parser.add_argument(
        "--access-log",
        action="store_true",
        default=os.environ.get("STREAM_ACCESS_LOG", "").lower() in ("1", "true", "yes"),
        help="also log aiohttp's access line per request (credentials scrubbed, numbers masked)",
    )
    args = parser.parse_args(argv)
    raise_open_files_limit()
    from ..factory import build_app

    services = build_app().extensions["cti"]  # settings errors exit 3, like a gunicorn worker
    server = StreamServer(services)
    log.info("stream server: serving on http://%s:%s", args.host, args.port)
    web.run_app(
        server.application(),
        host=args.host,
        port=args.port,
        # One line per stream is ours; aiohttp's own (with the query string) only when asked.
        access_log=logging.getLogger("aiohttp.access") if args.access_log else None,
        backlog=2048,
        shutdown_timeout=SHUTDOWN_SECONDS,
        print=None,
    )


if __name__ == "__main__":
    main()
