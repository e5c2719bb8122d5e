"""The supervisor's board: every agent's status, call in progress and calls of today, live.

What changes it arrives on any worker of any host: a status the provider accepted (``PUT
/api/v1/agents/{extension}/status``, through ``services/agents.py``), the cc_agent pushes
``agent:status``, ``agent:checkin`` and ``agent:checkout``, and the legs of calls (``call:ring``,
``call:answer``, ``call:end``, through ``services/journal.py``). Each is written to the store's
board (``store.board``: SQL, or Redis with ``CTI_REDIS_URL``), and each change is announced on the
store's event log under ``CHANNEL``, which the board's streams read like the agents' streams read
theirs (``BoardStream`` under gunicorn, ``stream_server.py`` on the stream server). A stream's
message is the agent's entry as it is when the event is sent. A status change is also announced
on the agent's own stream (``event: status``, kind ``STATUS``, the entry as ``GET
/api/v1/agents/{extension}/status`` answers it), after the write: when that second append fails
(logged), the agent's page has its status from the next change, or when it reads it again.

The board is a view of what happened, never a reason to refuse it: when it cannot be written (Redis
or the database down), the webhook or status change that told it still succeeds (logged), and the
agent's next change shows again.

``today`` counts the journal's call logs naming the agent that started today in ``CTI_TIMEZONE``,
by the same query as the reports (``store.reports``, by agent, one day).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from ..directory import AgentDirectory, leg_user_id
from ..errors import Problem
from ..journal.call_logs import PBX_LEG_EVENTS, PBX_LOGGED_TYPES
from ..numbers import NumberError, e164, parse
from ..settings import Settings
from ..store import AgentState, BoardLeg, Event, Events, ReportRow, Reports
from ..store import Board as BoardPart
from ..store.board import ENDED, KEEP_SECONDS, RANKS, RINGING, TALKING
from ..store.reports import BY_AGENT
from ..timestamps import utc_iso
from .events import STATUS, EventHub, EventStream, StreamSlots

log = logging.getLogger(__name__)

BOARD = "board"  # the event log's kind of a board change, and the SSE event's name
CHANNEL = "*board"  # the event log's stream of board changes: no agent extension has a '*'
UNKNOWN = "unknown"
LEG_STATES = {"call:ring": RINGING, "call:answer": TALKING, "call:end": ENDED}
PUSHED_STATUSES = {"agent:checkin": "available", "agent:checkout": "offline"}


def extension_order(extension: str) -> tuple:
    """Extensions of digits by their number, then the others by their text."""
    return (0, int(extension), extension) if extension.isdigit() else (1, 0, extension)


class Board:
    def __init__(
        self,
        settings: Settings,
        board: BoardPart,
        events: Events,
        reports: Reports,
        directory: AgentDirectory,
        *,
        clock=time.time,
    ):
        self.settings = settings
        self.part = board  # the store's board (``store.board``)
        self.events = events
        self.reports = reports
        self.directory = directory
        self.clock = clock

    # what changes the board ----------------------------------------------------------------------

    @property
    def rides_journal(self) -> bool:
        """Whether a leg's write joins the journal's transaction of its event (SQL)."""
        return self.part.rides_journal

    def status_set(self, extension: str, status: str) -> None:
        """A status the agent provider accepted."""
        with self._best_effort("a status"):
            self._status(extension, status)

    def pbx_event(self, event: dict) -> None:
        """A cc_agent push: an agent's status, or a leg of a call at an agent; others ignored."""
        name = event["event"]
        with self._best_effort(name):
            if name == "agent:status" or name in PUSHED_STATUSES:
                extension = self.directory.extension_of_user(event.get("user_id"))
                if extension is not None:
                    self._status(extension, PUSHED_STATUSES.get(name) or _paused_or_not(event))
            elif name in PBX_LEG_EVENTS:
                leg = self._leg(event)
                if leg is not None:
                    self.part.board_leg(leg, now=self.clock(), announce=_announce(leg.extension))

    def changed(self, extension: str | None) -> None:
        """``extension``'s entry changed otherwise (a call logged: its calls of today)."""
        if extension:
            with self._best_effort("a call logged"):
                self.events.add(*_announce(extension))

    def _status(self, extension: str, status: str) -> None:
        """Record it; a change is announced to the board's streams (with the write) and then to
        the agent's own stream (``event: status``, its entry as it is when sent)."""
        if self.part.board_status(
            extension, status, at=self.clock(), announce=_announce(extension)
        ):
            self.events.add(STATUS, extension, {"extension": extension})

    @contextmanager
    def _best_effort(self, what: str):
        try:
            yield
        except Problem as problem:
            log.warning("board: %s is not shown (%s: %s)", what, problem.code, problem.detail)

    def _leg(self, event: dict) -> BoardLeg | None:
        """The agent's leg in a call event (its agent as the journal reads it: ``dst_user_id`` of
        inbound and queue calls, ``src_user_id`` of outbound ones, else the other)."""
        if event.get("type") not in PBX_LOGGED_TYPES or not event.get("id"):
            return None
        outbound = event["type"] == "outbound"
        extension = self.directory.extension_of_user(leg_user_id(event))
        if extension is None:
            return None
        now = self.clock()
        at = min(float(event["ts"]), now) if event.get("ts") else now
        return BoardLeg(
            leg=event["id"],
            extension=extension,
            call_id=event.get("call_id") or event["id"],
            direction="outbound" if outbound else "inbound",
            number=self._number(event.get("dst_num" if outbound else "cid_num")),
            state=LEG_STATES[event["event"]],
            since=at,
            started=at,
        )

    def _number(self, raw) -> str | None:
        try:
            return e164(parse(str(raw or ""), self.settings.default_region))
        except NumberError:
            return None

    # reading it ----------------------------------------------------------------------------------

    def board(self) -> dict:
        """``{"agents": [...], "at"}``: the directory's agents and every other one seen."""
        now = self.clock()
        states = {s.extension: s for s in self.part.board_agents(since=now - KEEP_SECONDS)}
        today = self._today(now)
        extensions = sorted(set(self.directory.extensions()) | set(states), key=extension_order)
        agents = [self._entry(ext, states.get(ext), today.get(ext)) for ext in extensions]
        return {"agents": agents, "at": utc_iso(now)}

    def entry(self, extension: str) -> dict:
        """One agent's entry, as the board lists it."""
        now = self.clock()
        state = self.part.board_agent(extension, since=now - KEEP_SECONDS)
        return self._entry(extension, state, self._today(now).get(extension))

    def _today(self, now: float) -> dict[str, ReportRow]:
        """Today's calls (in CTI_TIMEZONE) by agent: the report by agent of one day."""
        day = datetime.fromtimestamp(now, self.settings.timezone).date().isoformat()
        return {row.key: row for row in self.reports.calls_report(day, day, BY_AGENT)}

    def _entry(self, extension: str, state: AgentState | None, today: ReportRow | None) -> dict:
        agent = self.directory.resolve(extension)
        today = today or ReportRow(extension)
        return {
            "extension": extension,
            "name": " ".join(n for n in (agent.first_name, agent.last_name) if n) or None,
            "status": (state.status if state is not None else None) or UNKNOWN,
            "call": _call(state.legs if state is not None else ()),
            "today": {
                "calls": today.calls,
                "answered": today.answered,
                "missed": today.missed,
                "talk_seconds": today.talk_seconds,
            },
        }


