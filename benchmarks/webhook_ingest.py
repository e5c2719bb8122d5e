"""Durable webhook ingest through gunicorn: PBX ``call:end`` events per second, each answered 202
only after its journal entry is committed with ``synchronous=FULL``.

    .venv/bin/python benchmarks/webhook_ingest.py [--events 5000] [--workers 2] [--threads 64]
                                                  [--clients 1] [--concurrency 32]
                                                  [--crm switchtransact|sandbox] [--crm-closes]
                                                  [--database postgresql://...]

Workers and threads default to what ``gunicorn.conf.py`` gives a deployment (``WEB_CONCURRENCY``,
``GUNICORN_THREADS``). Starts a fake SwitchTransact in its own process (``GET /calls/record``
finds every number, ``POST /calls/log`` answers ``{"status": true}``; asyncio, HTTP/1.1
keep-alive, so it costs the shared machine little) and ``gunicorn app:app`` on free ports with a
fresh SQLite store in a temporary directory and ``CTI_CRM=switchtransact``, so each worker's
background deliverer looks the caller up and sends the call log over HTTP beside the ingest, as in
production. Then posts distinct
events from asyncio client processes over keep-alive connections, and prints the rate of
acknowledged events, the latency percentiles, the CPU the server, the client and the fake CRM used
per event, and the journal's count afterwards (which must equal the number of events: each was
stored exactly once). Then it waits for the deliverers to drain the journal and prints how many
entries were delivered, how long that took after the last acknowledgement, and how many call logs
the fake CRM received (equal to the delivered entries unless one was sent twice).

``--crm-closes``: the fake SwitchTransact answers ``Connection: close`` and closes every connection
after its answer (as many PHP, IIS and load-balanced stacks do), so each lookup and call log is
sent on a new connection; every log must still arrive once. ``--crm sandbox`` uses the sandbox CRM
instead (call logs written into the same store: one more
commit per entry). ``--database`` serves an empty PostgreSQL database instead of SQLite (its URL
is never printed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import runpy
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret"
KEY = "bench-key"
CRM_KEY = "bench-crm-key"
DRAIN_SECONDS = 120  # the most we wait for the deliverers to send every entry
RAMP_SECONDS = 0.005  # between the openings of a client's connections


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


# the fake SwitchTransact -------------------------------------------------------------------------


def serve_crm(port: int, ready, close: bool = False) -> None:
    """Every number is a contact, every call log is taken; ``GET /stats`` counts the logs.

    Raw HTTP/1.1 on asyncio, keep-alive or (``close``) closing each connection after its answer:
    a few tens of microseconds of CPU per request, so the fake takes little of the machine the
    middleware runs on.
    """
    logs = 0
    closing = "Connection: close\r\n" if close else ""

    def answer(status: int, body: dict) -> bytes:
        data = json.dumps(body).encode()
        return (
            f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n{closing}\r\n"
        ).encode() + data

    async def handle(reader, writer):
        nonlocal logs
        try:
            while request_line := await reader.readline():
                method, target, _ = request_line.decode("latin-1").split(" ", 2)
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                payload = await reader.readexactly(length) if length else b""
                url = urlsplit(target)
                if method == "GET" and url.path == "/calls/record":
                    phone = unquote(parse_qs(url.query).get("phone", [""])[0])
                    reply = answer(
                        200,
                        {
                            "status": True,
                            "contact": {
                                "id": f"contact-{phone}",
                                "firstname": "James",
                                "lastname": "May",
                                "company": "My Company name",
                                "mobilephone": phone,
                                "entity_type": "Account",
                            },
                        },
                    )
                elif method == "POST" and url.path == "/calls/log":
                    json.loads(payload)
                    logs += 1
                    reply = answer(200, {"status": True})
                elif url.path == "/stats":
                    reply = answer(200, {"logs": logs})
                else:
                    reply = answer(404, {"status": False, "error": "not found"})
                writer.write(reply)
                if close and url.path != "/stats":
                    await writer.drain()
                    break
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", port)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def crm_logs(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=5) as answer:  # noqa: S310
        return json.loads(answer.read())["logs"]


# the load ----------------------------------------------------------------------------------------


def client(port: int, numbers: list[int], concurrency: int, results) -> None:
    """One client process: ``concurrency`` keep-alive connections driven by asyncio.

    Raw HTTP/1.1 keeps the load generator's own CPU small: it shares the machine with the server.
    A request that gets no 202 (a reset connection, an error) is sent again, as a PBX would; after
    as many failures as events the client gives up (a broken server, not a slow one).
    """
    latencies, failures = asyncio.run(_drive(port, numbers, concurrency))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    results.put((latencies, failures, usage.ru_utime + usage.ru_stime))


async def _drive(port: int, numbers: list[int], concurrency: int):
    queue = list(reversed(numbers))
    latencies: list[float] = []
    failures = 0

    async def connection(index: int):
        nonlocal failures
        # Connections open one by one as the load starts, as a proxy's pool grows with demand:
        # opened all at once, the first gunicorn worker to wake accepts nearly all of them.
        await asyncio.sleep(index * RAMP_SECONDS)
        reader = writer = None
        while queue and failures <= len(numbers):
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

    await asyncio.gather(*(connection(index) for index in range(concurrency)))
    return latencies, failures


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far (Linux /proc); 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_ticks() -> tuple[int, int]:
    """(busy, all) clock ticks of every core so far, from /proc/stat (idle and iowait not busy)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(values) - values[3] - values[4], sum(values)


