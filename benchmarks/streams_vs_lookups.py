"""Do open screen-pop streams starve lookups? Cache-hit lookup latency without and with 50 open
Server-Sent Events streams, against gunicorn started with the project's gunicorn.conf.py.

    .venv/bin/python benchmarks/streams_vs_lookups.py [--streams 50] [--lookups 1000]

Prints p50/p95/p99 latency of each run and their ratio. Uses the sandbox CRM (no network).
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KEY = "bench-key"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(tmp: str, port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTI_")}
    env.update(
        CTI_API_KEYS=KEY, CTI_DATABASE=f"{tmp}/cti.sqlite3", HOST="127.0.0.1", PORT=str(port)
    )
    gunicorn = Path(sys.executable).with_name("gunicorn")
    process = subprocess.Popen(
        [str(gunicorn), "app:app", "--config", "gunicorn.conf.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return process
        except OSError:
            time.sleep(0.1)
    process.terminate()
    raise SystemExit("gunicorn did not start")


def lookups(port: int, count: int, clients: int) -> list[float]:
    path = f"/api/v1/contacts/lookup?phone=0721234567&api_key={KEY}"
    per_client = count // clients

    def run(_):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        timings = []
        for _ in range(per_client):
            started = time.perf_counter()
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status == 200, response.status
        connection.close()
        return timings

    with ThreadPoolExecutor(clients) as pool:
        return [t for batch in pool.map(run, range(clients)) for t in batch]


def open_streams(port: int, count: int) -> list[http.client.HTTPConnection]:
    streams = []
    for i in range(count):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", f"/api/v1/agents/{7000 + i}/events?api_key={KEY}")
        response = connection.getresponse()
        assert response.status == 200
        response.fp.readline()  # the stream has started: a thread holds it
        streams.append(connection)
    return streams


def summary(name: str, timings: list[float]) -> dict:
    ordered = sorted(timings)
    figures = {
        "p50": statistics.median(ordered),
        "p95": ordered[int(len(ordered) * 0.95) - 1],
        "p99": ordered[int(len(ordered) * 0.99) - 1],
    }
    print(
        f"{name:<28} n={len(timings):<5} "
        + "  ".join(f"{k}={v:.2f} ms" for k, v in figures.items())
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--lookups", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(tmp, port)
        try:
            lookups(port, 200, args.clients)  # warm the cache in every worker, and the connections
            quiet, busy = [], []
            for _ in range(args.rounds):  # alternate, so drifting machine load hits both alike
                quiet += lookups(port, args.lookups, args.clients)
                streams = open_streams(port, args.streams)
                threading.Event().wait(0.3)
                busy += lookups(port, args.lookups, args.clients)
                for stream in streams:
                    stream.close()
                # A stream's thread notices its client left at its next heartbeat (5 s).
                threading.Event().wait(6)
            quiet_figures = summary("lookups, no streams", quiet)
            busy_figures = summary(f"lookups, {args.streams} open streams", busy)
        finally:
            server.terminate()
            server.wait(timeout=40)
    print(
        f"p50 ratio with/without streams: {busy_figures['p50'] / quiet_figures['p50']:.2f}  "
        f"p95 ratio: {busy_figures['p95'] / quiet_figures['p95']:.2f}"
    )


if __name__ == "__main__":
    main()
