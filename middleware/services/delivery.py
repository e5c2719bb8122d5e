"""Journal delivery: due entries are claimed in batches and each sent to the CRM as one call log.

An entry is claimed atomically (so several deliverers never send one entry), the customer number
is looked up in the CRM *at delivery time* (so a CRM outage never delays or loses an ingest; the
contact fields stay empty until then), and the log is sent. 5xx, 429, timeouts and refused
connections are retried with doubling, jittered backoff (at least the upstream's ``Retry-After``)
up to ``CTI_JOURNAL_MAX_ATTEMPTS``; any other failure (a 4xx, or a ``{"status": false, "error"}``
answer) fails the entry at once. An unknown caller is logged with empty ``Name``, ``EntityId`` and
``EntityType``. Just before sending, the deliverer checks that it still holds the entry: one erased
meanwhile (a privacy request, ``services/privacy.py``), even while its lookup ran, is not sent.
The background thread that runs this is ``services/deliverer.py``.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid

from ..errors import Problem, UpstreamError
from ..journal.call_logs import with_contact
from ..numbers import NumberError, parse
from ..runtime import metrics
from ..runtime.forks import PerProcess
from ..runtime.secrets import scrub
from ..settings import Settings
from ..store import Journal, JournalEntry
from ..upstreams.retry import backoff

log = logging.getLogger(__name__)

RETRY_BASE_SECONDS = 5.0
RETRY_CAP_SECONDS = 1800.0
RETRY_AFTER_CAP_SECONDS = 86400.0
MAX_CLAIM_SECONDS = 55.0  # the contract: a dead process's claim is taken up within 60 s
CLAIM_BATCH = 20  # due entries a deliverer claims in one transaction
BATCH_WINDOW_SECONDS = 10.0  # how long after its claim a batch's entries may still be started
MAX_ERROR_LENGTH = 500


def _claim_name() -> str:
    """This process's name on its claims (a new one in a forked child)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Delivery:
    def __init__(
        self, settings: Settings, journal: Journal, crm, lookup, *, callbacks=None, clock=time.time
    ):
        self.settings = settings
        self.callbacks = callbacks  # services/callbacks.py: made logs settle before delivery
        self.journal = journal  # the store's journal (``store.journal``)
        self.crm = crm
        self.lookup = lookup
        self.clock = clock
        # One delivery takes at most a lookup and a log request; a claim outlives both, but is
        # short enough that a dead process's entries are taken up again well within a minute.
        budget = settings.lookup_timeout + settings.upstream_timeout
        self.lease = min(MAX_CLAIM_SECONDS, 1.5 * budget + 2)
        # A batch is claimed for longer: an entry of it is started only while a whole delivery's
        # lease is left (within the window after the claim); the rest is given back untried.
        self.batch_lease = min(MAX_CLAIM_SECONDS, self.lease + BATCH_WINDOW_SECONDS)
        self.batch_window = self.batch_lease - self.lease
        self._owner = PerProcess(_claim_name)

    @property
    def owner(self) -> str:
        """This process's claim name; a new one after a fork."""
        return self._owner.get()

    def deliver_due(
        self, *, now: float | None = None, limit: int = 100, stop=None
    ) -> dict[str, int]:
        """Claim due entries in batches and deliver them one at a time (until ``stop`` is set);
        outcomes counted (``dropped``, an entry erased before it was sent, only when there is one).

        ``now`` (epoch seconds) decides what is due; the real time unless given. Each entry's
        outcome is committed before the next entry is sent, so a process that dies can have sent
        at most the one in flight twice; the rest of its batch is taken up after the lease.
        """
        outcomes = {"delivered": 0, "retry": 0, "failed": 0}
        left = limit
        while left > 0 and not (stop is not None and stop.is_set()):
            at = self.clock() if now is None else now
            self._settle(at)
            batch = self.journal.claim(
                self.owner, lease=self.batch_lease, now=at, limit=min(CLAIM_BATCH, left)
            )
            if not batch:
                break
            left -= len(batch)
            claimed = time.monotonic()
            started = 0
            try:
                for entry in batch:
                    if stop is not None and stop.is_set():
                        break
                    if started and time.monotonic() - claimed > self.batch_window:
                        break  # too little of the lease left to start another delivery
                    started += 1
                    at = self.clock() if now is None else now
                    outcome = self._deliver(entry, at)
                    outcomes[outcome] = outcomes.get(outcome, 0) + 1
            finally:
                # Never the one in flight: it may have reached the CRM.
                self._release(batch[started:])
        return outcomes

    def _settle(self, at: float) -> None:
        """The callbacks see every log made by ``at`` before it is claimed (so a delivered log
        names its callback); one they miss now is settled by a later pass, never lost."""
        if self.callbacks is None:
            return
        try:
            self.callbacks.settle(at)
        except Exception as exc:
            log.warning("journal: callbacks not settled this pass: %s", exc)

    def _release(self, entries: list[JournalEntry]) -> None:
        if not entries:
            return
        try:
            self.journal.release(self.owner, [entry.id for entry in entries])
        except Exception as exc:  # they are taken up after the lease instead
            log.warning("journal: %s claimed entries not given back: %s", len(entries), exc)

    def _deliver(self, entry: JournalEntry, now: float) -> str:
        try:
            body = with_contact(entry.call_log, self._contact(entry.call_log["Number"]))
        except Problem as exc:
            return self._retry_or_fail(entry, now, f"contact lookup: {exc.detail}", exc, True)
        if not self.journal.held(entry.id, self.owner):
            log.info("journal: entry %s is no longer ours (erased, or its claim ran out)", entry.id)
            return "dropped"
        try:
            self.crm.log_call(body)
        except UpstreamError as exc:
            if exc.in_doubt:  # sent, answer lost: the CRM may have it; at-least-once resends it
                metrics.count_delivery_in_doubt()
            status = exc.upstream_status
            retryable = status is None or status == 429 or status >= 500
            return self._retry_or_fail(entry, now, exc.detail, exc, retryable)
        except Exception as exc:
            log.exception("journal: entry %s: unexpected failure while delivering", entry.id)
            return self._retry_or_fail(entry, now, f"{type(exc).__name__}", None, True)
        if not self.journal.delivered(entry.id, body):
            log.warning("journal: entry %s was delivered after its claim ran out", entry.id)
        if self.callbacks is not None:
            self.callbacks.delivered(entry.source, body)
        metrics.count_delivery("delivered")
        log.info("journal: entry %s delivered (attempt %s)", entry.id, entry.attempts)
        return "delivered"

    def _contact(self, number: str) -> dict | None:
        if not number.startswith("+"):
            return None
        try:
            parsed = parse(number, self.settings.default_region)
        except NumberError:
            return None
        return self.lookup.lookup_phone(parsed).contact

    def _retry_or_fail(self, entry, now, detail, exc, retryable: bool) -> str:
        error = scrub(str(detail))[:MAX_ERROR_LENGTH]
        if retryable and entry.attempts < self.settings.journal_max_attempts:
            delay = backoff(entry.attempts, base=RETRY_BASE_SECONDS, cap=RETRY_CAP_SECONDS)
            retry_after = getattr(exc, "retry_after", None)
            if retry_after:
                delay = max(delay, min(retry_after, RETRY_AFTER_CAP_SECONDS))
            self.journal.retry_later(entry.id, self.owner, at=now + delay, error=error)
            metrics.count_delivery("retry")
            log.warning(
                "journal: entry %s attempt %s failed (%s); next try in %.0fs",
                entry.id,
                entry.attempts,
                error,
                delay,
            )
            return "retry"
        self.journal.failed(entry.id, self.owner, error=error)
        metrics.count_delivery("failed")
        log.warning(
            "journal: entry %s failed after %s attempt(s): %s", entry.id, entry.attempts, error
        )
        return "failed"
