"""The call journal: what the PBX and the IVR report becomes exactly one CRM call log.

Ingest stores what arrived, keyed by the source's call id, in one committed and synced
transaction; only then does the webhook answer. An IVR push or a zain call detail is a whole call:
its ``/calls/log`` body (``call_logs.py``) is stored as a pending entry, due at once. A cc_agent
leg event (ring, answer, end) is stored under its call's entry, which the same transaction remakes
from every leg event of the call: it falls due ``CTI_JOURNAL_SETTLE_SECONDS`` after the last event
once every leg seen has ended, or 4 hours after the first event when a leg never reports its end.

Delivery happens later, in the background (``services/deliverer.py``): an entry is claimed
atomically, the customer number is looked up in the CRM *at delivery time* (so a CRM outage never
delays or loses an ingest; the contact fields stay empty until then), and the log is sent.
5xx, 429, timeouts and refused connections are retried with doubling, jittered backoff (at least
the upstream's ``Retry-After``) up to ``CTI_JOURNAL_MAX_ATTEMPTS``; any other failure (a 4xx, or a
``{"status": false, "error"}`` answer) fails the entry at once. An unknown caller is logged with
empty ``Name``, ``EntityId`` and ``EntityType``.

``Number`` is written in E.164, as section 5 says for call logs; ``CTI_CRM_PHONE_FORMATS`` governs
the lookups (and contacts we create), not this field. A number that does not parse (a withheld or
internal caller id) is written as its digits.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from .. import logs, metrics
from ..call_logs import (
    PBX_LEG_EVENTS,
    PBX_LOGGED_TYPES,
    CallRecord,
    call_log,
    customer_number,
    ibizfone_record,
    pbx_call,
    pbx_leg_fields,
    with_contact,
    zain_record,
)
from ..directory import AgentDirectory
from ..errors import Conflict, NotFound, Problem, UpstreamError, ValidationFailed
from ..numbers import NumberError, parse
from ..retry import backoff
from ..secrets import scrub
from ..settings import Settings
from ..store import DELIVERED, CallState, JournalEntry, LegEvent, Store
from ..upstreams.zain import call_detail

log = logging.getLogger(__name__)

PBX, IBIZFONE, BACKFILL = "pbx", "ibizfone", "backfill"
OPEN_CALL_SECONDS = 4 * 3600  # a call with a leg that never reports its end is logged after this

RETRY_BASE_SECONDS = 5.0
RETRY_CAP_SECONDS = 1800.0
RETRY_AFTER_CAP_SECONDS = 86400.0
MAX_CLAIM_SECONDS = 55.0  # the contract: a dead process's claim is taken up within 60 s
CLAIM_BATCH = 20  # due entries a deliverer claims in one transaction
BATCH_WINDOW_SECONDS = 10.0  # how long after its claim a batch's entries may still be started
MAX_ERROR_LENGTH = 500
EXTENSION_DIGITS = 6  # a dialed number this short is an internal extension
WARM_THREADS = 4


# the service -----------------------------------------------------------------------------------


class Journal:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        directory: AgentDirectory,
        crm,
        lookup,
        *,
        clock=time.time,
    ):
        self.settings = settings
        self.store = store
        self.directory = directory
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
        self._owner: tuple[int, str] | None = None
        self._warm_pool: tuple[int, ThreadPoolExecutor] | None = None
        self.on_stored = None  # set by the deliverer: wakes it when a new entry lands

    # ingest ------------------------------------------------------------------------------------

    def record(
        self,
        source: str,
        key: str,
        record: CallRecord,
        *,
        recording_url: str | None = None,
    ) -> tuple[JournalEntry, bool]:
        """Store a whole call once (per source and key); committed and synced when this returns."""
        body = call_log(record, self.settings.timezone)
        agent = record.agent.extension if record.agent is not None else None
        entry, created = self.store.journal_add(
            source, key, body, recording_url=recording_url, agent=agent
        )
        if created:
            self._stored(entry)
        return entry, created

    def _stored(self, entry: JournalEntry) -> None:
        if not logs.note(
            journal_entry=entry.id, journal_source=entry.source, journal_key=entry.key
        ):
            log.info("journal: stored %s call %s as entry %s", entry.source, entry.key, entry.id)
        if self.on_stored is not None and entry.next_attempt_at <= self.clock():
            self.on_stored()

    def pbx_event(self, event: dict) -> None:
        """One cc_agent event push: a leg event of a logged call type is journaled, ``call:ring``
        announced too; other events are ignored."""
        if event["event"] in PBX_LEG_EVENTS:
            self.record_pbx_leg(event)
        if event["event"] == "call:ring":
            self.ring(event)

    def record_pbx_leg(self, event: dict) -> JournalEntry | None:
        """Store one leg event under its call (``call_id``; a call of one leg without it)."""
        if event.get("type") not in PBX_LOGGED_TYPES or not event.get("id"):
            return None
        key = event.get("call_id") or event["id"]
        entry, created = self.store.journal_add_leg(
            key, event["id"], event["event"], pbx_leg_fields(event), summarise=self._summarise
        )
        if created:
            self._stored(entry)
        return entry

    def _summarise(self, events: list[LegEvent], first_at: float) -> CallState:
        """The entry of a call made of these leg events (run inside the store's transaction)."""
        call = pbx_call(events, self.directory, self.settings.default_region)
        if call.ended:
            due = max(event.at for event in events) + self.settings.journal_settle_seconds
        else:
            due = first_at + OPEN_CALL_SECONDS
        return CallState(
            call_log=call_log(call.record, self.settings.timezone),
            agent=call.agent,
            legs=call.legs,
            due_at=due,
            recording_url=call.recording_url,
        )

    def ring(self, event: dict) -> int:
        """Store the ringing call for the agent's screen pop, and warm the caller's cache entry.

        The lookup runs beside the answer (the PBX does not wait for the CRM); its result lands in
        the contact cache, where the screen pop and the later call log find it.
        """
        agent = self._ringing_agent(event)
        raw = event.get("cid_num")
        payload = {
            "id": event.get("id"),
            "call_id": event.get("call_id") or event.get("id"),
            "agent": agent,
            "phone": customer_number(raw, self.settings.default_region) or None,
            "cid_name": event.get("cid_name") or None,
            "ts": event.get("ts"),
            "received_at": logs.arrived_at(),  # for cti_screen_pop_seconds (ring to pop)
        }
        event_id = self.store.add_event("call:ring", agent, payload)
        try:
            number = parse(str(raw or ""), self.settings.default_region)
        except NumberError:
            return event_id
        self._warmer().submit(self._warm, number)
        return event_id

    def _ringing_agent(self, event: dict) -> str | None:
        for find, field in (
            (self.directory.by_user_id, "dst_user_id"),
            (self.directory.by_device_id, "dst_device_id"),
        ):
            agent = find(event.get(field))
            if agent is not None:
                return agent.extension
        dialed = event.get("dst_num") or ""
        if dialed.isdigit() and len(dialed) <= EXTENSION_DIGITS:
            return dialed
        return event.get("dst_user_id") or None

    def _warmer(self) -> ThreadPoolExecutor:
        pid = os.getpid()
        if self._warm_pool is None or self._warm_pool[0] != pid:
            pool = ThreadPoolExecutor(max_workers=WARM_THREADS, thread_name_prefix="lookup-warm")
            self._warm_pool = (pid, pool)
        return self._warm_pool[1]

    def _warm(self, number) -> None:
        try:
            self.lookup.lookup_phone(number)
        except Problem as exc:
            log.info("ring: caller lookup failed (%s); the screen pop will try again", exc.code)
        except Exception:
            log.exception("ring: caller lookup failed")

    def record_ibizfone(self, push: dict) -> JournalEntry:
        record = ibizfone_record(push, self.directory, self.settings)
        entry, _ = self.record(
            IBIZFONE, push["calllogid"], record, recording_url=push.get("recordingurl")
        )
        return entry

    def record_zain(self, raw: dict) -> bool | None:
        """One backfilled call: True if new, False if already journaled, None if unreadable."""
        call = call_detail(raw)
        if call is None:
            return None
        try:
            record = zain_record(call, self.directory, self.settings)
        except (ValueError, TypeError):
            log.warning("journal backfill: zain call %s is unreadable; skipped", call.call_id[:64])
            return None
        _, created = self.record(
            BACKFILL, call.call_id[:128], record, recording_url=call.recording_url
        )
        return created

    # delivery ----------------------------------------------------------------------------------

    @property
    def owner(self) -> str:
        """This process's claim name; a new one after a fork."""
        pid = os.getpid()
        if self._owner is None or self._owner[0] != pid:
            self._owner = (pid, f"{socket.gethostname()}:{pid}:{uuid.uuid4().hex[:8]}")
        return self._owner[1]

    def deliver_due(
        self, *, now: float | None = None, limit: int = 100, stop=None
    ) -> dict[str, int]:
        """Claim due entries in batches and deliver them one at a time (until ``stop`` is set);
        outcomes counted.

        ``now`` (epoch seconds) decides what is due; the real time unless given. Each entry's
        outcome is committed before the next entry is sent, so a process that dies can have sent
        at most the one in flight twice; the rest of its batch is taken up after the lease.
        """
        outcomes = {"delivered": 0, "retry": 0, "failed": 0}
        left = limit
        while left > 0 and not (stop is not None and stop.is_set()):
            at = self.clock() if now is None else now
            batch = self.store.journal_claim(
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
                    outcomes[self._deliver(entry, at)] += 1
            finally:
                # Never the one in flight: it may have reached the CRM.
                self._release(batch[started:])
        return outcomes

    def _release(self, entries: list[JournalEntry]) -> None:
        if not entries:
            return
        try:
            self.store.journal_release(self.owner, [entry.id for entry in entries])
        except Exception as exc:  # they are taken up after the lease instead
            log.warning("journal: %s claimed entries not given back: %s", len(entries), exc)

    def _deliver(self, entry: JournalEntry, now: float) -> str:
        try:
            body = with_contact(entry.call_log, self._contact(entry.call_log["Number"]))
        except Problem as exc:
            return self._retry_or_fail(entry, now, f"contact lookup: {exc.detail}", exc, True)
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
        if not self.store.journal_delivered(entry.id, body):
            log.warning("journal: entry %s was delivered after its claim ran out", entry.id)
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
            self.store.journal_retry_later(entry.id, self.owner, at=now + delay, error=error)
            metrics.count_delivery("retry")
            log.warning(
                "journal: entry %s attempt %s failed (%s); next try in %.0fs",
                entry.id,
                entry.attempts,
                error,
                delay,
            )
            return "retry"
        self.store.journal_failed(entry.id, self.owner, error=error)
        metrics.count_delivery("failed")
        log.warning(
            "journal: entry %s failed after %s attempt(s): %s", entry.id, entry.attempts, error
        )
        return "failed"

    # reading and operating ---------------------------------------------------------------------

    def entries(
        self, *, status: str | None, limit: int, cursor: str | None, agent: str | None = None
    ) -> dict:
        before = None
        if cursor is not None:
            if not cursor.isdigit() or not cursor.isascii() or len(cursor) > 18:
                raise ValidationFailed(
                    "The cursor is not one this API gave out.", errors={"cursor": ["Invalid."]}
                )
            before = int(cursor)
        rows = self.store.journal_list(status=status, limit=limit + 1, before=before, agent=agent)
        page = rows[:limit]
        more = len(rows) > limit
        return {"entries": page, "next": str(page[-1].id) if more and page else None}

    def retry(self, entry_id: int) -> JournalEntry:
        # Ids are 64-bit signed integers in every store: a larger number names no entry.
        entry = self.store.journal_requeue(entry_id) if 0 < entry_id < 2**63 else None
        if entry is None:
            raise NotFound(f"No journal entry {entry_id}.")
        if entry.status == DELIVERED:
            raise Conflict(
                f"Journal entry {entry_id} is delivered already; retrying would log it twice."
            )
        if self.on_stored is not None:
            self.on_stored()
        return entry
