"""Retention beside ingest: durable webhook ingest with and without the background purge running,
and whether the SQLite file stops growing once retention applies.

    .venv/bin/python -m benchmarks.retention [--entries 100000] [--events 5000] [--rounds 2]
                        [--workers 2] [--threads 64] [--clients 1] [--concurrency 32]

Makes ``--entries`` synthetic journal entries finished two days ago (cc_agent calls of two legs,
each rung and ended: one entry, four leg events) through the store's own bulk method
(``store.retention.add_finished``), in a fresh SQLite store. Then serves it with ``gunicorn
app:app`` (a fake SwitchTransact takes the call logs, as in ``webhook_ingest``), ``--rounds`` times
each way, alternating: with ``CTI_JOURNAL_RETENTION=0`` (nothing is purged) and with ``1d``, where
the workers' background pass purges old entries while the load runs (the load starts once the
purge has begun). The load is ``webhook_ingest``'s: ``--events`` new ``call:end`` events per run
over keep-alive connections from asyncio client processes. Prints the ingest rate and latency
percentiles side by side (the median of the rounds, and each round), how many old entries the
service purged while the load ran, and checks that the journal holds one entry per acknowledged
event. Then, with the service stopped, the same purge (``Purge``, without its pauses) deletes the
rest, and the store's size (the file and its WAL) is printed when filled, after the purge, filled
again with as many old entries, and after the second purge: with incremental auto-vacuum the file
gives the purged pages back, so the second round ends no bigger than the first.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import runpy
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.harness import ROOT, FakeCRM, Gunicorn, clean_env
from benchmarks.webhook_ingest import CRM_KEY, KEY, SECRET, client, open_store
from tests.contacts import JAMES_CALL_LOG

DAY = 86400.0
FILL_CHUNK = 5000  # entries per transaction of the bulk method
PURGE_START_SECONDS = 60  # the most we wait for a worker's first pass to begin


def fill(database: str, first: int, count: int) -> float:
    """``count`` entries finished two days ago, keys from ``first`` on; the seconds it took."""
    from middleware.store import FinishedEntry, LegEvent

    started = time.perf_counter()
    store = open_store(database)
    finished_at = time.time() - 2 * DAY
    try:
        for chunk in range(first, first + count, FILL_CHUNK):
            store.retention.add_finished(
                _entry(n, finished_at, FinishedEntry, LegEvent)
                for n in range(chunk, min(chunk + FILL_CHUNK, first + count))
            )
    finally:
        store.close()
    return time.perf_counter() - started


def _entry(n: int, at: float, FinishedEntry, LegEvent):  # noqa: N803 - the classes, imported late
    legs = [f"old-{n}-{leg}" for leg in (1, 2)]
    return FinishedEntry(
        source="pbx",
        key=f"old-{n}",
        status="delivered",
        call_log={**JAMES_CALL_LOG, "Number": f"+2772{n % 10_000_000:07d}"},
        created_at=at - 190,
        finished_at=at,
        agent="6001",
        legs=tuple(
            {"id": leg, "agent": "6001", "billms": 125000 * (i == 0)} for i, leg in enumerate(legs)
        ),
        leg_events=tuple(
            LegEvent(leg, event, {"type": "inbound", "cid_num": "0721234567"}, at - 190)
            for leg in legs
            for event in ("call:ring", "call:end")
        ),
    )


def size(database: str) -> int:
    """The store's bytes on disk: the file and its WAL (the last connection to close, this one,
    checkpoints the WAL into the file and deletes it)."""
    journal_size(database)
    return sum(
        os.path.getsize(path) for path in (database, f"{database}-wal") if os.path.exists(path)
    )


def journal_size(database: str) -> tuple[int, int]:
    """(journal entries, free pages of the file)."""
    store = open_store(database)
    try:
        return store.retention.counts()["journal"], store.retention.space().free_pages
    finally:
        store.close()


def ingest(args, port: int, numbers: list[int]) -> dict:
    """``webhook_ingest``'s load: the rate of acknowledged events and their p50 and p99."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    shares = [numbers[c :: args.clients] for c in range(args.clients)]
    clients = [
        context.Process(target=client, args=(port, share, args.concurrency, 1, results))
        for share in shares
    ]
    started = time.perf_counter()
    for process in clients:
        process.start()
    outcomes = [results.get() for _ in clients]
    elapsed = time.perf_counter() - started
    for process in clients:
        process.join()
    latencies = sorted(lat for lats, _, _ in outcomes for lat in lats)
    if len(latencies) < len(numbers):
        raise SystemExit(f"gave up: {len(latencies)} of {len(numbers)} events acknowledged")

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {"rate": len(latencies) / elapsed, "p50": pct(0.5), "p99": pct(0.99)}


def serve(args, database: str, crm: FakeCRM, retention: str) -> Gunicorn:
    env = clean_env(
        {
            "CTI_API_KEYS": KEY,
            "CTI_WEBHOOK_SECRET": SECRET,
            "CTI_DATABASE": database,
            "CTI_CRM": "switchtransact",
            "CTI_CRM_URL": crm.url,
            "CTI_CRM_API_KEY": CRM_KEY,
            "CTI_JOURNAL_RETENTION": retention,
        }
    )
    server = Gunicorn(
        env, workers=args.workers, threads=args.threads, extra_args=("--log-level", "warning")
    )
    server.wait_ready("/healthz")  # the first request starts that worker's background threads
    return server


