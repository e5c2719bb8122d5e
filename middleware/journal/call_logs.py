"""What each source reports about a call, made into the one ``/calls/log`` body (contract sections
4 and 5). Pure: no store, no HTTP, no clock; the journal service stores and delivers what this makes.

The rules of each source side by side:

- cc_agent (``pbx_call``): a call is every leg event stored under its ``call_id``. The answered
  leg (``billms`` > 0, the longest if several) gives the agent, the type and ``Duration``; the
  longest ``durationms`` gives ``DurationTimespan``; the earliest leg start (``ts`` of its
  ``call:end`` minus its ``durationms``) gives ``DateTime``, the latest leg end (the ``ts`` of a
  ``call:end``) ``CallEndTimeLocal``. No leg answered: Missed (inbound, queue) or Notanswered
  (outbound), naming the agent only when a single one was rung.
- ibizfone (``ibizfone_record``): one push is one call; ``callstatus`` gives the type.
- Every source's agent is written in its one spelling (``named_agent``): ``06001`` is agent 6001,
  so the journal's ``?agent=`` filter, the board and the reports see one agent.
- zain backfill (``zain_record``): one call detail, already read out of zain's field names by
  ``upstreams/zain.py``.

Every source gives the call's start and end as instants (aware datetimes); the log shows them in
``CTI_TIMEZONE``. An end reckoned from a local start and a duration is added in absolute time, not
on the wall clock: a call over a daylight-saving change ends at the local time it really ended.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from ..directory import Agent, AgentDirectory
from ..numbers import NumberError, e164, parse

if TYPE_CHECKING:  # the store's stored leg event (``fields`` are its ``PBX_LEG_FIELDS``)
    from ..store import LegEvent

INBOUND, OUTBOUND, MISSED, NOT_ANSWERED = "Inbound", "Outbound", "Missed", "Notanswered"
PBX_LOGGED_TYPES = ("inbound", "outbound", "queue")
PBX_LEG_EVENTS = ("call:ring", "call:answer", "call:end")
IBIZFONE_TYPES = {"ANSWER": INBOUND, "MISSED": MISSED, "DROPPED": MISSED}

#: The fields of a cc_agent leg event the call log is made from (what the journal keeps of it).
PBX_LEG_FIELDS = (
    "type",
    "ts",
    "cid_num",
    "dst_num",
    "src_user_id",
    "dst_user_id",
    "durationms",
    "billms",
    "recording_url",
)


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
    end: datetime  # aware: when the call ended (``CallEndTimeLocal``)


@dataclass(frozen=True)
class PbxCall:
    """A cc_agent call made of the leg events stored so far."""

    record: CallRecord
    agent: str | None  # the extension the log names (a user id without a row: its spelling)
    legs: list[dict]  # [{"id", "agent", "billms"}], by leg start
    ended: bool  # every leg seen has reported its end
    recording_url: str | None


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
    end = record.end.astimezone(tz)
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


#: What the reports count by, read out of a call log (``report_columns``); the journal's columns.
REPORT_COLUMNS = ("local_day", "local_hour", "direction", "call_type", "talk_seconds")
_DATE_TIME = re.compile(r"(\d\d)-(\d\d)-(\d\d) ([01]\d|2[0-3]):[0-5]\d:[0-5]\d\Z")  # DateTime


def report_columns(log_body: dict) -> dict:
    """The day (``YYYY-MM-DD``) and hour of its ``DateTime`` (local already), its direction, type
    and talk seconds (``Duration``): None where the log does not say (a call still being made)."""
    day = hour = None
    found = _DATE_TIME.match(str(log_body.get("DateTime") or ""))
    if found is not None:
        dd, mm, yy, hh = map(int, found.groups())
        try:  # two-digit years as strptime's %y reads them
            day, hour = date(2000 + yy if yy < 69 else 1900 + yy, mm, dd).isoformat(), hh
        except ValueError:  # no such day
            pass
    try:
        talk = parse_duration(log_body.get("Duration"))
    except (ValueError, TypeError):
        talk = 0
    return {
        "local_day": day,
        "local_hour": hour,
        "direction": log_body.get("CallDirection") or None,
        "call_type": log_body.get("CallType") or None,
        "talk_seconds": talk,
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


def named_agent(directory: AgentDirectory, value) -> Agent | None:
    """The agent a source names (an ibizfone ``agentnumber``, a zain ``agent``, a cc_agent user id
    without a directory row), in its one spelling (``AgentDirectory.spelling``, as the API and the
    board read agents: ``06001`` is agent 6001): the directory's row when it has one, so the log
    carries that person's names. A value that is no agent's spelling is kept as sent (trimmed);
    None when empty."""
    text = str(value).strip() if value is not None else ""
    if not text:
        return None
    return directory.resolve(directory.spelling(text) or text)


def ended(start: datetime, seconds: int) -> datetime:
    """The end of a call that started at ``start`` (aware, local) and lasted ``seconds``: added in
    absolute time (UTC), since an aware datetime plus a timedelta moves its wall clock, which is
    an hour off (or a time that does not exist) across a daylight-saving change."""
    return start.astimezone(UTC) + timedelta(seconds=seconds)


# cc_agent: legs -> one call ------------------------------------------------------------------------


def pbx_leg_fields(event: dict) -> dict:
    """What the journal keeps of a leg event."""
    return {name: event[name] for name in PBX_LEG_FIELDS if event.get(name) not in (None, "")}


@dataclass
class _Leg:
    id: str
    fields: dict  # the end's fields first, then the answer's, then the ring's
    ended: bool
    answered: bool
    billms: float
    durationms: float
    start: float  # epoch seconds
    end: float | None  # epoch seconds: the ``ts`` of its ``call:end``; None while it has none


def _legs(events: Iterable[LegEvent]) -> list[_Leg]:
    by_leg: dict[str, list[LegEvent]] = {}
    for item in events:
        by_leg.setdefault(item.leg, []).append(item)
    rank = {"call:end": 0, "call:answer": 1, "call:ring": 2}
    legs = []
    for leg_id, items in by_leg.items():
        items.sort(key=lambda e: (rank.get(e.event, 3), e.at))
        fields: dict = {}
        for item in reversed(items):  # the end's fields win over the answer's and the ring's
            fields.update(item.fields)
        end = next((e.fields for e in items if e.event == "call:end"), None)
        billms = float((end or {}).get("billms") or 0)
        durationms = float((end or {}).get("durationms") or 0)
        ended_at = None
        if end is not None and end.get("ts") is not None:
            ended_at = float(end["ts"])  # ``ts`` is the end of the call
            start = ended_at - whole_seconds(durationms)  # as the log writes it
        else:
            start = min(float(e.fields.get("ts") or e.at) for e in items)
        # An answer whose end never came is still the leg that was answered (talk time unknown).
        answered = billms > 0 or (end is None and any(e.event == "call:answer" for e in items))
        legs.append(
            _Leg(leg_id, fields, end is not None, answered, billms, durationms, start, ended_at)
        )
    legs.sort(key=lambda leg: (leg.start, leg.id))
    return legs


def pbx_call(events: Iterable[LegEvent], directory: AgentDirectory, region: str) -> PbxCall:
    """The call of these leg events (duplicates and any order); at least one event."""
    legs = _legs(events)
    if not legs:
        raise ValueError("a call has at least one leg event")
    kind = next((leg.fields["type"] for leg in legs if leg.fields.get("type")), "inbound")
    outbound = kind == "outbound"
    user_field = "src_user_id" if outbound else "dst_user_id"
    number_field = "dst_num" if outbound else "cid_num"

    def agent_of(leg: _Leg) -> tuple[Agent | None, str | None]:
        user_id = leg.fields.get(user_field)
        if user_id in (None, ""):
            return None, None
        agent = directory.by_user_id(user_id)
        if agent is None:  # no row: the id is the extension, in its one spelling (as the board)
            agent = named_agent(directory, user_id)
        return agent, agent.extension if agent is not None else None

    answered = [leg for leg in legs if leg.answered]
    if answered:
        chosen = max(answered, key=lambda leg: leg.billms)  # the first of equals: the earliest
        agent, extension = agent_of(chosen)
        call_type = OUTBOUND if outbound else INBOUND
        talk = whole_seconds(chosen.billms)
    else:
        chosen = legs[0]
        rung = {ext: agent for agent, ext in map(agent_of, legs) if ext is not None}
        extension, agent = next(iter(rung.items())) if len(rung) == 1 else (None, None)
        call_type = NOT_ANSWERED if outbound else MISSED
        talk = 0
    raw_number = chosen.fields.get(number_field) or next(
        (leg.fields[number_field] for leg in legs if leg.fields.get(number_field)), None
    )
    recording = chosen.fields.get("recording_url") or next(
        (leg.fields["recording_url"] for leg in legs if leg.fields.get("recording_url")), None
    )
    total = max(whole_seconds(leg.durationms) for leg in legs)
    start = min(leg.start for leg in legs)
    # The call ends when its last leg does (a leg's ``ts`` is its end); a leg whose end never
    # came says nothing of it, and a call of such legs only ends ``DurationTimespan`` in.
    end = max((leg.end for leg in legs if leg.end is not None), default=start + total)
    record = CallRecord(
        call_type=call_type,
        direction=OUTBOUND if outbound else INBOUND,
        number=customer_number(raw_number, region),
        agent=agent,
        talk_seconds=talk,
        total_seconds=total,
        start=datetime.fromtimestamp(start, UTC),
        end=datetime.fromtimestamp(end, UTC),
    )
    return PbxCall(
        record=record,
        agent=extension,
        legs=[
            {"id": leg.id, "agent": agent_of(leg)[1], "billms": round(leg.billms)} for leg in legs
        ],
        ended=all(leg.ended for leg in legs),
        recording_url=recording,
    )


# ibizfone ------------------------------------------------------------------------------------------


def ibizfone_record(push: dict, directory: AgentDirectory, settings) -> CallRecord:
    """The IVR's push: ``date``/``time`` (local) start the call; the IVR part precedes the talk."""
    talk = push.get("callduration") or 0
    ivr = push.get("ivrduration") or 0
    start = datetime.combine(push["date"], push["time"]).replace(tzinfo=settings.timezone)
    agent_number = push.get("agentnumber")
    return CallRecord(
        call_type=IBIZFONE_TYPES[push["callstatus"]],
        direction=INBOUND,
        number=customer_number(push["callnumber"], settings.default_region),
        agent=named_agent(directory, agent_number),
        talk_seconds=talk,
        total_seconds=ivr + talk,
        start=start,
        end=ended(start, ivr + talk),
    )


# zain backfill -------------------------------------------------------------------------------------


def zain_record(call, directory: AgentDirectory, settings) -> CallRecord:
    """A zain call detail (``upstreams.zain.CallDetail``); its ``timestamp`` is the local start.

    Raises ValueError for a record that cannot be read (the backfill counts and skips it).
    """
    seconds = parse_duration(call.duration)
    start = datetime.strptime(str(call.timestamp or "").strip(), "%Y-%m-%d %H:%M:%S").replace(
        tzinfo=settings.timezone
    )
    answered = seconds > 0 and not call.unanswered
    if call.outbound:
        call_type = OUTBOUND if answered else NOT_ANSWERED
    else:
        call_type = INBOUND if answered else MISSED
    return CallRecord(
        call_type=call_type,
        direction=OUTBOUND if call.outbound else INBOUND,
        number=customer_number(call.number, settings.default_region),
        agent=named_agent(directory, call.agent),
        talk_seconds=seconds if answered else 0,
        total_seconds=seconds,
        start=start,
        end=ended(start, seconds),
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
