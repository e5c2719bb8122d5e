"""Durable webhook ingest through gunicorn: PBX ``call:end`` events per second, each answered 202
only after its journal entry is committed with ``synchronous=FULL``.

    .venv/bin/python benchmarks/webhook_ingest.py [--events 5000] [--workers 2] [--threads 8]
                                                  [--clients 1] [--concurrency 32]
                                                  [--database postgresql://...]

Starts ``gunicorn app:app`` on a free port with a fresh SQLite store in a temporary directory and the
sandbox CRM (so the background deliverers run beside the ingest, as in production), posts distinct
events from asyncio client processes over keep-alive connections, and prints the rate of
acknowledged events, the latency percentiles, and the journal's count afterwards (which must equal
the number of events: each was stored exactly once). ``--database`` serves an empty PostgreSQL
database instead (its URL is never printed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret"
KEY = "bench-key"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def event(n: int) -> bytes:
    return json.dumps(
        {
            "event": "call:end",
            "id": f"bench-{n}",
            "call_id": f"bench-call-{n}",
            "ts": 1751710522 + n,
            "type": "inbound",
            "cid_num": f"+2772{n % 10_000_000:07d}",
            "dst_user_id": 101,
            "durationms": 190000,
            "billms": 125000,
        }
    ).encode()


def client(port: int, numbers: list[int], concurrency: int, results) -> None:
    """One client process: ``concurrency`` keep-alive connections driven by asyncio.

    Raw HTTP/1.1 keeps the load generator's own CPU small: it shares the machine with the server.
    A request that gets no 202 (a reset connection, an error) is sent again, as a PBX would.
    """
    results.put(asyncio.run(_drive(port, numbers, concurrency)))


async def _drive(port: int, numbers: list[int], concurrency: int):
    queue = list(reversed(numbers))
    latencies: list[float] = []
    failures = 0

    async def connection():
        nonlocal failures
        reader = writer = None
        while queue:
            n = queue.pop()
            body = event(n)
            head = (
                f"POST /api/v1/webhooks/pbx HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Content-Type: application/json\r\nX-Webhook-Token: {SECRET}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            started = time.perf_counter()
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(head + body)
                status_line = await reader.readline()
                status = int(status_line.split()[1])
                length, close = 0, False
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                    elif name.lower() == "connection" and "close" in value.lower():
                        close = True
                await reader.readexactly(length)
                if close:
                    writer.close()
                    writer = None
            except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
                status = 0
                if writer is not None:
                    writer.close()
                writer = None
            if status == 202:
                latencies.append(time.perf_counter() - started)
            else:
                failures += 1
                queue.append(n)
        if writer is not None:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return latencies, failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--clients", type=int, default=1, help="client processes")
    parser.add_argument("--concurrency", type=int, default=32, help="connections per client")
    parser.add_argument("--database", help="an empty PostgreSQL database (default: a new SQLite)")
    args = parser.parse_args()

    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CTI_")}
        env.update(
            CTI_API_KEYS=KEY,
            CTI_WEBHOOK_SECRET=SECRET,
            CTI_DATABASE=args.database or str(Path(tmp) / "cti.sqlite3"),
            PYTHONPATH=str(ROOT),
        )
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        server = subprocess.Popen(
            [
                gunicorn,
                "app:app",
                "--chdir",
                str(ROOT),
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(args.workers),
                "--threads",
                str(args.threads),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)  # noqa: S310
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit("gunicorn did not start") from None
                    time.sleep(0.1)

            context = multiprocessing.get_context("spawn")
            results = context.Queue()
            shares = [list(range(c, args.events, args.clients)) for c in range(args.clients)]
            clients = [
                context.Process(target=client, args=(port, share, args.concurrency, results))
                for share in shares
            ]
            started = time.perf_counter()
            for process in clients:
                process.start()
            outcomes = [results.get() for _ in clients]
            elapsed = time.perf_counter() - started
            for process in clients:
                process.join()

            latencies = sorted(lat for lats, _ in outcomes for lat in lats)
            failures = sum(f for _, f in outcomes)
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/api/v1/journal?limit=1", headers={"X-API-Key": KEY}
            )
            urllib.request.urlopen(request, timeout=5).read()  # noqa: S310
            sys.path.insert(0, str(ROOT))
            from middleware.store.sql import SqlStore

            stored = sum(
                SqlStore(args.database or str(Path(tmp) / "cti.sqlite3")).journal_counts().values()
            )
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=15)

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    print(
        f"store: {'postgresql' if args.database else 'sqlite'}; "
        f"gunicorn --workers {args.workers} --threads {args.threads}; "
        f"{args.clients} client processes x {args.concurrency} connections"
    )
    print(f"events acknowledged: {len(latencies)} (resent after a failure: {failures})")
    print(f"journal entries stored: {stored}")
    print(f"elapsed: {elapsed:.2f} s")
    print(f"durable ingest: {len(latencies) / elapsed:,.0f} events/s")
    print(
        f"latency ms: p50 {pct(0.50):.1f}  p95 {pct(0.95):.1f}  p99 {pct(0.99):.1f}"
        f"  mean {statistics.fmean(latencies) * 1000:.1f}"
    )


if __name__ == "__main__":
    main()