def purge_now(database: str) -> float:
    """The old entries purged and the file's free pages given back, in this process, by the purge
    the service runs (``Purge``) without its pauses (the service is stopped); the seconds it took."""
    from middleware.services.retention import LEASE_SECONDS, Part, Purge

    started = time.perf_counter()
    store = open_store(database)
    try:
        journal = Part("journal", store.retention.purge_journal, DAY)
        # a worker stopped in its pass gave the lease up at exit; one killed holds it a minute
        while Purge(store.retention, [journal], pause=0, share=1.0).run() is None:
            if time.perf_counter() - started > LEASE_SECONDS + 5:
                raise SystemExit("gave up: the retention lease stayed held")
            time.sleep(1)
    finally:
        store.close()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000, help="old entries per fill")
    parser.add_argument("--events", type=int, default=5000, help="events of each ingest run")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each kind, alternating")
    shipped = runpy.run_path(str(ROOT / "gunicorn.conf.py"))  # what a deployment runs
    parser.add_argument("--workers", type=int, default=shipped["workers"])
    parser.add_argument("--threads", type=int, default=shipped["threads"])
    parser.add_argument("--clients", type=int, default=1, help="client processes")
    parser.add_argument("--concurrency", type=int, default=32, help="connections per client")
    args = parser.parse_args()
    n, events = args.entries, args.events
    runs: dict[str, list[dict]] = {"ingest, no purge": [], "ingest, purge running": []}
    purged_during = 0

    with tempfile.TemporaryDirectory() as tmp, FakeCRM() as crm:
        database = str(Path(tmp) / "cti.sqlite3")
        filling = fill(database, 0, n)
        filled = size(database)
        print(
            f"{n:,} old entries (4 leg events each) made in {filling:.1f} s; "
            f"gunicorn --workers {args.workers} --threads {args.threads}; "
            f"{args.clients} client processes x {args.concurrency} connections; "
            f"{args.rounds} rounds of each kind, alternating; "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        sent = 0  # events acknowledged so far: each run's numbers are new
        for _ in range(args.rounds):
            old = journal_size(database)[0] - sent
            with serve(args, database, crm, "0") as server:
                runs["ingest, no purge"].append(
                    ingest(args, server.port, list(range(sent, sent + events)))
                )
            sent += events
            assert journal_size(database)[0] == old + sent, (
                "an event lost or doubled, or retention 0 deleted"
            )

            with serve(args, database, crm, "1d") as server:
                waited = time.monotonic()
                while journal_size(database)[0] >= old + sent:
                    if time.monotonic() - waited > PURGE_START_SECONDS:
                        raise SystemExit("gave up: no worker began a purge")
                    time.sleep(0.1)
                before = journal_size(database)[0]
                runs["ingest, purge running"].append(
                    ingest(args, server.port, list(range(sent, sent + events)))
                )
                sent += events
                purged_during += before + events - journal_size(database)[0]
        took = purge_now(database)
        assert journal_size(database) == (sent, 0), "events lost or doubled, or old ones kept"
        purged = size(database)

        refilling = fill(database, n, n)
        refilled = size(database)
        took_again = purge_now(database)
        assert journal_size(database) == (sent, 0), "the second purge left old entries"
        purged_again = size(database)

    print(
        f"{'':<32}{'events/s':>10}{'p50 ms':>10}{'p99 ms':>10}   (median of the rounds; each round)"
    )
    medians = {}
    for name, figures in runs.items():
        medians[name] = {key: statistics.median(run[key] for run in figures) for key in figures[0]}
        rounds = "; ".join(f"{run['rate']:,.0f}/s {run['p99']:.1f} ms" for run in figures)
        m = medians[name]
        print(f"{name:<32}{m['rate']:>10,.0f}{m['p50']:>10.1f}{m['p99']:>10.1f}   ({rounds})")
    kept, purging = medians.values()
    print(
        f"beside the purge: rate x{purging['rate'] / kept['rate']:.2f}, "
        f"p99 x{purging['p99'] / kept['p99']:.2f} (target: within 10%)"
    )
    print(f"every acknowledged event stored once: {sent:,} journal entries for {sent:,} events")
    print(f"old entries purged by the service while the load ran: {purged_during:,} of {n:,}")
    print(
        f"the rest purged and the free pages given back without pauses (service stopped): "
        f"{took:.1f} s; after the second fill: {took_again:.1f} s"
    )
    print(
        f"store size MB: filled {filled / 1e6:.1f}, after the purge {purged / 1e6:.1f}, "
        f"filled again {refilled / 1e6:.1f} (in {refilling:.1f} s), "
        f"after the second purge {purged_again / 1e6:.1f}"
    )
    # a few pages either way are the B-trees' shape; growth would keep part of the round
    grew = purged_again - purged > 0.05 * (refilled - purged)
    print(
        f"the file {'kept growing' if grew else 'stopped growing'} once retention applied"
        f" ({purged:,} bytes after the first purge, {purged_again:,} after the second)"
    )


if __name__ == "__main__":
    main()
