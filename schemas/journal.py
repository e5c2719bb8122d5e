"""The call journal: what the PBX and the IVR push to us, and the journal we show."""

from __future__ import annotations

import re

from marshmallow import EXCLUDE, ValidationError, fields, validate, validates_schema

from middleware.journal.call_logs import IBIZFONE_TYPES, PBX_LOGGED_TYPES, parse_duration
from middleware.timestamps import utc_iso

from .fields import Agent, RegionSchema, Schema

Key = validate.Regexp(r"^[^\x00-\x1f\x7f]{1,128}\Z", error="Must be 1-128 printable characters.")
STATUSES = ("pending", "delivered", "failed")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # control characters: no short text holds one


class Text(fields.Field):
    """A short text that senders write as a string or a number (ids, numbers); loads a string."""

    def __init__(self, *, max_length: int = 64, **kwargs):
        kwargs.setdefault("allow_none", not kwargs.get("required", False))
        super().__init__(**kwargs)
        self.max_length = max_length

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValidationError("Not a valid string.")
        if isinstance(value, float):
            if not value.is_integer():
                raise ValidationError("Not a valid string.")
            value = int(value)
        text = str(value).strip()
        if len(text) > self.max_length:
            raise ValidationError(f"Longer than {self.max_length} characters.")
        if _CONTROL.search(text):
            raise ValidationError("Contains control characters.")
        return text

    def _serialize(self, value, attr, obj, **kwargs):
        return value


class Duration(fields.Field):
    """Seconds, written as a number of seconds or as hh:mm:ss; empty means 0."""

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return parse_duration(value)
        except (ValueError, TypeError):
            raise ValidationError("Not a duration: seconds or hh:mm:ss.") from None

    def _serialize(self, value, attr, obj, **kwargs):
        return value


class CallStatus(fields.String):
    """ANSWER, MISSED or DROPPED, in any letter case."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs).strip().upper()
        if text not in IBIZFONE_TYPES:
            raise ValidationError(f"Must be one of {', '.join(IBIZFONE_TYPES)}.")
        return text


def _milliseconds(description: str):
    return fields.Float(
        allow_none=True,
        validate=validate.Range(min=0, max=10**10),
        metadata={"description": description},
    )


# webhooks ----------------------------------------------------------------------------------------


class PbxEventSchema(Schema):
    """cc_agent event push: every event has ``event``; call events carry the call's fields."""

    class Meta:
        unknown = EXCLUDE

    event = fields.String(
        required=True,
        validate=validate.Length(min=1, max=64),
        metadata={
            "example": "call:end",
            "description": "call:ring, call:answer, call:end (legs); agent:status, "
            "agent:checkin, agent:checkout (the board); others ignored",
        },
    )
    id = Text(max_length=128, validate=Key, metadata={"description": "The leg's UUID"})
    call_id = Text(
        max_length=128,
        metadata={"description": "UUID of the call's first leg (the entry key; else `id`)"},
    )
    ts = fields.Float(
        allow_none=True,
        validate=validate.Range(min=0, max=10**11),
        metadata={"description": "Event time, epoch seconds (the end of the call for call:end)"},
    )
    type = fields.String(
        allow_none=True,
        validate=validate.Length(max=32),
        metadata={"description": "inbound, outbound, queue (logged); internal, fax, conf"},
    )
    cid_num = Text(metadata={"description": "Caller id number (the customer on inbound/queue)"})
    cid_name = Text(max_length=128)
    dst_num = Text(metadata={"description": "Dialed number (the customer on outbound)"})
    src_user_id = Text(metadata={"description": "The agent on outbound calls"})
    dst_user_id = Text(metadata={"description": "The agent on inbound and queue calls"})
    src_device_id = Text()
    dst_device_id = Text()
    user_id = Text(metadata={"description": "The agent of agent:status, agent:checkin, -checkout"})
    pause_id = Text(metadata={"description": "agent:status: 0 available, any other paused"})
    durationms = _milliseconds("Whole call, milliseconds")
    billms = _milliseconds("Talk time (answer to hang-up), milliseconds")
    hangup_cause = fields.String(allow_none=True, validate=validate.Length(max=64))
    recording_url = fields.String(allow_none=True, validate=validate.Length(max=2048))

    @validates_schema
    def _call_end_has_what_a_log_needs(self, data, **kwargs):
        """A ``call:end`` needs its type; one of a logged type (inbound, outbound, queue) also its
        ``id`` and ``ts``. Other types (internal, fax, conf) are accepted and ignored (contract
        section 4), so they need nothing more."""
        if data.get("event") != "call:end":
            return
        needed = ("id", "ts", "type") if data.get("type") in PBX_LOGGED_TYPES else ("type",)
        missing = [name for name in needed if data.get(name) in (None, "")]
        if missing:
            raise ValidationError({name: ["Missing data for required field."] for name in missing})


