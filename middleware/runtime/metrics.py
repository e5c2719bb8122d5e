"""The service's measurements, in one place: code elsewhere calls these functions only.

The Prometheus implementation lives behind them, so nothing else imports prometheus_client.
Importing this module does nothing else: the factory calls ``setup`` (and the first measurement
would). It runs in prometheus_client's multiprocess mode, so ``/metrics`` sums every gunicorn
worker whatever started the server (``gunicorn app:app`` alone, with or without ``--preload``,
``make run``) and no gunicorn hook is needed:

- Unless the operator set ``PROMETHEUS_MULTIPROC_DIR``, ``setup`` sets it, before importing
  prometheus_client, to a directory private to one server start (``server_directory``): it is
  named after the server's root process (a gunicorn worker's master, else the process itself) and
  that process's start time, so a restarted server (even one that gets the same pid, as PID 1 in
  a container) never reads an old run's files. Directories left by servers that are gone are removed when a new one is made.
- A dead worker's files are kept on purpose: its counters and histograms stay in the sums, so totals
  never go down when gunicorn replaces a worker. There is no per-process gauge to go stale: the one
  gauge (journal entries by status) is read from the store at scrape time.
- A forked child counts on its own (``forks.PerProcess``; prometheus_client's files are per pid).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import struct
import sys
import tempfile
import time
from pathlib import Path

from .forks import PerProcess

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_DIR_PREFIX = "cti-metrics-"


def _cmdline(pid: int) -> bytes | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None


def _start_ticks(pid: int) -> str:
    """The process's start time (clock ticks since boot), or "" where /proc is missing."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def _server_root() -> int:
    """The process whose lifetime is one server start: a forked worker's parent, else this one.

    A gunicorn worker (and any forked child) runs its parent's command line; a process started
    on its own (gunicorn's master with ``--preload``, ``flask run``, a test runner) does not.
    """
    pid, parent = os.getpid(), os.getppid()
    own = _cmdline(pid)
    if own is None:  # no /proc: trust that gunicorn forked us when it is loaded
        return parent if "gunicorn.arbiter" in sys.modules else pid
    return parent if parent > 1 and _cmdline(parent) == own else pid


def _alive(name: str) -> bool:
    pid, _, ticks = name.partition("-")
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return _start_ticks(int(pid)) == ticks


def server_directory() -> str:
    """A metrics directory private to this server start (made, and dead servers' ones removed);
    ``OSError`` when none can be made."""
    base = Path(tempfile.gettempdir()) / f"{_DIR_PREFIX}{os.getuid()}"
    base.mkdir(mode=0o700, exist_ok=True)
    if base.stat().st_uid != os.getuid():  # someone else's: keep to a private one
        return tempfile.mkdtemp(prefix=_DIR_PREFIX)
    root = _server_root()
    directory = base / f"{root}-{_start_ticks(root)}"
    if not directory.is_dir():
        for old in base.iterdir():
            if old.is_dir() and not _alive(old.name):
                shutil.rmtree(old, ignore_errors=True)
        directory.mkdir(mode=0o700, exist_ok=True)
    return str(directory)


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # prometheus_client's text format 0.0.4
LOOKUP_RESULTS = ("hit", "miss", "stale", "error")
JOURNAL_STATUSES = ("pending", "delivered", "failed")
SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10)
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# attribute: (kind, metric name, help, label names[, a histogram's buckets if not SECONDS_BUCKETS])
_METRICS = {
    "lookups": (
        "counter",
        "cti_lookups_total",
        "Caller lookups by result: hit, miss, stale (served from cache after a CRM failure), "
        "error.",
        ("result",),
    ),
    "upstream": (
        "histogram",
        "cti_upstream_request_seconds",
        "Upstream HTTP requests by upstream and outcome (HTTP status or error code).",
        ("upstream", "outcome"),
    ),
    "calls": (
        "counter",
        "cti_calls_total",
        "Click-to-calls that reached the dialer step, by provider and outcome.",
        ("provider", "outcome"),
    ),
    "deliveries": (
        "counter",
        "cti_journal_delivery_attempts_total",
        "Call-log delivery attempts to the CRM by outcome: delivered, retry or failed.",
        ("outcome",),
    ),
    "in_doubt": (
        "counter",
        "cti_journal_deliveries_in_doubt_total",
        "Call-log deliveries sent whose answer was lost (timeout, broken connection): the CRM may "
        "have the log, which is sent again (at least once).",
        (),
    ),
    "requests": (
        "histogram",
        "cti_http_request_seconds",
        "HTTP requests served, by method, route template and status.",
        ("method", "route", "status"),
    ),
    "queue": (
        "histogram",
        "cti_http_queue_seconds",
        "Time a request waited between the proxy (its X-Request-Start header) and a thread taking "
        "it; only requests that came through a proxy setting the header are counted.",
        (),
    ),
    "screen_pop": (
        "histogram",
        "cti_screen_pop_seconds",
        "Ring-to-pop: from the ring webhook's arrival to its screen-pop event written to a stream.",
        ("server",),
        (0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.5, 1, 2.5, 5, 10),
    ),
}


