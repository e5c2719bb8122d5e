"""The open streams of ``benchmarks/streams_vs_lookups.py``: agents' screen-pop streams and
supervisors' board streams, held by aiohttp's client on one asyncio loop in a process of its own
(so they never compete with the timed client for a GIL), recording when each message arrives.

A stream is opened as its real client opens it: the agent's page with its token as the query's
``api_key`` (as EventSource does), the extension with its token in the ``X-API-Key`` header (as its
``fetch`` does), the supervisor console with its token in the query. Opened on the main port, the
client follows the ``307`` to the stream server (aiohttp follows redirects by default, keeps the
query and every header but ``Authorization`` on another origin): each stream records where it
ended and whether it was redirected, so the benchmark can say that every one reached the stream
server with its credential.

CLOCK_MONOTONIC is one clock for every process: arrival times compare with the send times of the
parent.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import multiprocessing
import threading
import time
from collections import Counter
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import aiohttp

OPENING_AT_ONCE = 50


@dataclass(frozen=True)
class Spec:
    """One stream to open: ``path`` (with its query) and ``headers``; ``kind`` ``agent`` or
    ``board``."""

    kind: str
    path: str
    headers: tuple = ()


def issue_tokens(port: int, key: str, agents: list[str], supervisors: int) -> tuple[dict, list]:
    """Each agent's token and ``supervisors`` supervisor tokens, issued with the full ``key``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def post(path: str, body: dict | None) -> str:
        headers = {"X-API-Key": key}
        if body is not None:
            headers["Content-Type"] = "application/json"
        connection.request("POST", path, json.dumps(body) if body else None, headers)
        answer = connection.getresponse()
        payload = answer.read()
        if answer.status != 201:
            raise SystemExit(f"POST {path}: {answer.status} {payload[:300]!r}")
        return json.loads(payload)["token"]

    tokens = {agent: post(f"/api/v1/agents/{agent}/token", None) for agent in agents}
    names = [f"supervisor {n}" for n in range(supervisors)]
    board = [post("/api/v1/supervisors/token", {"name": name}) for name in names]
    connection.close()
    return tokens, board