def _announce(extension: str) -> tuple[str, str, dict]:
    """The event log's news that ``extension``'s entry changed."""
    return BOARD, CHANNEL, {"extension": extension}


def _paused_or_not(event: dict) -> str:
    """``agent:status``: ``pause_id`` 0 (or none) is available, any other pause is paused."""
    return "available" if str(event.get("pause_id") or "0").strip() in ("0", "") else "paused"


def _call(legs) -> dict | None:
    """The agent's call: a talking leg before a ringing one, the latest of equals."""
    if not legs:
        return None
    leg = max(legs, key=lambda leg: (RANKS[leg.state], leg.since))
    return {
        "call_id": leg.call_id,
        "direction": leg.direction,
        "number": leg.number,
        "state": leg.state,
        "since": utc_iso(leg.since),
    }


class BoardStream(EventStream):
    """The board's changes as Server-Sent Events (``event: board``, the agent's entry)."""

    def __init__(self, hub: EventHub, slots: StreamSlots, board: Board):
        super().__init__(hub, slots)
        self.board = board

    def sends(self, event: Event) -> bool:
        return event.kind == BOARD  # not the callbacks every agent's stream reads ("*")

    def name(self, event: Event) -> str:
        return BOARD

    def message(self, event: Event) -> dict:
        return self.board.entry(str(event.payload.get("extension")))

    def stream(self, last_event_id: int | None, *, threaded: bool) -> Iterator[str]:
        return self.channel_stream(CHANNEL, BOARD, last_event_id, threaded=threaded)
