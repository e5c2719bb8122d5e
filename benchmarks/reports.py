"""Call reports over a year of a busy call center: ``GET /api/v1/reports/calls`` by day, hour and
agent for a 366-day range, over a store of ``--entries`` journal entries (default 1,000,000).

    .venv/bin/python -m benchmarks.reports [--entries 1000000] [--rounds 5]
                                           [--sqlite PATH [--filled]] [--postgresql URL|auto]

Fills a fresh SQLite store (and, with ``--postgresql``, an empty PostgreSQL database; ``auto``
starts a private server from the distribution's packages, as the tests do) through the store's own
interface: ``journal_add_many``, the call logs made by ``call_logs.call_log`` as the journal makes
them, spread evenly over the 366 days of 2024 and the hours of the day, over 50 agents (and one
call in ten without an agent), of every call type. Then asks the app (Flask's test client: the
schema, the service, the database's GROUP BY and the JSON answer) for each report ``--rounds``
times and prints the first (cold) time, the median and the slowest, and checks that every report
counted every entry. ``--filled``: the SQLite file holds these entries already (a run before
filled it): only the reports are timed. The URL of a PostgreSQL database is never printed.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from middleware import create_app  # noqa: E402
from middleware.directory import Agent  # noqa: E402
from middleware.journal.call_logs import (  # noqa: E402
    INBOUND,
    MISSED,
    NOT_ANSWERED,
    OUTBOUND,
    CallRecord,
    call_log,
    ended,
)
from middleware.store.sql import SqlStore  # noqa: E402

KEY = "bench-key"
FIRST_DAY = datetime(2024, 1, 1)
DAYS = 366
AGENTS = [Agent(str(6000 + n), str(100 + n), None, f"Agent{n}", "Bench", None) for n in range(50)]
KINDS = [(INBOUND, INBOUND), (MISSED, INBOUND), (OUTBOUND, OUTBOUND), (NOT_ANSWERED, OUTBOUND)]
BATCH = 20_000
ZONE = ZoneInfo("Africa/Johannesburg")


def calls(count: int, seed: int = 7):
    """``count`` calls as the bulk insert takes them: (source, key, call log, agent)."""
    rng = random.Random(seed)
    for n in range(count):
        call_type, direction = KINDS[n % 4]
        agent = None if n % 10 == 9 else AGENTS[rng.randrange(len(AGENTS))]
        start = FIRST_DAY + timedelta(days=n % DAYS, seconds=rng.randrange(86400))
        answered = call_type in (INBOUND, OUTBOUND)
        talk = rng.randrange(20, 900) if answered else 0
        total = talk + rng.randrange(5, 60)
        record = CallRecord(
            call_type=call_type,
            direction=direction,
            number=f"+2782{n:07d}",
            agent=agent,
            talk_seconds=talk,
            total_seconds=total,
            start=start.replace(tzinfo=ZONE),
            end=ended(start.replace(tzinfo=ZONE), total),
        )
        yield "backfill", f"bench-{n}", call_log(record, ZONE), agent and agent.extension


def fill(database: str, entries: int) -> float:
    """Store ``entries`` calls through the store's bulk insert; the seconds it took."""
    store = SqlStore(database)
    started = time.perf_counter()
    try:
        store.journal.add_many(calls(entries))
    finally:
        store.close()
    return time.perf_counter() - started


def measure(database: str, entries: int, rounds: int, label: str, *, filled=False) -> None:
    if not filled:
        seconds = fill(database, entries)
        rate = entries / seconds
        print(f"{label}: {entries:,} entries stored in {seconds:.1f} s ({rate:,.0f}/s)")
    app = create_app(
        {"CTI_API_KEYS": KEY, "CTI_DATABASE": database, "CTI_TIMEZONE": "Africa/Johannesburg"}
    )
    app.config["TESTING"] = True  # no background deliverer: the entries stay as they are
    client = app.test_client()
    query = {"from": "2024-01-01", "to": "2024-12-31"}
    for by in ("day", "hour", "agent"):
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            answer = client.get(
                "/api/v1/reports/calls",
                query_string={**query, "by": by},
                headers={"X-API-Key": KEY},
            )
            times.append(time.perf_counter() - started)
            if answer.status_code != 200:
                raise SystemExit(f"by={by}: {answer.status_code} {answer.get_data(as_text=True)}")
        report = answer.get_json()
        if report["totals"]["calls"] != entries:  # the store was not empty, or lost some
            raise SystemExit(f"by={by} counted {report['totals']['calls']} calls of {entries}")
        print(
            f"{label} by={by}: {len(report['rows'])} rows, first {times[0] * 1000:.0f} ms, "
            f"median {statistics.median(times) * 1000:.0f} ms, slowest {max(times) * 1000:.0f} ms "
            f"({rounds} rounds)"
        )
    app.extensions["cti"].store.close()


@contextlib.contextmanager
def postgresql(url: str):
    """The database to fill: ``url``, or with ``auto`` a private server's fresh database."""
    if url != "auto":
        yield url
        return
    from tests.pg_server import PostgresServer, _bin_dir

    bin_dir = _bin_dir()
    if bin_dir is None:
        raise SystemExit("PostgreSQL is not installed (apt-get install postgresql)")
    server = PostgresServer(bin_dir)
    server.start()
    try:
        yield server.create_database()
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sqlite", help="the SQLite file to fill (default: a temporary one)")
    parser.add_argument("--filled", action="store_true", help="--sqlite is filled already")
    parser.add_argument("--postgresql", help="an empty database's URL, or auto")
    args = parser.parse_args(argv)
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"reports over {args.entries:,} entries of 2024 (366 days), {started}")
    with tempfile.TemporaryDirectory(prefix="cti-reports-") as scratch:
        path = args.sqlite or str(Path(scratch) / "reports.sqlite3")
        measure(path, args.entries, args.rounds, "sqlite", filled=bool(args.filled and args.sqlite))
        if args.postgresql:
            with postgresql(args.postgresql) as url:
                measure(url, args.entries, args.rounds, "postgresql")


if __name__ == "__main__":
    main()
