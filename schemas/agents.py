"""Agent status, calls in progress, leads and the IVR schedule: requests and answers."""

from __future__ import annotations

import re
from datetime import time

from marshmallow import ValidationError, fields, post_load, validate, validates_schema

from .fields import Agent, PhoneNumber, RegionSchema, Schema

# Upstream ids end up in upstream paths and queries: keep them plain.
PlainId = validate.Regexp(
    r"^[A-Za-z0-9_.:-]{1,128}\Z", error="Must be 1-128 letters, digits, '_', '.', ':' or '-'."
)
# Result codes and notes go out in a query string (encoded); refuse control characters only.
ResultCode = validate.Regexp(
    r"^[^\x00-\x1f\x7f]{1,64}\Z", error="Must be 1-64 printable characters."
)
Notes = validate.Regexp(r"^[^\x00-\x08\x0b-\x1f\x7f]{0,1000}\Z", error="At most 1000 characters.")
STATUSES = ("available", "paused", "offline")
DAYS = ("Daily", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)\Z")


def _nullable(field_class=fields.String, **kwargs):
    """An answer field that is ``null`` when the upstream did not give it."""
    return field_class(allow_none=True, dump_default=None, **kwargs)


# path parameters ---------------------------------------------------------------------------------


class AgentPathSchema(RegionSchema):
    extension = Agent(required=True)


class CallPathSchema(Schema):
    call_id = fields.String(
        required=True, validate=PlainId, metadata={"description": "The upstream's call id"}
    )


class LeadPathSchema(Schema):
    lead_id = fields.String(
        required=True, validate=PlainId, metadata={"description": "The upstream's lead id"}
    )


class HolidayPathSchema(Schema):
    day = fields.Date(
        required=True, format="%Y-%m-%d", metadata={"description": "The holiday, YYYY-MM-DD"}
    )


# agents ------------------------------------------------------------------------------------------


class AgentStatusSchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    pause_id = fields.Integer(
        strict=True,
        validate=validate.Range(min=1),
        metadata={"description": "Pause reason (cc_agent); only with status paused; default 1"},
    )

    @validates_schema
    def _pause_only_when_paused(self, data, **kwargs):
        if data.get("pause_id") is not None and data.get("status") != "paused":
            raise ValidationError("Only a paused agent has a pause id.", "pause_id")


class AgentStatusAnswerSchema(Schema):
    agent = fields.String(required=True)
    status = fields.String(required=True)
    pause_id = _nullable(fields.Integer, metadata={"description": "The pause sent upstream"})
    provider = fields.String(required=True)
    check_in_number = fields.String(
        metadata={"description": "cc_agent: the number the agent dials to finish checking in"}
    )


class AgentQueuesSchema(Schema):
    queue_ids = fields.List(
        fields.Integer(strict=True, validate=validate.Range(min=0)),
        required=True,
        validate=validate.Length(max=200),
        metadata={"description": "The queues the agent is in afterwards; [] leaves them all"},
    )


class AgentQueuesAnswerSchema(AgentQueuesSchema):
    agent = fields.String(required=True)
    provider = fields.String(required=True)


class AgentQueueSchema(Schema):
    queue_id = fields.Integer(required=True, metadata={"description": "For PUT .../queues"})
    name = _nullable(metadata={"description": "The provider's name of the queue"})
    joined = fields.Boolean(required=True, metadata={"description": "The agent is in it now"})


class AgentQueueListSchema(Schema):
    agent = fields.String(required=True)
    queues = fields.List(
        fields.Nested(AgentQueueSchema),
        required=True,
        metadata={"description": "The queues the agent may join, and those it is in"},
    )
    provider = fields.String(required=True)


class WrapupSchema(Schema):
    seconds = fields.Integer(
        strict=True,
        validate=validate.Range(min=0, max=86400),
        metadata={"description": "Wrap-up from now; omitted: the agent's default wrap-up time"},
    )


class WrapupAnswerSchema(Schema):
    agent = fields.String(required=True)
    seconds = _nullable(fields.Integer)
    provider = fields.String(required=True)


class ActiveCallSchema(Schema):
    call_id = fields.String(required=True)
    start_time = _nullable()
    state = _nullable(fields.Integer)
    status = _nullable(fields.Integer)
    customer_name = _nullable()
    customer_name2 = _nullable()
    phone_number = _nullable(metadata={"description": "E.164 when it parses, else as given"})
    recording_state = _nullable(fields.Integer)


class ActiveCallsSchema(Schema):
    calls = fields.List(fields.Nested(ActiveCallSchema), required=True)


# calls in progress -------------------------------------------------------------------------------


class CallAgentSchema(RegionSchema):
    agent = Agent(required=True)


class CallAnswerSchema(Schema):
    """What an answer about a call in progress always says: the call, its agent, the provider."""

    call_id = fields.String(required=True)
    agent = fields.String(required=True)
    provider = fields.String(required=True)


class CallActionAnswerSchema(CallAnswerSchema):
    action = fields.String(required=True, metadata={"example": "hold"})