def connections_per_worker(master: int, port: int) -> list[int]:
    """How many established connections to ``port`` each worker of ``master`` holds (Linux)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                inodes.add(fields[9])
    counts = []
    for pid in workers(master):
        try:
            links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
        except OSError:
            continue
        counts.append(sum(link[8:-1] in inodes for link in links if link.startswith("socket:[")))
    return sorted(counts, reverse=True)


def workers(master: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            if ppid == master:
                found.append(int(entry.name))
    return found


def workers_cpu(master: int) -> float:
    """CPU seconds used so far by the gunicorn master's workers."""
    return sum(process_cpu(pid) for pid in workers(master))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    shipped = runpy.run_path(str(ROOT / "gunicorn.conf.py"))  # what a deployment runs
    parser.add_argument("--workers", type=int, default=shipped["workers"])
    parser.add_argument(
        "--threads", type=int, default=shipped["threads"], help="default: gunicorn.conf.py's"
    )
    parser.add_argument("--clients", type=int, default=1, help="client processes")
    parser.add_argument("--concurrency", type=int, default=32, help="connections per client")
    parser.add_argument("--crm", choices=("switchtransact", "sandbox"), default="switchtransact")
    parser.add_argument(
        "--crm-closes", action="store_true", help="the fake CRM closes every connection"
    )
    parser.add_argument("--database", help="an empty PostgreSQL database (default: a new SQLite)")
    args = parser.parse_args()

    port, crm_port = free_port(), free_port()
    context = multiprocessing.get_context("spawn")
    crm_ready = context.Event()
    crm = context.Process(
        target=serve_crm, args=(crm_port, crm_ready, args.crm_closes), daemon=True
    )
    crm.start()
    if not crm_ready.wait(30):
        raise SystemExit("the fake CRM did not start")
    with tempfile.TemporaryDirectory() as tmp:
        database = args.database or str(Path(tmp) / "cti.sqlite3")
        env = {k: v for k, v in os.environ.items() if not k.startswith("CTI_")}
        env.update(
            CTI_API_KEYS=KEY,
            CTI_WEBHOOK_SECRET=SECRET,
            CTI_DATABASE=database,
            CTI_CRM=args.crm,
            PYTHONPATH=str(ROOT),
        )
        if args.crm == "switchtransact":
            env.update(CTI_CRM_URL=f"http://127.0.0.1:{crm_port}", CTI_CRM_API_KEY=CRM_KEY)
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
            cwd=ROOT,  # its gunicorn.conf.py, and its modules even where gunicorn imports early
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

            results = context.Queue()
            shares = [list(range(c, args.events, args.clients)) for c in range(args.clients)]
            clients = [
                context.Process(target=client, args=(port, share, args.concurrency, results))
                for share in shares
            ]
            cpu_before = workers_cpu(server.pid), process_cpu(crm.pid), machine_ticks()
            started = time.perf_counter()
            for process in clients:
                process.start()
            split: list[int] = []
            while results.empty() and not split:  # once every connection is open
                time.sleep(0.05)
                if (
                    sum(seen := connections_per_worker(server.pid, port))
                    >= args.clients * args.concurrency
                ):
                    split = seen
            outcomes = [results.get() for _ in clients]
            elapsed = time.perf_counter() - started
            server_cpu = workers_cpu(server.pid) - cpu_before[0]
            crm_cpu = process_cpu(crm.pid) - cpu_before[1]
            busy, ticks = (
                now - before for now, before in zip(machine_ticks(), cpu_before[2], strict=True)
            )
            for process in clients:
                process.join()

            sys.path.insert(0, str(ROOT))
            from middleware.store.sql import SqlStore

            store = SqlStore(database)
            at_end = store.journal_counts()  # as the last event was acknowledged
            stored = sum(at_end.values())
            # The deliverers keep sending: wait until nothing is pending.
            give_up = time.monotonic() + DRAIN_SECONDS
            while (counts := store.journal_counts())["pending"] and time.monotonic() < give_up:
                time.sleep(0.05)
            drained = time.perf_counter() - started - elapsed
            total_cpu = workers_cpu(server.pid) - cpu_before[0]
            received = crm_logs(crm_port) if args.crm == "switchtransact" else None
            store.close()
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=15)
            crm.terminate()
            crm.join(5)

    latencies = sorted(lat for lats, _, _ in outcomes for lat in lats)
    failures = sum(f for _, f, _ in outcomes)
    if len(latencies) < args.events:
        raise SystemExit(
            f"gave up: {len(latencies)} of {args.events} acknowledged, {failures} failed"
        )
    client_cpu = sum(cpu for _, _, cpu in outcomes)

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    def per_event(seconds: float) -> str:
        return f"{seconds / max(1, len(latencies)) * 1e6:,.0f} us"

    print(
        f"store: {'postgresql' if args.database else 'sqlite'}; crm: {args.crm}"
        f"{' (closes every connection)' if args.crm_closes else ' (keep-alive)'}; "
        f"gunicorn --workers {args.workers} --threads {args.threads}; "
        f"{args.clients} client processes x {args.concurrency} connections; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(f"client connections per worker: {', '.join(map(str, split)) or 'not seen'}")
    print(f"events acknowledged: {len(latencies)} (resent after a failure: {failures})")
    print(f"journal entries stored: {stored}")
    print(f"elapsed: {elapsed:.2f} s")
    print(f"durable ingest: {len(latencies) / elapsed:,.0f} events/s")
    print(
        f"latency ms: p50 {pct(0.50):.1f}  p95 {pct(0.95):.1f}  p99 {pct(0.99):.1f}"
        f"  mean {statistics.fmean(latencies) * 1000:.1f}"
    )
    print(
        f"CPU per event during the ingest: server {per_event(server_cpu)}, "
        f"client {per_event(client_cpu)}, fake CRM {per_event(crm_cpu)}; "
        f"the machine's cores busy {busy / max(1, ticks):.0%} (everything on it)"
    )
    print(f"delivered while the events came in: {at_end['delivered']}")
    print(
        f"delivered {counts['delivered']}, failed {counts['failed']}, pending {counts['pending']}"
        f" {drained:.2f} s after the last acknowledgement"
        + (f"; call logs the CRM received: {received}" if received is not None else "")
    )
    print(f"server CPU per event, ingest and delivery: {per_event(total_cpu)}")


if __name__ == "__main__":
    main()
