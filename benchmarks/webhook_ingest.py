"""Durable webhook ingest through gunicorn: PBX ``call:end`` events per second, each answered 202
only after its journal entry is committed with ``synchronous=FULL``.

    .venv/bin/python -m benchmarks.webhook_ingest [--events 5000] [--workers 2] [--threads 64]
                                                 [--clients 1] [--concurrency 32]
                                                 [--crm switchtransact|sandbox] [--crm-closes]
                                                 [--database postgresql://...]
                                                 [--legs 5] [--settle 1]

``--legs 5`` runs the one-leg figures first, then as many events again as queue calls of five legs
(each leg rung and ended, the third answered: 11 events a call, sent one after another so the
events of one call are in flight at once on several connections and workers), and prints the two
side by side: durable leg events per second, and calls logged per second (from the first event to
the last call log, so it includes ``CTI_JOURNAL_SETTLE_SECONDS``, ``--settle``, default 1).

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
import contextlib
import json
import multiprocessing
import os
import resource
import runpy
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.harness import (
    ROOT,
    FakeCRM,
    Gunicorn,
    base_tree,
    clean_env,
    process_cpu,
    workers,
)
from benchmarks.stacks import Recording, summary

SECRET = "bench-secret"
KEY = "bench-key"
# Events of the last hour, as a PBX sends them: the board shows (and writes) a leg of the last
# ``KEEP_SECONDS`` only, so fixed old timestamps would leave its write out of the figure.
T0 = int(time.time()) - 3600
CRM_KEY = "bench-crm-key"
DRAIN_SECONDS = 120  # the most we wait for the deliverers to send every entry
RAMP_SECONDS = 0.005  # between the openings of a client's connections


def event(n: int, legs: int = 1) -> bytes:
    """Event ``n``: the end of one-leg call ``n``, or of queue calls of ``legs`` legs the n-th
    event (per call: ring and end of each leg, the answer of the third)."""
    if legs == 1:
        return json.dumps(
            {
                "event": "call:end",
                "id": f"bench-{n}",
                "call_id": f"bench-call-{n}",
                "ts": T0 + n,
                "type": "inbound",
                "cid_num": f"+2772{n % 10_000_000:07d}",
                "dst_user_id": 101,
                "durationms": 190000,
                "billms": 125000,
            }
        ).encode()
    call, index = divmod(n, events_per_call(legs))
    return json.dumps(queue_call(call, legs)[index]).encode()


def events_per_call(legs: int) -> int:
    return 1 if legs == 1 else 2 * legs + 1


def queue_call(call: int, legs: int) -> list[dict]:
    answered = min(3, legs)
    events = []
    for leg in range(1, legs + 1):
        base = {
            "id": f"q{call}-{leg}",
            "call_id": f"q{call}-1",
            "type": "queue",
            "cid_num": f"+2772{call % 10_000_000:07d}",
            "dst_user_id": 100 + leg,
        }
        talk = 125000 if leg == answered else 0
        events.append({**base, "event": "call:ring", "ts": T0 + call})
        if talk:
            events.append({**base, "event": "call:answer", "ts": T0 + 10 + call})
        events.append(
            {
                **base,
                "event": "call:end",
                "ts": T0 + 20 + call + talk // 1000,
                "durationms": 20000 + talk,
                "billms": talk,
            }
        )
    return events


# the load ----------------------------------------------------------------------------------------


def client(port: int, numbers: list[int], concurrency: int, legs: int, results) -> None:
    """One client process: ``concurrency`` keep-alive connections driven by asyncio.

    Raw HTTP/1.1 keeps the load generator's own CPU small: it shares the machine with the server.
    A request that gets no 202 (a reset connection, an error) is sent again, as a PBX would; after
    as many failures as events the client gives up (a broken server, not a slow one).
    """
    latencies, failures = asyncio.run(_drive(port, numbers, concurrency, legs))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    results.put((latencies, failures, usage.ru_utime + usage.ru_stime))


async def _drive(port: int, numbers: list[int], concurrency: int, legs: int):
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
            body = event(n, legs)
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
    parser.add_argument("--crm-ms", type=float, default=0, help="the fake CRM's answer delay")
    parser.add_argument("--database", help="an empty PostgreSQL database (default: a new SQLite)")
    parser.add_argument("--legs", type=int, default=1, help="also queue calls of this many legs")
    parser.add_argument("--settle", type=float, default=1.0, help="CTI_JOURNAL_SETTLE_SECONDS")
    parser.add_argument(
        "--drain",
        type=float,
        default=DRAIN_SECONDS,
        help="the most seconds to wait for the deliverers to send every entry after the ingest",
    )
    parser.add_argument("--against", help="a git revision or a checkout, run in the same rounds")
    parser.add_argument(
        "--profile",
        type=Path,
        help="record the workers with py-spy during the ingest into this file (the base tree's "
        "into FILE's name with -base) and print where the time went; each run writes afresh",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="runs of each tree (alternating with --against)"
    )
    args = parser.parse_args()
    if args.against and args.database:
        parser.error("--against serves each tree a new SQLite store: leave out --database")

    context = multiprocessing.get_context("spawn")
    configurations = [1] + ([args.legs] if args.legs > 1 else [])
    with (
        FakeCRM(close=args.crm_closes, delay=args.crm_ms / 1000) as crm,
        base_tree(args.against) if args.against else contextlib.nullcontext((None, None)) as base,
    ):
        trees = [("this tree", ROOT)] + ([(f"base {base[1]}", base[0])] if args.against else [])
        figures: dict[int, dict[str, list[dict]]] = {}
        for legs in configurations:
            figures[legs] = {name: [] for name, _ in trees}
            for number in range(args.rounds):
                # this, base, then base, this: a drift of the machine's speed weighs on both
                for name, tree in trees if number % 2 == 0 else trees[::-1]:
                    if figures[legs][name] or legs != 1 or number:
                        print()
                    figures[legs][name].append(run(args, legs, crm, context, tree, name))
    if len(configurations) > 1:
        print()
        print(f"{'':<24}{'events/s':>12}{'calls logged/s':>16}{'calls':>8}{'logs':>8}")
        names = ("one-leg calls", f"{args.legs}-leg queue calls")
        for name, legs in zip(names, configurations, strict=True):
            figure = figures[legs]["this tree"][0]
            print(
                f"{name:<24}{figure['events_per_second']:>12,.0f}"
                f"{figure['calls_per_second']:>16,.0f}{figure['calls']:>8}{figure['logs']:>8}"
            )
    if args.against or args.rounds > 1:
        for legs in configurations:
            compare(figures[legs], legs, args)


def compare(runs: dict[str, list[dict]], legs: int, args) -> None:
    """Each tree's runs and medians, and this tree's over the base's (one line each)."""
    print()
    kind = "one-leg calls" if legs == 1 else f"queue calls of {legs} legs"
    print(
        f"{kind}, {args.rounds} rounds"
        + (" (this tree, base; then base, this tree)" if args.against else "")
        + f", gunicorn --workers {args.workers} --threads {args.threads}, {os.cpu_count()} cores:"
    )
    medians = {}
    for name, figures in runs.items():
        rate = [f["events_per_second"] for f in figures]
        cpu = [f["cpu_per_event_us"] for f in figures]
        total = [f["cpu_total_per_event_us"] for f in figures]
        stored = [f["stored"] for f in figures]
        medians[name] = statistics.median(rate), statistics.median(cpu), statistics.median(total)
        print(
            f"  {name}: {medians[name][0]:,.0f} events/s, server CPU per acknowledged event "
            f"{medians[name][1]:,.0f} us (with delivery {medians[name][2]:,.0f} us), medians; "
            f"runs {', '.join(f'{r:,.0f}' for r in rate)} events/s, "
            f"{', '.join(f'{c:,.0f}' for c in cpu)} us; stored {', '.join(map(str, stored))} "
            f"of {figures[0]['events']} each"
        )
    if args.against:
        (this, base) = medians.values()
        print(
            f"  this tree / base: events/s x{this[0] / base[0]:.2f}, "
            f"CPU per acknowledged event x{this[1] / base[1]:.2f} "
            f"(with delivery x{this[2] / base[2]:.2f})"
        )


