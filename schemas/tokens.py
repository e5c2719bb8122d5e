"""Tokens: what ``POST /api/v1/agents/{extension}/token`` and ``/api/v1/supervisors/token`` take
and answer."""

from marshmallow import fields, validate

from .fields import Schema

EXPIRES_AT = {"format": "date-time", "description": "ISO 8601 UTC, CTI_TOKEN_TTL from now"}


def _token(acts: str) -> fields.String:
    """The token field of an answer; ``acts``: what the token may do."""
    return fields.String(
        required=True,
        metadata={"description": f"Present as X-API-Key, Bearer or api_key; {acts}"},
    )


class AgentTokenSchema(Schema):
    token = _token("acts as this agent only")
    agent = fields.String(required=True, metadata={"example": "6000"})
    expires_at = fields.String(required=True, metadata=EXPIRES_AT)


class SupervisorTokenRequestSchema(Schema):
    name = fields.String(
        required=True,
        validate=validate.Length(min=1, max=100),
        metadata={"description": "Who holds the token (shown in the console)", "example": "Thandi"},
    )


class SupervisorTokenSchema(Schema):
    token = _token("watches and follows up only")
    name = fields.String(required=True, metadata={"example": "Thandi"})
    expires_at = fields.String(required=True, metadata=EXPIRES_AT)