class IbizfonePushSchema(Schema):
    """The IVR's call-log push (query string or form body)."""

    class Meta:
        unknown = EXCLUDE

    calllogid = Text(max_length=128, required=True, validate=Key)
    callnumber = Text(required=True, validate=validate.Length(min=1))
    date = fields.Date(required=True, format="%Y-%m-%d", metadata={"example": "2025-07-05"})
    time = fields.Time(
        required=True,
        format="%H:%M:%S",
        metadata={"example": "10:15:22", "description": "Call start, local to CTI_TIMEZONE"},
    )
    callstatus = CallStatus(required=True, metadata={"example": "ANSWER"})
    agentnumber = Text()
    ivrduration = Duration(metadata={"description": "Seconds or hh:mm:ss before the agent"})
    callduration = Duration(metadata={"description": "Seconds or hh:mm:ss of conversation"})
    state = Text(max_length=128)
    ibizfonenumber = Text()
    recordingurl = fields.String(validate=validate.Length(max=2048))
    department = Text(max_length=128)


class AcceptedSchema(Schema):
    accepted = fields.Boolean(required=True, metadata={"example": True})


# the journal -------------------------------------------------------------------------------------


class JournalQuerySchema(RegionSchema):
    status = fields.String(validate=validate.OneOf(STATUSES))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))
    cursor = fields.String(
        validate=validate.Length(max=32), metadata={"description": "`next` of the previous page"}
    )
    agent = Agent(metadata={"description": "Only the calls whose log names this agent"})


class LegSchema(Schema):
    id = fields.String(required=True, metadata={"description": "The leg's id"})
    agent = fields.String(
        allow_none=True, metadata={"description": "The extension of the agent it rang"}
    )
    billms = fields.Integer(required=True, metadata={"description": "Talk time, milliseconds"})


class JournalEntrySchema(Schema):
    id = fields.Integer(required=True)
    key = fields.String(required=True, metadata={"description": "The source's call id"})
    source = fields.String(required=True, metadata={"description": "pbx, ibizfone or backfill"})
    status = fields.String(required=True, metadata={"description": "pending, delivered, failed"})
    attempts = fields.Integer(required=True)
    last_error = fields.String(allow_none=True)
    created_at = fields.Function(lambda e: utc_iso(e.created_at), metadata={"format": "date-time"})
    delivered_at = fields.Function(
        lambda e: utc_iso(e.delivered_at), allow_none=True, metadata={"format": "date-time"}
    )
    call_log = fields.Dict(metadata={"description": "The body sent to SwitchTransact /calls/log"})
    recording_url = fields.String(allow_none=True)
    legs = fields.List(
        fields.Nested(LegSchema),
        metadata={"description": "The cc_agent legs of the call; [] for the other sources"},
    )


class JournalPageSchema(Schema):
    entries = fields.List(fields.Nested(JournalEntrySchema), required=True)
    next = fields.String(allow_none=True, metadata={"description": "Cursor of the next page"})
