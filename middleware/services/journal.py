"""The call journal: what the PBX and the IVR report becomes exactly one CRM call log.

Ingest maps the event to the ``/calls/log`` body (contract section 5) and stores it as a pending
entry, keyed by the source's call id, in one committed and synced transaction; only then does the
webhook answer. Delivery happens later, in the background (``services/deliverer.py``): an entry is
claimed atomically, the customer number is looked up in the CRM *at delivery time* (so a CRM outage
never delays or loses an ingest; the contact fields stay empty until then), and the log is sent.
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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from .. import logs, metrics
from ..directory import Agent, AgentDirectory
from ..errors import Conflict, NotFound, Problem, UpstreamError, ValidationFailed
from ..numbers import NumberError, e164, parse
from ..retry import backoff
from ..secrets import scrub
from ..settings import Settings
from ..store import DELIVERED, JournalEntry, Store

log = logging.getLogger(__name__)

PBX, IBIZFONE, BACKFILL = "pbx", "ibizfone", "backfill"
INBOUND, OUTBOUND, MISSED, NOT_ANSWERED = "Inbound", "Outbound", "Missed", "Notanswered"
PBX_LOGGED_TYPES = ("inbound", "outbound", "queue")
IBIZFONE_TYPES = {"ANSWER": INBOUND, "MISSED": MISSED, "DROPPED": MISSED}

RETRY_BASE_SECONDS = 5.0
RETRY_CAP_SECONDS = 1800.0
RETRY_AFTER_CAP_SECONDS = 86400.0
MAX_CLAIM_SECONDS = 55.0  # the contract: a dead process's claim is taken up within 60 s
CLAIM_BATCH = 20  # due entries a deliverer claims in one transaction
BATCH_WINDOW_SECONDS = 10.0  # how long after its claim a batch's entries may still be started
MAX_ERROR_LENGTH = 500
EXTENSION_DIGITS = 6  # a dialed number this short is an internal extension
WARM_THREADS = 4


# mapping (contract section 5) ------------------------------------------------------------------


@dataclass(frozen=True)
class CallRecord:
    """One finished call as any source reports it, before it is written as a call log."""

    call_type: str
    direction: str
    number: str
    agent: Agent | None
    talk_seconds: int
    total_seconds: int
    start: datetime  # aware


def hms(seconds: int) -> str:
    """``hh:mm:ss``; hours run past 24 rather than wrap."""
    seconds = max(0, int(seconds))
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def whole_seconds(milliseconds: float | None) -> int:
    """Milliseconds to whole seconds, halves rounded up."""
    return int((max(0.0, milliseconds or 0.0) + 500) // 1000)


def customer_number(raw: str | None, region: str) -> str:
    """E.164 when the number parses; otherwise its digits (a withheld or internal caller id)."""
    if not raw:
        return ""
    try:
        return e164(parse(str(raw), region))
    except NumberError:
        text = str(raw).strip()
        digits = "".join(c for c in text if c.isdigit())
        return ("+" + digits if text.startswith("+") and digits else digits)[:32]


def call_log(record: CallRecord, tz: ZoneInfo) -> dict:
    """The ``/calls/log`` body; the contact fields are filled at delivery."""
    start = record.start.astimezone(tz)
    end = start + timedelta(seconds=record.total_seconds)
    agent = record.agent or Agent(extension="")
    return {
        "CallType": record.call_type,
        "CallDirection": record.direction,
        "Number": record.number,
        "Name": "",
        "EntityId": "",
        "EntityType": "",
        "AgentFirstName": agent.first_name or "",
        "AgentLastName": agent.last_name or "",
        "AgentEmail": agent.email or "",
        "Duration": hms(record.talk_seconds),
        "DurationTimespan": hms(record.total_seconds),
        "DateTime": start.strftime("%d-%m-%y %H:%M:%S"),
        "CallStartTimeLocal": start.strftime("%H:%M:%S"),
        "CallEndTimeLocal": end.strftime("%H:%M:%S"),
    }


def with_contact(log_body: dict, contact: dict | None) -> dict:
    """The body with the looked-up contact; an unknown caller keeps the three fields empty."""
    contact = contact or {}
    return {
        **log_body,
        "Name": contact.get("name") or "",
        "EntityId": contact.get("id") or "",
        "EntityType": contact.get("entity_type") or "",
    }


def pbx_record(event: dict, directory: AgentDirectory, region: str) -> CallRecord:
    """cc_agent ``call:end``: ``ts`` is the end, ``durationms`` the whole call, ``billms`` talk."""
    outbound = event["type"] == "outbound"
    answered = whole_seconds(event.get("billms")) > 0
    if outbound:
        call_type = OUTBOUND if answered else NOT_ANSWERED
    else:
        call_type = INBOUND if answered else MISSED
    total = whole_seconds(event.get("durationms"))
    end = datetime.fromtimestamp(event["ts"], UTC)
    user_id = event.get("src_user_id") if outbound else event.get("dst_user_id")
    return CallRecord(
        call_type=call_type,
        direction=OUTBOUND if outbound else INBOUND,
        number=customer_number(event.get("dst_num") if outbound else event.get("cid_num"), region),
        agent=directory.by_user_id(user_id),
        talk_seconds=whole_seconds(event.get("billms")),
        total_seconds=total,
        start=end - timedelta(seconds=total),
    )


def ibizfone_record(push: dict, directory: AgentDirectory, settings: Settings) -> CallRecord:
    """The IVR's push: ``date``/``time`` (local) start the call; the IVR part precedes the talk."""
    talk = push.get("callduration") or 0
    ivr = push.get("ivrduration") or 0
    start = datetime.combine(push["date"], push["time"]).replace(tzinfo=settings.timezone)
    agent_number = push.get("agentnumber")
    return CallRecord(
        call_type=IBIZFONE_TYPES[push["callstatus"]],
        direction=INBOUND,
        number=customer_number(push["callnumber"], settings.default_region),
        agent=directory.resolve(agent_number) if agent_number else None,
        talk_seconds=talk,
        total_seconds=ivr + talk,
        start=start,
    )