class _Meters:
    """This process's metric objects (made by ``setup``, again in a forked child)."""

    def __init__(self):
        if not os.environ.get(MULTIPROC_ENV):
            with contextlib.suppress(OSError):
                os.environ[MULTIPROC_ENV] = server_directory()
        # The value class is chosen when prometheus_client is first imported: after the directory
        # is set. Where it was imported before us in-process mode, we count in our registry only.
        from prometheus_client import CollectorRegistry, Counter, Histogram, values

        self.multiprocess = values.ValueClass is not values.MutexValue
        self.registry = CollectorRegistry()
        self._children: dict[tuple, object] = {}
        self._requests: dict[tuple[str, str, int], object] = {}
        for name, (kind, metric, text, labels, *buckets) in _METRICS.items():
            if kind == "counter":
                made = Counter(metric, text, labels, registry=self.registry)
            else:
                made = Histogram(
                    metric,
                    text,
                    labels,
                    buckets=buckets[0] if buckets else SECONDS_BUCKETS,
                    registry=self.registry,
                )
            setattr(self, name, made)
        for result in LOOKUP_RESULTS:  # every result shows, at 0, from the first scrape
            self.child("lookups", result)

    def child(self, name: str, *labels: str):
        """``metric.labels(*labels)``, looked up once: every label value we pass is from a bounded
        set (a route template, a status, an outcome), so the children are few and live for the
        process."""
        key = (name, *labels)
        found = self._children.get(key)
        if found is None:
            metric = getattr(self, name)
            found = self._children[key] = metric.labels(*labels) if labels else metric
        return found

    def request(self, method: str, route: str, status: int):
        """The request histogram's child for a request, looked up once per method (``other``
        outside the standard ones), route and status (all three from bounded sets then)."""
        if method not in HTTP_METHODS:
            method = "other"
        key = (method, route, status)
        found = self._requests.get(key)
        if found is None:
            found = self._requests[key] = self.requests.labels(method, route, str(status))
        return found


_meters = PerProcess(_Meters)


def setup() -> None:
    """Make this process's metrics (the factory calls it; idempotent)."""
    _meters.get()


def shared_directory() -> str | None:
    """The directory one server start's processes share (the metrics directory), or None when
    none could be made."""
    _meters.get()
    return os.environ.get(MULTIPROC_ENV) or None


def observe_upstream(upstream: str, outcome: str, seconds: float) -> None:
    """One upstream request: ``outcome`` is the HTTP status or our error code. The labels are the
    contract's (``{upstream,outcome}``); which operation it was is in the request's log line."""
    _meters.get().child("upstream", upstream, outcome).observe(seconds)


def count_lookup(result: str) -> None:
    """One caller lookup: ``result`` is hit, miss, stale or error."""
    _meters.get().child("lookups", result).inc()


def count_call(provider: str, outcome: str) -> None:
    """One click-to-call that reached the dialer step: ``initiated`` or an error code."""
    _meters.get().child("calls", provider, outcome).inc()


def count_delivery(outcome: str) -> None:
    """One journal delivery attempt: ``delivered``, ``retry`` or ``failed``."""
    _meters.get().child("deliveries", outcome).inc()


def count_delivery_in_doubt() -> None:
    _meters.get().in_doubt.inc()


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """One HTTP request served; ``route`` is the URL rule (bounded), never the raw path, and a
    method outside the standard ones counts as ``other`` (a client cannot add series)."""
    _meters.get().request(method, route, status).observe(seconds)


def observe_queue(seconds: float) -> None:
    """How long one request waited for a thread (known only behind a proxy: ``X-Request-Start``)."""
    _meters.get().queue.observe(seconds)


def observe_screen_pop(server: str, seconds: float) -> None:
    """One screen pop written to a stream, ``seconds`` after its ring webhook arrived; ``server``
    is ``stream-server`` or ``gunicorn`` (a stream served by a worker)."""
    _meters.get().child("screen_pop", server).observe(seconds)


class _JournalGauge:
    """``cti_journal_entries{status}``: read from the shared store when scraped, so every worker
    reports the same truth and nothing goes stale when a worker dies."""

    def __init__(self, counts: dict[str, int]):
        self.counts = counts

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        gauge = GaugeMetricFamily(
            "cti_journal_entries", "Call-journal entries by status.", labels=["status"]
        )
        for status in dict.fromkeys((*JOURNAL_STATUSES, *self.counts)):
            gauge.add_metric([status], float(self.counts.get(status, 0)))
        yield gauge


def render(journal_counts: dict[str, int] | None) -> bytes:
    """The Prometheus text for a scrape: every worker's counters summed, plus the journal gauge
    (left out when ``journal_counts`` is None: the store could not say)."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    meters = _meters.get()
    if meters.multiprocess:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        text = _read_all(registry)
    else:
        text = generate_latest(meters.registry)
    if journal_counts is not None:
        gauge = CollectorRegistry()
        gauge.register(_JournalGauge(journal_counts))
        text += generate_latest(gauge)
    return text


TORN_READS = 3  # a scrape reads the worker files at most this often


def _read_all(registry) -> bytes:
    """Every worker's values. A worker creating its file at that moment leaves it empty for an
    instant, and prometheus_client's reader then raises ``struct.error`` (seen as a 500 on
    /metrics while a second worker served its first request): a read, so read again."""
    from prometheus_client import generate_latest

    for _ in range(TORN_READS - 1):
        try:
            return generate_latest(registry)
        except struct.error:
            time.sleep(0.01)
    return generate_latest(registry)
