"""Every benchmark runs to its end with tiny counts and prints its figure lines, so none can rot.

Only that they run and print is checked here: their figures are read from full runs on a quiet
machine (a timed test would be flaky). Benchmarks that need Redis, PostgreSQL or Kamailio are
skipped where it is missing, as the suite's other tests are.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from devtools.processes import ROOT, clean_env

from .kamailio import missing as kamailio_missing
from .pg_server import PASSWORD as PG_PASSWORD
from .redis_server import redis_available

pytestmark = pytest.mark.slow

NUMBER = r"[\d,]+(\.\d+)?"
SIGNED = r"-?[\d,]+(\.\d+)?"


def run_benchmark(name: str, args: list[str], *lines: str) -> str:
    """``python -m benchmarks.NAME ARGS`` from the checkout's root: it exits 0 and each of
    ``lines`` (a pattern) matches the start of a line it printed. Its output."""
    result = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{name}", *args],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    absent = [line for line in lines if not re.search(line, result.stdout, re.MULTILINE)]
    assert not absent, f"lines not printed: {absent}\n{result.stdout}"
    return result.stdout


def test_lookup_prints_its_rounds_and_miss_figures():
    run_benchmark(
        "lookup",
        ["--seconds", "0.4", "--rounds", "1", "--clients", "1", "--misses", "5", "--warmup", "0.2"],
        r"^gunicorn 2 workers x 4 threads, 1 client processes, 1 rounds of bare, hit, hit, bare",
        rf"^bare Flask endpoint: +{NUMBER} req/s  \(rounds: ",
        rf"^cache-hit lookup: +{NUMBER} req/s  \(rounds: ",
        rf"^ratio hit/bare: +{NUMBER}  median of the rounds' ratios",
        rf"^for scale, this app's /healthz: {NUMBER} req/s",
        rf"^server CPU per request:  bare {NUMBER} us, hit {NUMBER} us",
        rf"^fake CRM direct: +{NUMBER} ms median over 5 misses",
        rf"^lookup miss: +{NUMBER} ms median",
        rf"^lookup hit: +{NUMBER} ms median",
        rf"^miss added over the CRM: +{SIGNED} ms median",
        rf"^miss path alone: +{SIGNED} ms median",
        rf"^miss median {NUMBER} ms against CRM direct \+ hit \+ 1 ms = {NUMBER} ms: (ok|OVER TARGET)$",
        r"^a CRM that closes every connection \(Connection: close\):",
        rf"^  fake CRM direct, each on a new connection: +{NUMBER} ms median "
        rf"\(of which a TCP connect alone: {NUMBER} ms\)",
        rf"^  miss added over the CRM and its connect: +{SIGNED} ms median",
        rf"^  miss path alone: +{SIGNED} ms median",
    )


def test_miss_floor_prints_each_server_beside_the_floor():
    run_benchmark(
        "miss_floor",
        ["--rounds", "1", "--misses", "3", "--crm-ms", "5"],
        rf"^round 1: CRM direct {NUMBER} ms; miss path alone {SIGNED}, {SIGNED}, {SIGNED}, {SIGNED}, {SIGNED}$",
        r"^gunicorn 2 workers x 4 threads, the fake CRM answering in 5 ms, 1 rounds of 3 misses",
        *(
            rf"^{re.escape(name)} +miss path alone +{SIGNED} ms, against CRM \+ hit \+ 1 ms [+-]"
            for name in (
                "this tree",
                "floor: Flask + http.client",
                "Flask + urllib3.PoolManager",
                "Flask + requests.Session.get",
                "Flask + the tree's upstream edge",
            )
        ),
    )


def test_upstream_clients_prints_each_client_against_http_client():
    run_benchmark(
        "upstream_clients",
        ["--requests", "12", "--crm-ms", "5"],
        r"^one process, the fake CRM answering in 5 ms over kept-alive connections, 2 requests",
        *(
            rf"^{re.escape(name)} +{SIGNED} ms over the CRM's delay \([+-]{NUMBER} ms over http.client\)$"
            for name in (
                "http.client",
                "urllib3 HTTPConnectionPool.urlopen",
                "requests.Session.get",
                "the middleware's SwitchTransact client",
            )
        ),
    )


@pytest.mark.skipif(not redis_available(), reason="redis-server is not installed")
def test_lookup_against_another_tree_prints_both_ratios():
    """The checkout itself stands in for the other tree: the rounds and the figures are the same."""
    run_benchmark(
        "lookup",
        ["--seconds", "0.4", "--rounds", "2", "--clients", "1", "--misses", "3", "--warmup", "0.1"]
        + ["--against", str(ROOT)],
        r"^gunicorn 2 workers x 4 threads, 1 client processes, 2 rounds of bare, hit, old hit, "
        r"old hit, hit, bare \(then bare, old hit, hit, hit, old hit, bare\)",
        rf"^against {re.escape(str(ROOT))} .*: this tree serves \d+ operations, ",
        rf"^old tree's ratio hit/bare: +{NUMBER}  median of the rounds' ratios \({NUMBER}, {NUMBER}\); "
        rf"this tree's {NUMBER}",
        rf"^old tree's server CPU per hit: {NUMBER} us; this tree's {NUMBER} us",
        r"^the old tree, in the same rounds:$",
        rf"^  lookup miss: +{NUMBER} ms median",
        rf"^  miss median {NUMBER} ms against CRM direct \+ hit \+ 1 ms = {NUMBER} ms: (ok|OVER TARGET)$",
        rf"^  the old tree: miss {NUMBER} ms, added over the CRM and its connect {SIGNED} ms, miss "
        rf"path alone {SIGNED} ms \(medians\)$",
    )


def test_lookup_redis_prints_each_cache():
    run_benchmark(
        "lookup_redis",
        ["--seconds", "0.3", "--rounds", "1", "--clients", "1", "--warmup", "0.2"],
        r"^gunicorn 2 workers x 4 threads per server, 1 client processes, 1 alternating rounds",
        *(
            rf"^cache-hit lookup, {name}: +{NUMBER} req/s  x{NUMBER} of embedded, +{NUMBER} us "
            "server CPU per request"
            for name in ("embedded", "redis", "redis, no first level")
        ),
    )


def test_smorest_hit_prints_each_declaration_and_the_ratios():
    run_benchmark(
        "smorest_hit",
        ["--requests", "50", "--rounds", "1", "--warmup", "20"]
        + ["--gunicorn", "0.4", "--gunicorn-rounds", "1", "--clients", "1"],
        r"^in-process WSGI, cache-hit lookup \?phone=0721234567, 1 rounds of bare, ours, "
        r"ours-no-memo, smorest-dump, smorest-response and back, 50 requests each",
        *(
            rf"^{label}: +{NUMBER} us/request wall, +{NUMBER} us CPU  \(rounds: wall "
            rf"{NUMBER}-{NUMBER}, CPU {NUMBER}-{NUMBER}\)$"
            for label in (
                "bare Flask endpoint",
                r"ours \(describe\)",
                "ours, no query memo",
                "smorest, dump per request",
                "smorest, prepared Response",
            )
        ),
        rf"^ratio smorest-dump/ours: +{NUMBER} wall, +{NUMBER} CPU  median of the rounds' ratios "
        rf"\(wall {NUMBER}-{NUMBER}, CPU {NUMBER}-{NUMBER}\)$",
        rf"^ratio smorest-response/ours: +{NUMBER} wall, +{NUMBER} CPU  median",
        rf"^ratio smorest-response/ours-no-memo: +{NUMBER} wall, +{NUMBER} CPU  median",
        *(
            rf"^above the floor \({unit}\): ours {SIGNED} us, ours-no-memo {SIGNED} us, "
            rf"smorest-dump {SIGNED} us, smorest-response {SIGNED} us$"
            for unit in ("wall", "CPU")
        ),
        *(
            rf"^where smorest's extra goes \({unit}\): the query memo \(ours-no-memo - ours\) "
            rf"{SIGNED} us, webargs over describe's load \(smorest-response - ours-no-memo\) "
            rf"{SIGNED} us, dump and jsonify \(smorest-dump - smorest-response\) {SIGNED} us$"
            for unit in ("wall", "CPU")
        ),
        r"^gunicorn 2 workers x 4 threads, 1 client processes, 1 rounds of bare, ours, "
        r"smorest-dump, smorest-response and back, 0.2 s each",
        *(
            rf"^  {label}: +{NUMBER} req/s, +{NUMBER} us server CPU per request, x{NUMBER} of bare "
            rf"\(rounds: {NUMBER}-{NUMBER}\)$"
            for label in (
                "bare Flask endpoint",
                r"ours \(describe\)",
                "smorest, dump per request",
                "smorest, prepared Response",
            )
        ),
        rf"^  server CPU ratio smorest-dump/ours {NUMBER}, smorest-response/ours {NUMBER}$",
    )


INGEST = [
    "--events",
    "50",
    "--workers",
    "2",
    "--threads",
    "8",
    "--concurrency",
    "4",
    "--settle",
    "0",
]
INGEST_LINES = (
    r"^client connections per worker: ",
    r"^events acknowledged: \d+ \(resent after a failure: \d+\)",
    r"^journal entries stored: \d+ \(calls: \d+\)",
    rf"^elapsed: {NUMBER} s",
    rf"^durable ingest: {NUMBER} events/s",
    rf"^latency ms: p50 {NUMBER}  p95 {NUMBER}  p99 {NUMBER}  mean {NUMBER}",
    r"^CPU per event during the ingest: server [\d,]+ us, client [\d,]+ us, fake CRM [\d,]+ us",
    r"^delivered while the events came in: \d+",
    r"^delivered \d+, failed \d+, pending \d+",
    r"^server CPU per event, ingest and delivery: [\d,]+ us",
)


def test_webhook_ingest_prints_its_figures():
    run_benchmark(
        "webhook_ingest",
        INGEST,
        r"^one-leg calls \(call:end\); store: sqlite; crm: switchtransact \(keep-alive\)",
        *INGEST_LINES,
        r"; call logs the CRM received: 50$",
    )


def test_webhook_ingest_legs_with_a_closing_crm():
    run_benchmark(
        "webhook_ingest",
        [*INGEST, "--legs", "5", "--crm-closes", "--settle", "0.2"],
        r"^one-leg calls \(call:end\); store: sqlite; crm: switchtransact \(closes every connection\)",
        r"^queue calls of 5 legs; store: sqlite; crm: switchtransact \(closes every connection\)",
        *INGEST_LINES,
        r"^ +events/s +calls logged/s +calls +logs$",
        rf"^one-leg calls +{NUMBER} +{NUMBER} +50 +50$",
        rf"^5-leg queue calls +{NUMBER} +{NUMBER} +4 +4$",
    )


def test_webhook_ingest_on_postgresql_with_the_sandbox_crm(postgres_url):
    output = run_benchmark(
        "webhook_ingest",
        [*INGEST, "--crm", "sandbox", "--database", postgres_url],
        r"^one-leg calls \(call:end\); store: postgresql; crm: sandbox",
        *INGEST_LINES,
    )
    assert PG_PASSWORD not in output


def test_streams_vs_lookups_prints_each_level_and_the_targets():
    run_benchmark(
        "streams_vs_lookups",
        ["--streams", "0,20", "--lookups", "20", "--calls", "2", "--rings", "5"],
        r"^open files limit \d+; levels \[0, 20\]; board streams 0; 1 per agent; opened on the "
        r"stream server; client timeout 3 s",
        rf"^ +opened on the stream server in {NUMBER} s: 20 of 20 \(20 agent, 0 board\) served "
        r"by the stream server, refused 0; stream server \d+ open files \(limit \d+\)",
        r"^streams opened/refused \| lookups answered \| lookup p50/p99 ms",
        r"^ +0 +\d+/\d+ +\d+/20 ",
        r"^ +20 +\d+/\d+ +\d+/20 ",
        r"^(PASS|FAIL)  every lookup answered at 20 streams",
        r"^(PASS|FAIL)  lookup p99 at 20 <= 2x its 0-stream value",
        r"^(PASS|FAIL)  ring-to-pop p99 <= 250 ms",
        r"^(PASS|FAIL)  no stream refused",
        r"^(PASS|FAIL)  the stream server's open-files limit holds 2 per stream",
    )


def test_streams_vs_lookups_with_board_streams_opened_on_the_main_port():
    """Agents with page and extension open (token in the query, token in a header) and board
    streams, each opened on gunicorn's port and redirected: every one must reach the stream server
    with its credential, or the benchmark's own lines say it did not."""
    output = run_benchmark(
        "streams_vs_lookups",
        ["--streams", "0,8", "--board", "2", "--per-agent", "2", "--main-port"]
        + ["--lookups", "20", "--calls", "2", "--rings", "3"],
        r"^open files limit \d+; levels \[0, 8\]; board streams 2; 2 per agent; opened on the "
        r"main port;",
        r"^ +0 +2/0 +\d+/20 ",
        r"^ +8 +8/0 +\d+/20 ",
        rf"^ +opened on the main port in {NUMBER} s: 2 of 2 \(1 agent, 1 board\) served by the "
        r"stream server, 2 after a 307, refused 0; stream server \d+ open files",
        rf"^ +opened on the main port in {NUMBER} s: 8 of 8 \(6 agent, 2 board\) served by the "
        r"stream server, 8 after a 307, refused 0;",
        rf"^ +board: 12 changes sent \(answer p50/p99 {NUMBER}/{NUMBER} ms\), \d+/24 receipts, "
        rf"change-to-board p50/p99 {NUMBER}/{NUMBER} ms",
        r"^(PASS|FAIL)  board change to every board stream p99 <= 250 ms",
        r"^PASS  no stream refused",
        r"^PASS  every stream opened on the main port ended on the stream server, 307 followed "
        r"\(8/8 at 8\)",
    )
    assert "bench-key" not in output


def test_hot_profile_against_a_revision_prints_each_path_of_both_trees():
    """HEAD, written out by ``git archive``, stands in for the base tree."""
    tree = rf"this tree +{NUMBER} \({NUMBER}\) \| HEAD \([0-9a-f]+\) +{NUMBER} \({NUMBER}\)  "
    tree += rf"x{NUMBER}$"
    run_benchmark(
        "hot_profile",
        ["--against", "HEAD", "--rounds", "1", "--requests", "20", "--profile", "3"],
        r"^CPU per request, us \(median of 1 rounds; each round's in brackets\)$",
        *(rf"^  {mode} +{tree}" for mode in ("bare", "hit", "miss", "ingest", "deliver")),
        r"^this tree, ingest, most own time: own / cumulative us per request, calls per request",
        r"^HEAD \([0-9a-f]+\), miss, our code, cumulative: own / cumulative us per request",
    )


@pytest.mark.skipif(bool(kamailio_missing()), reason=kamailio_missing() or "")
def test_pbx_ring_prints_what_the_lookup_adds():
    run_benchmark(
        "pbx_ring",
        ["--rounds", "3", "--warmup", "1", "--crm-ms", "5"],
        r"^pbx ring, 3 rounds, fake CRM answering in 5 ms",
        rf"^  no lookup +{NUMBER} ms",
        rf"^  cached caller +{NUMBER} ms",
        rf"^  uncached caller +{NUMBER} ms   \(the CRM asked directly: {NUMBER} ms\)",
        rf"^a hit adds +{SIGNED} ms \(target <= 1.5 ms\) (ok|OVER TARGET)",
        rf"^a miss adds +{SIGNED} ms over the CRM \(target <= 3 ms\) (ok|OVER TARGET)",
    )