ZAIN_NUMBER_FIELDS = ("customerNumber", "callerNumber", "phoneNumber", "number", "cli")
_ZAIN_UNANSWERED = ("MISSED", "ABANDON", "NOANSWER", "NO_ANSWER", "NOT_ANSWERED", "UNANSWERED")


def zain_record(call: dict, directory: AgentDirectory, settings: Settings) -> CallRecord:
    """A zain call detail (``FetchCallDetailsByDate``); ``timestamp`` is the local start.

    Raises ValueError for a record that cannot be read (the backfill counts and skips it).
    """
    kind = str(call.get("callType") or "").upper().replace(" ", "_")
    seconds = parse_duration(call.get("duration"))
    start = datetime.strptime(str(call.get("timestamp") or "").strip(), "%Y-%m-%d %H:%M:%S")
    outbound = kind.startswith("OUT")
    answered = seconds > 0 and not any(word in kind for word in _ZAIN_UNANSWERED)
    if outbound:
        call_type = OUTBOUND if answered else NOT_ANSWERED
    else:
        call_type = INBOUND if answered else MISSED
    raw_number = next((call[k] for k in ZAIN_NUMBER_FIELDS if call.get(k)), None)
    agent = str(call["agent"]).strip() if call.get("agent") not in (None, "") else None
    return CallRecord(
        call_type=call_type,
        direction=OUTBOUND if outbound else INBOUND,
        number=customer_number(raw_number, settings.default_region),
        agent=directory.resolve(agent) if agent else None,
        talk_seconds=seconds if answered else 0,
        total_seconds=seconds,
        start=start.replace(tzinfo=settings.timezone),
    )


def parse_duration(value) -> int:
    """Seconds from ``"125"``, ``125``, ``"02:05"`` or ``"00:02:05"``; ValueError otherwise."""
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise ValueError("not a duration")
    if isinstance(value, int | float):
        if value < 0 or value != value:
            raise ValueError("not a duration")
        return round(value)
    text = str(value).strip()
    parts = text.split(":")
    if len(parts) > 3 or not all(p.isdigit() and p.isascii() for p in parts):
        raise ValueError("not a duration")
    numbers = [int(p) for p in parts]
    if len(numbers) > 1 and any(n >= 60 for n in numbers[1:]):
        raise ValueError("minutes and seconds must be below 60")
    seconds = 0
    for number in numbers:
        seconds = seconds * 60 + number
    return seconds


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
        self, source: str, key: str, record: CallRecord, *, recording_url: str | None = None
    ) -> tuple[JournalEntry, bool]:
        """Store the call once (per source and key); committed and synced when this returns."""
        body = call_log(record, self.settings.timezone)
        entry, created = self.store.journal_add(source, key, body, recording_url=recording_url)
        if created:
            if not logs.note(journal_entry=entry.id, journal_source=source, journal_key=key):
                log.info("journal: stored %s call %s as entry %s", source, key, entry.id)
            if self.on_stored is not None:
                self.on_stored()
        return entry, created

    def pbx_event(self, event: dict) -> None:
        """One cc_agent event push: ``call:end`` is journaled, ``call:ring`` announced, others ignored."""
        if event["event"] == "call:end":
            self.record_pbx_end(event)
        elif event["event"] == "call:ring":
            self.ring(event)

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

    def record_pbx_end(self, event: dict) -> JournalEntry | None:
        if event["type"] not in PBX_LOGGED_TYPES:
            return None
        record = pbx_record(event, self.directory, self.settings.default_region)
        entry, _ = self.record(PBX, event["id"], record, recording_url=event.get("recording_url"))
        return entry

    def record_ibizfone(self, push: dict) -> JournalEntry:
        record = ibizfone_record(push, self.directory, self.settings)
        entry, _ = self.record(
            IBIZFONE, push["calllogid"], record, recording_url=push.get("recordingurl")
        )
        return entry

    def record_zain(self, call: dict) -> bool | None:
        """One backfilled call: True if new, False if already journaled, None if unreadable."""
        call_id = str(call.get("callId") or "").strip() if isinstance(call, dict) else ""
        if not call_id:
            return None
        try:
            record = zain_record(call, self.directory, self.settings)
        except (ValueError, TypeError):
            log.warning("journal backfill: zain call %s is unreadable; skipped", call_id[:64])
            return None
        recording = call.get("recordingUrl") or call.get("recording_url")
        _, created = self.record(BACKFILL, call_id[:128], record, recording_url=recording)
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

    def entries(self, *, status: str | None, limit: int, cursor: str | None) -> dict:
        before = None
        if cursor is not None:
            if not cursor.isdigit() or not cursor.isascii() or len(cursor) > 18:
                raise ValidationFailed(
                    "The cursor is not one this API gave out.", errors={"cursor": ["Invalid."]}
                )
            before = int(cursor)
        rows = self.store.journal_list(status=status, limit=limit + 1, before=before)
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


def utc_iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return (
        datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )
