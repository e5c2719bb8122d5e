"""The call journal: what the PBX and the IVR report becomes exactly one CRM call log.

Ingest stores what arrived, keyed by the source's call id, in one committed and synced
transaction; only then does the webhook answer. An IVR push or a zain call detail is a whole call:
its ``/calls/log`` body (``call_logs.py``) is stored as a pending entry, due at once. A cc_agent
leg event (ring, answer, end) is stored under its call's entry, which the same transaction remakes
from every leg event of the call: it falls due ``CTI_JOURNAL_SETTLE_SECONDS`` after the last event
once every leg seen has ended, or 4 hours after the first event when a leg never reports its end.

Delivery happens later, in the background (``services/delivery.py``, run by
``services/deliverer.py``); a ringing call is announced for its screen pop (``services/rings.py``).

``Number`` is written in E.164, as section 5 says for call logs; ``CTI_CRM_PHONE_FORMATS`` governs
the lookups (and contacts we create), not this field. A number that does not parse (a withheld or
internal caller id) is written as its digits.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from ..directory import AgentDirectory
from ..errors import Conflict, NotFound, ValidationFailed
from ..journal.call_logs import (
    PBX_LEG_EVENTS,
    PBX_LOGGED_TYPES,
    CallRecord,
    call_log,
    ibizfone_record,
    pbx_call,
    pbx_leg_fields,
    zain_record,
)
from ..runtime import logs
from ..settings import Settings
from ..store import DELIVERED, CallState, JournalEntry, LegEvent
from ..store import Journal as JournalPart
from ..upstreams.zain import call_detail
from .board import Board
from .rings import Rings

log = logging.getLogger(__name__)
# The rings that pop a screen: a call the journal logs, or a ring that does not say its type.
RINGING_TYPES = frozenset((None, "", *PBX_LOGGED_TYPES))

PBX, IBIZFONE, BACKFILL = "pbx", "ibizfone", "backfill"
OPEN_CALL_SECONDS = 4 * 3600  # a call with a leg that never reports its end is logged after this


class Journal:
    def __init__(
        self,
        settings: Settings,
        journal: JournalPart,
        directory: AgentDirectory,
        rings: Rings,
        *,
        board: Board | None = None,
        on_stored: Callable[[], None] | None = None,
        clock=time.time,
    ):
        self.settings = settings
        self.journal = journal  # the store's journal (``store.journal``)
        self.directory = directory
        self.rings = rings
        self.board = board  # told of agents' events and legs, and of calls logged
        self.clock = clock
        self.on_stored = on_stored  # the factory wires the deliverer's wake-up here

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
        # The agent in its one spelling (``call_logs.named_agent``), as the journal's ``?agent=``
        # filter, the board and the reports read it.
        agent = record.agent.extension if record.agent is not None else None
        entry, created = self.journal.add(
            source, key, body, recording_url=recording_url, agent=agent
        )
        if created:
            self._stored(entry)
            if self.board is not None:
                self.board.changed(entry.agent)  # its calls of today
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
        announced too (a ring of another type, internal, fax or conf, is not: the contract
        ignores those calls), and the board told (legs and agents' statuses); other events are
        ignored.
        On SQL the board's leg and a ring's screen pop join the leg's journal transaction (one
        commit, not three); elsewhere (Redis) they are written after the journal, so what they
        announce is stored."""
        board_first = self.board is not None and self.board.rides_journal
        ring = event["event"] == "call:ring" and event.get("type") in RINGING_TYPES
        ring_first = ring and self.rings.rides_journal
        with self.journal.together():
            if board_first:
                self.board.pbx_event(event)
            if ring_first:
                self.rings.ring(event)
            if event["event"] in PBX_LEG_EVENTS:
                self.record_pbx_leg(event)
        if ring and not ring_first:
            self.rings.ring(event)
        if self.board is not None and not board_first:
            self.board.pbx_event(event)

    def record_pbx_leg(self, event: dict) -> JournalEntry | None:
        """Store one leg event under its call (``call_id``; a call of one leg without it)."""
        if event.get("type") not in PBX_LOGGED_TYPES or not event.get("id"):
            return None
        key = event.get("call_id") or event["id"]
        entry, created = self.journal.add_leg(
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
        rows = self.journal.list(status=status, limit=limit + 1, before=before, agent=agent)
        page = rows[:limit]
        more = len(rows) > limit
        return {"entries": page, "next": str(page[-1].id) if more and page else None}

    def retry(self, entry_id: int) -> JournalEntry:
        # Ids are 64-bit signed integers in every store: a larger number names no entry.
        entry = self.journal.requeue(entry_id) if 0 < entry_id < 2**63 else None
        if entry is None:
            raise NotFound(f"No journal entry {entry_id}.")
        if entry.status == DELIVERED:
            raise Conflict(
                f"Journal entry {entry_id} is delivered already; retrying would log it twice."
            )
        if self.on_stored is not None:
            self.on_stored()
        return entry
