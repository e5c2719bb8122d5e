"""Callbacks: the numbers whose call was missed, to be called back (contract section 4)."""

from __future__ import annotations

from datetime import UTC, datetime

from marshmallow import fields, validate

from .fields import Agent, RegionSchema, Schema

STATUSES = ("open", "assigned", "done")


def _iso(timestamp: float | None) -> str | None:
    """ISO 8601 UTC to the millisecond (two misses in one second still show which came last)."""
    if timestamp is None:
        return None
    moment = datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")
    return moment.replace("+00:00", "Z")


def _time(attribute: str, description: str, *, nullable: bool = True):
    return fields.Function(
        lambda callback: _iso(getattr(callback, attribute)),
        allow_none=nullable,
        metadata={"format": "date-time", "description": description},
    )


class CallbackQuerySchema(RegionSchema):
    status = fields.String(
        validate=validate.OneOf(STATUSES),
        metadata={"description": "Only callbacks of this status (default: every status)"},
    )
    agent = Agent(metadata={"description": "Only the callbacks assigned to this agent"})
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))
    cursor = fields.String(
        validate=validate.Length(min=1, max=64),
        metadata={"description": "`next` of the previous page"},
    )


class AssignSchema(RegionSchema):
    agent = Agent(
        required=True,
        allow_none=True,
        metadata={"description": "The agent's extension, or null to open the callback again"},
    )


class CallbackSchema(Schema):
    id = fields.Integer(required=True)
    number = fields.String(
        required=True, metadata={"description": "E.164", "example": "+27721234567"}
    )
    name = fields.String(
        allow_none=True, metadata={"description": "The missed call log's Name, or null"}
    )
    status = fields.String(required=True, metadata={"description": "open, assigned or done"})
    agent = fields.String(
        allow_none=True, metadata={"description": "The extension it is assigned to, or null"}
    )
    missed = fields.Integer(required=True, metadata={"description": "Missed calls it counts"})
    first_missed_at = _time("first_missed_at", "When its first miss was logged", nullable=False)
    last_missed_at = _time("last_missed_at", "When its latest miss was logged", nullable=False)
    done_at = _time("done_at", "When it was done, or null")
    done_by = fields.String(
        allow_none=True,
        metadata={"description": "The agent who called or answered the number, or null"},
    )
    done_how = fields.String(
        allow_none=True, metadata={"description": "called, answered or dismissed; null until done"}
    )


class CallbackPageSchema(Schema):
    callbacks = fields.List(fields.Nested(CallbackSchema), required=True)
    next = fields.String(allow_none=True, metadata={"description": "Cursor of the next page"})