def level_specs(agents: list[str], tokens: dict, board: list, count: int, per_agent: int):
    """The streams of a level: ``count`` agent streams, ``per_agent`` of each agent (its page with
    the token in the query, then its extension with the token in a header), and the board streams.
    Returns the specs and how many streams each agent has."""
    specs, held = [], {}
    for n in range(count):
        agent = agents[n // per_agent]
        held[agent] = held.get(agent, 0) + 1
        if n % per_agent == 1:  # the extension's fetch: X-API-Key, kept across the 307
            specs.append(
                Spec("agent", f"/api/v1/agents/{agent}/events", (("X-API-Key", tokens[agent]),))
            )
        else:  # the page's EventSource: the query, which the Location repeats
            specs.append(
                Spec("agent", f"/api/v1/agents/{agent}/events?api_key={quote(tokens[agent])}")
            )
    specs += [Spec("board", f"/api/v1/board/events?api_key={quote(token)}") for token in board]
    return specs, held


def board_latencies(changes: list, messages: list, board_streams: int) -> tuple[list, int, int]:
    """Per board change and board stream: send -> the first ``board`` message on that stream that
    shows the change or a later change of the same agent; how many such receipts never came; and
    how many messages showed none of the changes (other agents', a call logged: its ``today``).

    A change is ``((extension, call id, call state, status), sent)``: what the agent's entry shows
    after it (call id and state None: no call; status None: any); ``changes`` are in the order
    they were sent. A stream's message is the entry as it was when the stream server built it, so
    a change that the next one overtook within milliseconds (a ring answered at once) is seen as
    that next one: the supervisor's board shows it, or later, by then. A message shows the latest
    change already sent when it arrived that its entry matches."""
    sequences: dict[str, list] = {}
    for shows, sent in changes:
        sequences.setdefault(shows[0], []).append((sent, shows))
    arrivals: dict[tuple, list] = {}  # (stream, extension) -> [(arrival, index in its sequence)]
    others = 0
    for stream, extension, call_id, state, status, at in messages:
        shown = -1
        for index, (sent, (_, want_call, want_state, want_status)) in enumerate(
            sequences.get(extension, ())
        ):
            if sent > at:
                break
            if (call_id, state) == (want_call, want_state) and want_status in (None, status):
                shown = index
        others += shown < 0
        arrivals.setdefault((stream, extension), []).append((at, shown))
    for received in arrivals.values():
        received.sort()
    latencies, missing = [], 0
    for extension, sequence in sequences.items():
        for index, (sent, _) in enumerate(sequence):
            for stream in range(board_streams):
                first = next(
                    (at for at, shown in arrivals.get((stream, extension), ()) if shown >= index),
                    None,
                )
                if first is None:
                    missing += 1
                else:
                    latencies.append(first - sent)
    return latencies, missing, others


class Streams:
    """Streams on one asyncio loop in a thread of this process."""

    def __init__(self, base: str, stream_port: int):
        self.base = base
        self.stream_port = stream_port
        self.loop = asyncio.new_event_loop()
        self.pops: dict[str, list[float]] = {}  # call id -> arrival of each of its screen pops
        self.board: list[tuple] = []  # (stream, extension, call id, call state, status, arrival)
        self.opened = 0
        self.redirected = 0  # a 307 followed to the stream server
        self.refused: Counter = Counter()  # why: the final status, or where it ended
        self.ended = 0
        self.responses: list[aiohttp.ClientResponse] = []
        self.board_streams = 0
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.session = self._call(self._session())

    def _call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    async def _session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=None),
        )

    def open(self, specs: list[Spec]) -> dict:
        return self._call(self._open_all(specs))

    async def _open_all(self, specs: list[Spec]) -> dict:
        gate = asyncio.Semaphore(OPENING_AT_ONCE)
        started = time.monotonic()

        async def one(spec: Spec) -> None:
            async with gate:
                await self._open(spec)

        await asyncio.gather(*(one(spec) for spec in specs))
        return {
            "opened": self.opened,
            "redirected": self.redirected,
            "refused": dict(self.refused),
            "board": self.board_streams,
            "seconds": time.monotonic() - started,
        }

    async def _open(self, spec: Spec) -> None:
        headers = {"Accept": "text/event-stream", **dict(spec.headers)}
        try:
            response = await self.session.get(self.base + spec.path, headers=headers)
        except (aiohttp.ClientError, OSError) as error:
            self.refused[type(error).__name__] += 1
            return
        if response.status != 200:
            self.refused[str(response.status)] += 1
            response.release()
            return
        if urlsplit(str(response.url)).port != self.stream_port:
            self.refused["not on the stream server"] += 1
            response.close()
            return
        self.opened += 1
        if [r.status for r in response.history] == [307]:
            self.redirected += 1
        self.responses.append(response)
        if spec.kind == "board":
            number = self.board_streams
            self.board_streams += 1
            asyncio.ensure_future(self._read(response, lambda *m: self._board(number, *m)))
        else:
            asyncio.ensure_future(self._read(response, self._pop))

    def _pop(self, name: str, data: str, at: float) -> None:
        if name == "screen-pop":
            self.pops.setdefault(json.loads(data)["call_id"], []).append(at)

    def _board(self, number: int, name: str, data: str, at: float) -> None:
        if name == "board":
            entry = json.loads(data)
            call = entry.get("call") or {}
            self.board.append(
                (
                    number,
                    entry["extension"],
                    call.get("call_id"),
                    call.get("state"),
                    entry["status"],
                    at,
                )
            )

    async def _read(self, response: aiohttp.ClientResponse, record) -> None:
        """Server-Sent Events: each message's ``event`` name and ``data`` to ``record``."""
        name, data = "message", []
        try:
            async for raw in response.content:
                line = raw.rstrip(b"\r\n").decode()
                if not line:
                    if data:
                        record(name, "\n".join(data), time.monotonic())
                    name, data = "message", []
                elif line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip())
        except (aiohttp.ClientError, OSError, ValueError, KeyError):
            pass
        self.ended += 1

    def close(self) -> None:
        async def close_all():
            for response in self.responses:
                response.close()
            self.responses.clear()
            self.opened = self.redirected = self.board_streams = 0
            self.refused.clear()
            self.pops.clear()
            self.board.clear()

        self._call(close_all())

    def stop(self) -> None:
        self._call(self.session.close())


def hold_streams(connection, base: str, stream_port: int) -> None:
    """The streams' own process, answering its parent's commands."""
    streams = Streams(base, stream_port)
    while True:
        command, value = connection.recv()
        if command == "open":
            connection.send(streams.open(value))
        elif command == "arrived":
            connection.send((dict(streams.pops), list(streams.board)))
            streams.pops.clear()
            streams.board.clear()
        elif command == "close":
            streams.close()
            connection.send(None)
        else:
            streams.stop()
            return


class StreamsProcess:
    """``Streams`` in a child process: ``open`` specs, read what ``arrived``, ``close`` them."""

    def __init__(self, base: str, stream_port: int):
        self.connection, child = multiprocessing.Pipe()
        self.process = multiprocessing.Process(
            target=hold_streams, args=(child, base, stream_port), daemon=True
        )
        self.process.start()

    def _ask(self, command: str, value=None):
        self.connection.send((command, value))
        return self.connection.recv()

    def open(self, specs: list[Spec]) -> dict:
        """``{"opened", "redirected", "refused": {why: count}, "seconds"}`` of the streams open."""
        return self._ask("open", specs)

    def arrived(self) -> tuple[dict[str, list[float]], list[tuple]]:
        """The screen pops (call id -> arrivals) and board messages since the last call."""
        return self._ask("arrived")

    def close(self) -> None:
        self._ask("close")

    def stop(self) -> None:
        self.connection.send(("quit", None))
        self.process.join(timeout=10)