def test_reports_prints_each_report_on_sqlite_and_postgresql(postgres_url):
    lines = [
        rf"^{store}: 2,000 entries stored in {NUMBER} s \({NUMBER}/s\)"
        for store in ("sqlite", "postgresql")
    ] + [
        rf"^{store} by={by}: {rows} rows, first {NUMBER} ms, median {NUMBER} ms, slowest "
        rf"{NUMBER} ms \(2 rounds\)"
        for store in ("sqlite", "postgresql")
        for by, rows in (("day", 366), ("hour", 24), ("agent", 51))
    ]
    output = run_benchmark(
        "reports",
        ["--entries", "2000", "--rounds", "2", "--postgresql", postgres_url],
        r"^reports over 2,000 entries of 2024 \(366 days\)",
        *lines,
    )
    assert PG_PASSWORD not in output


def test_webhook_ingest_against_a_revision_prints_both_trees_and_the_ratio():
    """HEAD, written out by ``git archive``, stands in for the base tree."""
    run_benchmark(
        "webhook_ingest",
        [*INGEST, "--events", "30", "--against", "HEAD", "--rounds", "2", "--crm-ms", "1"],
        r"^one-leg calls \(call:end\); .*; this tree; fake CRM answering in 1 ms$",
        r"^one-leg calls \(call:end\); .*; base HEAD \([0-9a-f]+\); fake CRM answering in 1 ms$",
        r"^one-leg calls, 2 rounds \(this tree, base; then base, this tree\), gunicorn --workers 2 "
        r"--threads 8, \d+ cores:$",
        rf"^  this tree: {NUMBER} events/s, server CPU per acknowledged event {NUMBER} us \(with "
        rf"delivery {NUMBER} us\), medians; runs {NUMBER}, {NUMBER} events/s, .*; stored 30, 30 of "
        r"30 each$",
        rf"^  base HEAD \([0-9a-f]+\): {NUMBER} events/s, .*; stored 30, 30 of 30 each$",
        rf"^  this tree / base: events/s x{NUMBER}, CPU per acknowledged event x{NUMBER} \(with "
        rf"delivery x{NUMBER}\)$",
    )