def open_store(database: str):
    """This tree's store (imported late: importing the middleware sets up its metrics, which the
    servers started before need not share); ``benchmarks.retention`` fills and reads it."""
    from middleware.store.sql import SqlStore

    return SqlStore(database)


class JournalCounts:
    """Counts the journal's entries by status with one plain query, so it reads the store of any
    tree (opening it as this tree's store would migrate an older tree's schema)."""

    def __init__(self, database: str):
        from sqlalchemy import create_engine, text  # late: only where a run counts

        url = database if "://" in database else f"sqlite:///{database}"
        url = url.replace("postgresql://", "postgresql+psycopg://", 1)
        self._engine = create_engine(url)
        self._query = text("SELECT status, count(*) FROM journal GROUP BY status")

    def __call__(self) -> dict[str, int]:
        counts = {"pending": 0, "delivered": 0, "failed": 0}
        with self._engine.connect() as conn:
            counts.update({status: count for status, count in conn.execute(self._query)})
        return counts

    def close(self) -> None:
        self._engine.dispose()


def journal_counts_now(database: str) -> dict[str, int]:
    counts = JournalCounts(database)
    try:
        return counts()
    finally:
        counts.close()


def run(args, legs: int, crm: FakeCRM, context, tree: Path = ROOT, name: str = "this tree") -> dict:
    """One gunicorn of ``tree`` on a fresh store, the load of ``legs``-leg calls; prints and
    returns figures."""
    per_call = events_per_call(legs)
    events = args.events - args.events % per_call
    calls = events // per_call
    logs_before = crm.logs() if args.crm == "switchtransact" else 0
    with tempfile.TemporaryDirectory() as tmp:
        database = args.database or str(Path(tmp) / "cti.sqlite3")
        env = clean_env(
            {
                "CTI_API_KEYS": KEY,
                "CTI_WEBHOOK_SECRET": SECRET,
                "CTI_DATABASE": database,
                "CTI_CRM": args.crm,
                "CTI_JOURNAL_SETTLE_SECONDS": str(args.settle),
            }
        )
        if args.crm == "switchtransact":
            env.update(CTI_CRM_URL=crm.url, CTI_CRM_API_KEY=CRM_KEY)
        # from the checkout's root: its gunicorn.conf.py, as a deployment runs it
        server = Gunicorn(
            env,
            workers=args.workers,
            threads=args.threads,
            tree=tree,
            extra_args=("--log-level", "warning"),
        )
        port = server.port
        try:
            server.wait_ready("/healthz")
            server.wait_settled(args.workers)  # every worker booted before the clock starts

            before = journal_counts_now(database)
            results = context.Queue()
            shares = [list(range(c, events, args.clients)) for c in range(args.clients)]
            clients = [
                context.Process(target=client, args=(port, share, args.concurrency, legs, results))
                for share in shares
            ]
            recording = None
            if args.profile:
                path = args.profile
                if tree != ROOT:
                    path = path.with_name(f"{path.stem}-base{path.suffix}")
                recording = Recording(server.pid, path)
            cpu_before = server.cpu(), process_cpu(crm.pid), machine_ticks()
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
            if recording is not None:
                recording.stop()
            server_cpu = server.cpu() - cpu_before[0]
            crm_cpu = process_cpu(crm.pid) - cpu_before[1]
            busy, ticks = (
                now - before for now, before in zip(machine_ticks(), cpu_before[2], strict=True)
            )
            for process in clients:
                process.join()

            store = JournalCounts(database)

            def journal_counts() -> dict[str, int]:  # this run's (a --database keeps the last)
                return {k: v - before.get(k, 0) for k, v in store().items()}

            at_end = journal_counts()  # as the last event was acknowledged
            stored = sum(at_end.values())
            # The deliverers keep sending: wait until nothing is pending.
            give_up = time.monotonic() + args.drain + (args.settle if args.drain else 0)
            while (counts := journal_counts())["pending"] and time.monotonic() < give_up:
                time.sleep(0.05)
            drained = time.perf_counter() - started - elapsed
            total_cpu = server.cpu() - cpu_before[0]
            received = crm.logs() - logs_before if args.crm == "switchtransact" else None
            store.close()
        finally:
            server.stop()

    latencies = sorted(lat for lats, _, _ in outcomes for lat in lats)
    failures = sum(f for _, f, _ in outcomes)
    if len(latencies) < events:
        raise SystemExit(f"gave up: {len(latencies)} of {events} acknowledged, {failures} failed")
    client_cpu = sum(cpu for _, _, cpu in outcomes)

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    def per_event(seconds: float) -> str:
        return f"{seconds / max(1, len(latencies)) * 1e6:,.0f} us"

    kind = "one-leg calls (call:end)" if legs == 1 else f"queue calls of {legs} legs"
    print(
        f"{kind}; store: {'postgresql' if args.database else 'sqlite'}; crm: {args.crm}"
        f"{' (closes every connection)' if args.crm_closes else ' (keep-alive)'}; "
        f"gunicorn --workers {args.workers} --threads {args.threads}; "
        f"{args.clients} client processes x {args.concurrency} connections; "
        f"settle {args.settle:g} s; load average {os.getloadavg()[0]:.1f}; {name}"
        + (f"; fake CRM answering in {args.crm_ms:g} ms" if args.crm_ms else "")
    )
    print(f"client connections per worker: {', '.join(map(str, split)) or 'not seen'}")
    print(f"events acknowledged: {len(latencies)} (resent after a failure: {failures})")
    print(f"journal entries stored: {stored} (calls: {calls})")
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
    if recording is not None:
        print(f"where the workers' time went during the ingest ({recording.path}):")
        print(summary(recording.path, events=len(latencies)))
    return {
        "events": events,
        "stored": stored,
        "cpu_per_event_us": server_cpu / len(latencies) * 1e6,
        "cpu_total_per_event_us": total_cpu / len(latencies) * 1e6,
        "events_per_second": len(latencies) / elapsed,
        "calls_per_second": counts["delivered"] / (elapsed + drained),
        "calls": calls,
        "logs": received if received is not None else counts["delivered"],
    }


if __name__ == "__main__":
    main()
