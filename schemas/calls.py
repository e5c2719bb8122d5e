"""Click-to-call requests and answers."""

from marshmallow import fields, validate

from .fields import Agent, PhoneNumber, RegionSchema, Schema

LeadId = validate.Regexp(
    r"^[A-Za-z0-9_-]{1,64}\Z", error="Must be 1-64 letters, digits, '_' or '-'."
)


class CallCreateSchema(RegionSchema):
    to = PhoneNumber(required=True, metadata={"description": "Customer number, any common form"})
    agent = Agent(required=True)
    lead_id = fields.String(validate=LeadId, metadata={"description": "Upstream lead id"})
    caller_id = PhoneNumber(metadata={"description": "Caller id to present (cc_agent)"})


class ClickToCallQuerySchema(CallCreateSchema):
    """The same, as query parameters of a CRM link; ``api_key`` is the credential."""

    api_key = fields.String(load_only=True)


class CallSchema(Schema):
    call_id = fields.String(required=True, metadata={"description": "The upstream's call id"})
    status = fields.String(required=True, metadata={"example": "initiated"})
    to = fields.String(required=True, metadata={"description": "E.164", "example": "+27721234567"})
    dialed = fields.String(required=True, metadata={"description": "As sent upstream"})
    agent = fields.String(required=True)
    provider = fields.String(required=True)