@pytest.mark.skipif(bool(kamailio_missing()), reason=kamailio_missing() or "")
def test_pbx_ring_against_a_revision_prints_both_trees():
    run_benchmark(
        "pbx_ring",
        ["--rounds", "2", "--warmup", "1", "--crm-ms", "5", "--against", "HEAD"],
        r"^base HEAD \([0-9a-f]+\), in the same rounds:$",
        rf"^base HEAD \([0-9a-f]+\): a hit adds +{SIGNED} ms \(target <= 1.5 ms\) (ok|OVER TARGET)",
        rf"^base HEAD \([0-9a-f]+\): a miss adds +{SIGNED} ms over the CRM \(target <= 3 ms\) ",
    )


def test_retention_prints_ingest_beside_the_purge_and_the_file_sizes():
    run_benchmark(
        "retention",
        ["--entries", "2000", "--events", "100", "--workers", "2", "--threads", "8"],
        r"^2,000 old entries \(4 leg events each\) made in",
        rf"^ingest, no purge +{NUMBER} +{NUMBER} +{NUMBER}   \(.+\)$",
        rf"^ingest, purge running +{NUMBER} +{NUMBER} +{NUMBER}   \(.+\)$",
        r"^old entries purged by the service while the load ran: [\d,]+ of 2,000$",
        r"^beside the purge: rate x[\d.]+, p99 x[\d.]+ \(target: within 10%\)$",
        r"^every acknowledged event stored once: 400 journal entries for 400 events$",
        rf"^store size MB: filled {NUMBER}, after the purge {NUMBER}, filled again {NUMBER}",
        r"^the file stopped growing once retention applied",
    )
