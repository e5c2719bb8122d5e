"""The supervisor's board: every agent's status, call in progress and calls of today."""

from __future__ import annotations

from marshmallow import fields, validate

from .fields import Schema

STATUSES = ("available", "paused", "offline", "unknown")


class BoardCallSchema(Schema):
    call_id = fields.String(required=True, metadata={"description": "The call's id (call_id)"})
    direction = fields.String(required=True, validate=validate.OneOf(("inbound", "outbound")))
    number = fields.String(
        required=True, allow_none=True, metadata={"description": "The customer's number, E.164"}
    )
    state = fields.String(required=True, validate=validate.OneOf(("ringing", "talking")))
    since = fields.String(
        required=True,
        metadata={"format": "date-time", "description": "When it began ringing or talking (UTC)"},
    )


class BoardTodaySchema(Schema):
    """The journal's call logs naming the agent that started today (in CTI_TIMEZONE)."""

    calls = fields.Integer(required=True)
    answered = fields.Integer(required=True)
    missed = fields.Integer(required=True)
    talk_seconds = fields.Integer(required=True)


class BoardAgentSchema(Schema):
    """One agent's entry (also the data of each ``event: board`` of the board's stream)."""

    extension = fields.String(required=True, metadata={"example": "6001"})
    name = fields.String(
        required=True, allow_none=True, metadata={"description": "From the agent directory"}
    )
    status = fields.String(
        required=True,
        validate=validate.OneOf(STATUSES),
        metadata={"description": "The latest status set or pushed; unknown: none yet"},
    )
    call = fields.Nested(
        BoardCallSchema,
        required=True,
        allow_none=True,
        metadata={"description": "The call in progress, or null"},
    )
    today = fields.Nested(BoardTodaySchema, required=True)


class BoardSchema(Schema):
    agents = fields.List(
        fields.Nested(BoardAgentSchema),
        required=True,
        metadata={"description": "The directory's agents and every other one seen, by extension"},
    )
    at = fields.String(required=True, metadata={"format": "date-time"})
