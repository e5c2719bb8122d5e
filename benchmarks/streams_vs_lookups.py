"""Do open screen-pop streams starve anything else? ``make run``'s topology (gunicorn with
gunicorn.conf.py beside the stream server, ``python -m middleware.serve``) with 0, 250, 500 and
1,000 open streams of distinct agents on the stream server, as a contact center holds them.

    .venv/bin/python -m benchmarks.streams_vs_lookups [--streams 0,250,500,1000] [--lookups 300]
        [--calls 10] [--rings 50]

At each level, one request at a time with a 3 s client timeout (as a PBX and a CRM send them):
cached caller lookups (answered, p50/p99), click-to-calls and ring webhooks (answer p50/p99), and
ring-to-pop at the client (webhook sent -> its ``screen-pop`` read on the agent's stream; at level
0 one probe stream reads it); the servers' RSS and CPU (gunicorn's master and workers, the stream
server) over the measured phase. Then the targets: at the top level every lookup answered, lookup
p99 at most twice its 0-stream value, ring-to-pop p99 at most 250 ms, no stream refused.

The client runs on the same machine and takes CPU too; its streams are held on one asyncio loop in
a process of their own, so they do not slow the timed requests' client through its GIL.
Uses the sandbox dialer and CRM (no network). The soft limit on open files is raised to the hard
one (each stream is a socket at both ends).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from benchmarks.harness import ROOT, clean_env, descendants, free_port, process_cpu
from tests.processes import stop_group

KEY = "bench-key"
SECRET = "bench-secret"
TIMEOUT = 3.0


def raise_open_files() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def start_servers(tmp: str, port: int, stream_port: int) -> subprocess.Popen:
    """What ``make run`` starts, on free ports."""
    env = clean_env(
        {
            "CTI_API_KEYS": KEY,
            "CTI_WEBHOOK_SECRET": SECRET,
            "CTI_DATABASE": f"{tmp}/cti.sqlite3",
            "CTI_STREAM_URL": f"http://127.0.0.1:{stream_port}",
            "CTI_STREAM_ORIGINS": f"http://127.0.0.1:{port}",
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "STREAM_PORT": str(stream_port),
        }
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "middleware.serve"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    for _ in range(300):
        try:
            for p in (port, stream_port):
                urllib.request.urlopen(f"http://127.0.0.1:{p}/healthz", timeout=1)
            return process
        except OSError:
            time.sleep(0.1)
    stop(process)
    raise SystemExit("the servers did not start")


def stop(process: subprocess.Popen) -> None:
    stop_group(process, timeout=40)


def usage(root: int) -> dict[str, tuple[float, float]]:
    """{'gunicorn'|'streams': (cpu seconds, rss MB)} summed over the processes of each server."""
    totals = {"gunicorn": [0.0, 0.0], "streams": [0.0, 0.0]}
    for pid, command in descendants(root).items():
        kind = (
            "streams"
            if "stream_server" in command
            else "gunicorn"
            if "gunicorn" in command
            else None
        )
        if kind is None:
            continue
        try:
            rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf(
                "SC_PAGE_SIZE"
            )
        except OSError:
            continue
        totals[kind][0] += process_cpu(pid)
        totals[kind][1] += rss / 2**20
    return {k: (v[0], v[1]) for k, v in totals.items()}


class Streams:
    """The agents' streams, all on one asyncio loop in a thread; records when each pop arrives."""

    def __init__(self, port: int):
        self.port = port
        self.loop = asyncio.new_event_loop()
        self.arrived: dict[str, float] = {}
        self.refused = 0
        self.ended = 0
        self.writers: list[asyncio.StreamWriter] = []
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    def open(self, agents: list[str]) -> None:
        asyncio.run_coroutine_threadsafe(self._open_all(agents), self.loop).result()

    async def _open_all(self, agents: list[str]) -> None:
        gate = asyncio.Semaphore(50)

        async def one(agent: str) -> None:
            async with gate:
                await self._open(agent)

        await asyncio.gather(*(one(agent) for agent in agents))

    async def _open(self, agent: str) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(
            f"GET /api/v1/agents/{agent}/events?api_key={KEY} HTTP/1.1\r\n"
            f"Host: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".encode()
        )
        status = (await reader.readline()).split()
        if len(status) < 2 or status[1] != b"200":
            self.refused += 1
            writer.close()
            return
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        self.writers.append(writer)
        asyncio.ensure_future(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while line := await reader.readline():
                if line.startswith(b"data: "):
                    call_id = json.loads(line[6:])["call_id"]
                    self.arrived[call_id] = time.monotonic()
        except (ConnectionError, ValueError):
            pass
        self.ended += 1

    def close(self) -> None:
        async def close_all():
            for writer in self.writers:
                writer.close()
            self.writers.clear()

        asyncio.run_coroutine_threadsafe(close_all(), self.loop).result()


def hold_streams(connection, port: int) -> None:
    """The streams' own process: its event loop never competes with the timed client for a GIL."""
    streams = Streams(port)
    while True:
        command, value = connection.recv()
        if command == "open":
            streams.open(value)
            connection.send(streams.refused)
        elif command == "arrived":
            connection.send(dict(streams.arrived))
        elif command == "close":
            streams.close()
            connection.send(None)
        else:
            return


class StreamsProcess:
    """``Streams`` in a child process (CLOCK_MONOTONIC is one clock for every process)."""

    def __init__(self, port: int):
        self.connection, child = multiprocessing.Pipe()
        self.process = multiprocessing.Process(target=hold_streams, args=(child, port), daemon=True)
        self.process.start()
        self.refused = 0

    def _ask(self, command: str, value=None):
        self.connection.send((command, value))
        return self.connection.recv()

    def open(self, agents: list[str]) -> None:
        self.refused = self._ask("open", agents)

    def arrived(self) -> dict[str, float]:
        return self._ask("arrived")

    def close(self) -> None:
        self._ask("close")

    def stop(self) -> None:
        self.connection.send(("quit", None))
        self.process.join(timeout=10)


def timed(connection: http.client.HTTPConnection, method: str, path: str, body=None, headers=None):
    """(status or None on timeout/failure, seconds)."""
    started = time.perf_counter()
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        response.read()
        return response.status, time.perf_counter() - started
    except (OSError, http.client.HTTPException):
        connection.close()
        return None, time.perf_counter() - started


def figures(seconds: list[float]) -> str:
    if not seconds:
        return "-"
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"{statistics.median(ordered) * 1000:.1f}/{p99 * 1000:.1f}"


def p99(seconds: list[float]) -> float:
    ordered = sorted(seconds)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else float("nan")


def run_level(root: int, port: int, streams: Streams, count: int, args, level: int) -> dict:
    agents = [str(20000 + level * 10 + i) for i in range(max(count, 1))]  # distinct per level
    refused_before = streams.refused
    streams.open(agents)
    time.sleep(1.0)
    web = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    before, started = usage(root), time.monotonic()

    lookup_times, answered = [], 0
    for _ in range(args.lookups):
        status, seconds = timed(
            web, "GET", f"/api/v1/contacts/lookup?phone=0721234567&api_key={KEY}"
        )
        if status == 200:
            answered += 1
            lookup_times.append(seconds)
        else:
            web = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)

    call_times = []
    headers = {"Content-Type": "application/json", "X-API-Key": KEY}
    for i in range(args.calls):
        body = json.dumps({"to": "0721234567", "agent": str(5000 + level * 100 + i)})
        status, seconds = timed(web, "POST", "/api/v1/calls", body, headers)
        if status in (200, 201):
            call_times.append(seconds)

    hook_times, sent = [], {}
    hook_headers = {"Content-Type": "application/json", "X-Webhook-Token": SECRET}
    for i in range(args.rings):
        call_id = f"bench-{level}-{i}"
        agent = agents[(i * 7919) % len(agents)]
        body = json.dumps(
            {
                "event": "call:ring",
                "id": f"{call_id}-leg",
                "call_id": call_id,
                "type": "inbound",
                "cid_num": "0721234567",
                "dst_num": agent,
            }
        )
        sent[call_id] = time.monotonic()
        status, seconds = timed(web, "POST", "/api/v1/webhooks/pbx", body, hook_headers)
        if status == 202:
            hook_times.append(seconds)
        time.sleep(0.02)  # rings spread out, not a burst
    time.sleep(1.5)
    elapsed = time.monotonic() - started
    after = usage(root)
    arrived = streams.arrived()
    pops = [arrived[c] - t for c, t in sent.items() if c in arrived]
    streams.close()
    time.sleep(0.5)
    result = {
        "level": level,
        "refused": streams.refused - refused_before,
        "answered": answered,
        "lookup_p99": p99(lookup_times),
        "pop_p99": p99(pops),
        "lost": len(sent) - len(pops),
    }
    cpu = {k: (after[k][0] - before[k][0]) / elapsed * 100 for k in after}
    print(
        f"{level:>6} {max(count, 1) - result['refused']:>5}/{result['refused']:<3} "
        f"{answered:>4}/{args.lookups:<4} {figures(lookup_times):>13} {figures(call_times):>13} "
        f"{figures(hook_times):>13} {figures(pops):>13} {result['lost']:>4} "
        f"{after['gunicorn'][1]:>7.0f} {after['streams'][1]:>6.0f} "
        f"{cpu['gunicorn']:>6.0f}% {cpu['streams']:>6.0f}%",
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", default="0,250,500,1000")
    parser.add_argument("--lookups", type=int, default=300)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--rings", type=int, default=50)
    args = parser.parse_args()
    levels = [int(n) for n in args.streams.split(",")]
    limit = raise_open_files()
    port, stream_port = free_port(), free_port()
    print(f"open files limit {limit}; levels {levels}; client timeout {TIMEOUT:g} s")
    with tempfile.TemporaryDirectory() as tmp:
        server = start_servers(tmp, port, stream_port)
        try:
            warm = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
            for _ in range(200):  # the cache of every worker, and the connection
                timed(warm, "GET", f"/api/v1/contacts/lookup?phone=0721234567&api_key={KEY}")
            streams = StreamsProcess(stream_port)
            print(
                "streams opened/refused | lookups answered | lookup p50/p99 ms | click p50/p99 | "
                "webhook p50/p99 | ring-to-pop p50/p99 | lost | RSS MB gunicorn, streams | "
                "CPU gunicorn, streams"
            )
            results = [run_level(server.pid, port, streams, n, args, n) for n in levels]
            streams.stop()
        finally:
            stop(server)
    base, top = results[0], results[-1]
    checks = {
        f"every lookup answered at {top['level']} streams": top["answered"] == args.lookups,
        f"lookup p99 at {top['level']} <= 2x its {base['level']}-stream value "
        f"({top['lookup_p99'] * 1000:.1f} vs {base['lookup_p99'] * 1000:.1f} ms)": top["lookup_p99"]
        <= 2 * base["lookup_p99"],
        f"ring-to-pop p99 <= 250 ms ({top['pop_p99'] * 1000:.0f} ms), none lost": top["pop_p99"]
        <= 0.25
        and top["lost"] == 0,
        "no stream refused": all(r["refused"] == 0 for r in results),
    }
    for name, held in checks.items():
        print(f"{'PASS' if held else 'FAIL'}  {name}")


if __name__ == "__main__":
    main()
