"""The screen-pop stream."""

from marshmallow import fields, validate

from .contacts import NumberInfoSchema
from .fields import Schema


class EventsQuerySchema(Schema):
    last_event_id = fields.Integer(
        strict=False,
        validate=validate.Range(min=0, max=2**63 - 1),  # event ids are 64-bit
        metadata={"description": "Resume after this event id (or send the Last-Event-ID header)"},
    )
    api_key = fields.String(
        load_only=True, metadata={"description": "EventSource cannot send headers"}
    )


class ScreenPopSchema(Schema):
    """The data of each ``event: screen-pop`` message."""

    event_id = fields.Integer(required=True)
    call_id = fields.String(allow_none=True)
    agent = fields.String(allow_none=True)
    cid_name = fields.String(allow_none=True)
    ts = fields.Raw(allow_none=True)
    found = fields.Boolean(required=True)
    phone = fields.String(allow_none=True, metadata={"description": "E.164"})
    contact = fields.Dict(allow_none=True)
    cached = fields.Boolean()
    stale = fields.Boolean()
    screen_pop_url = fields.String(allow_none=True)
    number_info = fields.Nested(
        NumberInfoSchema, allow_none=True, metadata={"description": "As the lookup answers it"}
    )
    error = fields.String(metadata={"description": "The lookup's error code, when it failed"})