class DisposeSchema(CallAgentSchema):
    result_code = fields.String(required=True, validate=ResultCode)


class DisposeAnswerSchema(CallActionAnswerSchema):
    result_code = fields.String(required=True)


class StrictBoolean(fields.Boolean):
    """JSON ``true`` or ``false`` only (``0`` and ``"yes"`` are refused)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class RecordingSchema(CallAgentSchema):
    recording = StrictBoolean(required=True, metadata={"description": "false stops it"})


class RecordingAnswerSchema(CallAnswerSchema):
    recording = fields.Boolean(required=True)


class AgentQuerySchema(RegionSchema):
    agent = Agent(required=True)


class ResultCodeSchema(Schema):
    code = fields.String(required=True)
    description = _nullable()
    result_code_id = _nullable(fields.Integer)
    is_success = _nullable(fields.Boolean)
    is_callback = _nullable(fields.Boolean)
    is_call_again = _nullable(fields.Boolean)
    is_transfer = _nullable(fields.Boolean)
    is_agent_viewable = _nullable(fields.Boolean)
    is_system_result_code = _nullable(fields.Boolean)
    sales = _nullable(fields.Integer)
    status_id = _nullable(fields.Integer)
    success_type = _nullable(fields.Integer)


class ResultCodesSchema(Schema):
    result_codes = fields.List(fields.Nested(ResultCodeSchema), required=True)


# leads -------------------------------------------------------------------------------------------


class LeadPhoneSchema(Schema):
    lead_phone_id = _nullable(metadata={"description": "For PUT /api/v1/calls/{call_id}/lead"})
    lead_id = _nullable()
    phone_number = _nullable(metadata={"description": "E.164 when it parses, else as given"})
    record_type = _nullable()
    record_type_id = _nullable(fields.Integer)


class LeadPhonesSchema(Schema):
    lead_id = fields.String(required=True)
    phones = fields.List(fields.Nested(LeadPhoneSchema), required=True)


class ChangeLeadSchema(CallAgentSchema):
    lead_phone_id = fields.String(required=True, validate=PlainId)


class ChangeLeadAnswerSchema(CallAnswerSchema):
    lead_phone_id = fields.String(required=True)


class CreateLeadSchema(RegionSchema):
    agent = Agent(required=True)
    phone = PhoneNumber(required=True, metadata={"description": "The new lead's number"})


class CreateLeadAnswerSchema(Schema):
    call_id = fields.String(required=True)
    agent = fields.String(required=True)
    phone = fields.String(required=True, metadata={"description": "E.164"})
    lead_id = _nullable(metadata={"description": "The new lead, when the upstream says"})
    provider = fields.String(required=True)


class ConnectCallsSchema(CallAgentSchema):
    other_call_id = fields.String(required=True, validate=PlainId)
    result_code = fields.String(required=True, validate=ResultCode)
    other_result_code = fields.String(required=True, validate=ResultCode)
    notes = fields.String(validate=Notes)
    other_notes = fields.String(validate=Notes)
    sales = fields.Integer(strict=True, validate=validate.Range(min=0))
    other_sales = fields.Integer(strict=True, validate=validate.Range(min=0))


class ConnectCallsAnswerSchema(Schema):
    call_id = fields.String(required=True)
    other_call_id = fields.String(required=True)
    agent = fields.String(required=True)
    action = fields.String(required=True, metadata={"example": "connect"})
    provider = fields.String(required=True)


# schedule ----------------------------------------------------------------------------------------


class ClockTime(fields.String):
    """``HH:MM`` on the 24-hour clock, loaded as a ``datetime.time``."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        match = _CLOCK.match(text.strip())
        if not match:
            raise ValidationError("Must be HH:MM on the 24-hour clock, e.g. 17:30.")
        return time(int(match.group(1)), int(match.group(2)))


class OfficeHoursSchema(Schema):
    day = fields.String(
        required=True,
        validate=validate.OneOf([*DAYS, *(d.lower() for d in DAYS)]),
        metadata={"description": "Daily or a weekday, e.g. Monday"},
    )
    start = ClockTime(required=True, metadata={"example": "09:00"})
    end = ClockTime(required=True, metadata={"example": "17:30"})

    @validates_schema
    def _start_before_end(self, data, **kwargs):
        if "start" in data and "end" in data and data["start"] >= data["end"]:
            raise ValidationError("Must be later than start.", "end")

    @post_load
    def _capitalise(self, data, **kwargs):
        return {**data, "day": data["day"].capitalize()}


class OfficeHoursAnswerSchema(Schema):
    day = fields.String(required=True)
    start = fields.String(required=True, metadata={"example": "09:00"})
    end = fields.String(required=True, metadata={"example": "17:30"})
    provider = fields.String(required=True)


class HolidayAnswerSchema(Schema):
    date = fields.String(required=True, metadata={"example": "2025-12-25"})
    holiday = fields.Boolean(required=True)
    provider = fields.String(required=True)
