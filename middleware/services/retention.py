"""Retention: what the store no longer needs is deleted in the background, a little at a time.

``parts`` lists everything that is deleted and after how long: finished journal entries and their
legs, callbacks done, and the sandbox CRM's call logs (``CTI_JOURNAL_RETENTION``; 0 keeps them),
expired claims (dedupe and ``Idempotency-Key`` records), rate windows past their window, and live
events older than an hour. A pass (``Purge.run``) takes the store's ``retention`` lease, so one
process of every worker and host purges at a time; it deletes each part ``BATCH`` rows per
transaction with a pause between (at least ``PAUSE_SECONDS``, and long enough that the purge holds
the database ``SHARE`` of the time at most), so webhooks never wait long for the database nor
notice the purge beside them, and gives a SQLite file's free pages back to the file system
(incremental vacuum) a step at a time.

``Purger`` runs passes on one thread per worker process (``runner.ThreadRunner``), started with
the journal deliverer by the first request a process serves (``factory._before_request``), every
``PASS_SECONDS``: an entry is deleted within about that long of falling due. A process that dies holding the lease holds it
up for at most ``LEASE_SECONDS``.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import UpstreamUnavailable
from ..runtime.forks import PerProcess
from ..settings import Settings
from ..store import Store
from ..store.events import EVENT_KEEP_SECONDS
from ..store.retention import Retention
from .runner import Running, ThreadRunner

log = logging.getLogger(__name__)

LEASE = "retention"
LEASE_SECONDS = 60.0  # renewed while a pass runs
PASS_SECONDS = 20.0  # how often each process tries for a pass
FIRST_PASS_SECONDS = 5.0  # the first try comes within this of the process's first request
BATCH = 100  # rows one transaction deletes: a webhook waits behind at most one such transaction
PAUSE_SECONDS = 0.05  # at least, between two transactions: requests' writers go in between
SHARE = 0.1  # of the time, at most, the purge holds the database (and a core) while it runs
VACUUM_PAGES = 250  # pages one transaction gives back (1 MB of the default 4 KiB pages)
CLAIM_GRACE_SECONDS = 60.0  # an expired claim is deleted this long after its expiry


@dataclass(frozen=True)
class Part:
    """One kind of row retention deletes: ``purge(before, limit)`` deletes at most ``limit`` rows
    that fell due before ``before`` and returns how many; ``keep`` is how long they are kept
    (seconds; None: for ever)."""

    name: str
    purge: Callable[[float, int], int]
    keep: float | None


def parts(settings: Settings, store: Store) -> list[Part]:
    """Everything a pass deletes, in order: a store part that grows adds its line here."""
    kept = settings.journal_retention or None  # 0: the journal is kept for ever
    retention = store.retention
    return [
        Part("journal", retention.purge_journal, kept),
        Part("callbacks", store.callbacks.purge_done, kept),
        Part("sandbox_call_logs", retention.purge_sandbox_call_logs, kept),
        Part("claims", retention.purge_claims, CLAIM_GRACE_SECONDS),
        Part("rate_windows", retention.purge_rate_windows, 0),
        Part("events", retention.purge_events, EVENT_KEEP_SECONDS),
    ]


@dataclass
class Report:
    """What one pass did."""

    deleted: dict[str, int] = field(default_factory=dict)  # rows per part
    batches: dict[str, int] = field(default_factory=dict)  # transactions that deleted, per part
    pages: int = 0  # SQLite pages given back to the file system
    lease_lost: bool = False  # another process took the lease over (this one stalled)


def _owner_name() -> str:
    """This process's name on the lease (a new one in a forked child)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Purge:
    """One pass over ``parts``, by the one process that holds the lease."""

    def __init__(
        self,
        retention: Retention,
        parts: list[Part],
        *,
        batch: int = BATCH,
        pause: float = PAUSE_SECONDS,
        share: float = SHARE,
        lease_seconds: float = LEASE_SECONDS,
        clock: Callable[[], float] = time.time,
    ):
        self.retention = retention
        self.parts = parts
        self.batch = batch
        self.pause = pause
        self.share = share
        self.lease_seconds = lease_seconds
        self.clock = clock
        self._owner = PerProcess(_owner_name)

    @property
    def owner(self) -> str:
        return self._owner.get()

    def run(self, stop: threading.Event | None = None) -> Report | None:
        """A pass, or None when another process holds the lease (its pass is running)."""
        stop = stop or threading.Event()
        if not self._renew():
            return None
        report = Report()
        started = time.monotonic()
        try:
            for part in self.parts:
                if part.keep is not None and not report.lease_lost:
                    self._purge(part, report, stop)
            if not report.lease_lost:
                self._reclaim(report, stop)
        finally:
            self.retention.release(LEASE, self.owner)
        if any(report.deleted.values()) or report.pages or report.lease_lost:
            deleted = ", ".join(f"{name} {count}" for name, count in report.deleted.items())
            log.info(
                "retention: deleted %s in %.1f s; %s free pages given back%s",
                deleted,
                time.monotonic() - started,
                report.pages,
                "; stopped: the lease was taken over" if report.lease_lost else "",
            )
        return report

    def _renew(self) -> bool:
        self._renewed = time.monotonic()
        return self.retention.lease(LEASE, self.owner, ttl=self.lease_seconds, now=self.clock())

    def _purge(self, part: Part, report: Report, stop: threading.Event) -> None:
        report.deleted[part.name] = report.batches[part.name] = 0
        while not stop.is_set():
            started = time.monotonic()
            deleted = part.purge(self.clock() - part.keep, self.batch)
            report.deleted[part.name] += deleted
            report.batches[part.name] += deleted > 0
            if deleted < self.batch:
                return
            if not self._still_held():
                report.lease_lost = True
                return
            self._rest(stop, started)

    def _reclaim(self, report: Report, stop: threading.Event) -> None:
        while not stop.is_set():
            started = time.monotonic()
            given = self.retention.reclaim_space(VACUUM_PAGES)
            report.pages += given
            if given < VACUUM_PAGES:
                return
            if not self._still_held():
                report.lease_lost = True
                return
            self._rest(stop, started)

    def _rest(self, stop: threading.Event, started: float) -> None:
        """After a transaction begun at ``started``: long enough that the purge has the database
        ``share`` of the time at most."""
        took = time.monotonic() - started
        stop.wait(max(self.pause, took * (1 - self.share) / self.share))

    def _still_held(self) -> bool:
        """Renewed once a quarter of the lease has gone by (not a write per batch)."""
        if time.monotonic() - self._renewed < self.lease_seconds / 4:
            return True
        return self._renew()


class Purger(ThreadRunner):
    """Runs ``purge`` every ``every`` seconds on a thread of this process (one per process)."""

    thread_name = "retention"

    def __init__(self, purge: Purge, *, every: float = PASS_SECONDS):
        super().__init__()
        self.purge = purge
        self.every = every

    def run(self, running: Running) -> None:
        # Processes started together spread their tries over the interval.
        wait = random.uniform(0, min(FIRST_PASS_SECONDS, self.every))
        while not running.stop.wait(wait):
            try:
                self.purge.run(running.stop)
            except UpstreamUnavailable:  # logged by the store; the next pass tries again
                pass
            except Exception:
                log.exception("retention: pass failed; trying again later")
            wait = random.uniform(0.75, 1.0) * self.every
