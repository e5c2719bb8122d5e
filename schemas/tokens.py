"""Agent tokens: what ``POST /api/v1/agents/{extension}/token`` answers."""

from marshmallow import fields

from .fields import Schema


class AgentTokenSchema(Schema):
    token = fields.String(
        required=True,
        metadata={
            "description": "Present as X-API-Key, Bearer or api_key; acts as this agent only"
        },
    )
    agent = fields.String(required=True, metadata={"example": "6000"})
    expires_at = fields.String(
        required=True,
        metadata={"format": "date-time", "description": "ISO 8601 UTC, CTI_TOKEN_TTL from now"},
    )
