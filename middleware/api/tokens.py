"""Tokens: the CRM server, holding a full key, issues each of its signed-in agents a token that acts
as that one agent (the ``/agent`` page and the extension), and each supervisor a token that watches
and follows up (the ``/console``)."""

from __future__ import annotations

from flask import Blueprint

from schemas.agents import AgentPathSchema
from schemas.tokens import AgentTokenSchema, SupervisorTokenRequestSchema, SupervisorTokenSchema

from ..auth import FULL_ONLY, allow
from ..errors import Unsupported
from ..timestamps import utc_iso
from .common import cti
from .spec import describe

bp = Blueprint("tokens", __name__)


@bp.post("/api/v1/agents/<extension>/token")
@allow(FULL_ONLY)
@describe(
    tags=["agents"],
    path=AgentPathSchema,
    responses={201: AgentTokenSchema},
    problems=(Unsupported,),
)
def issue_token(extension):
    """Issue an agent token, valid for CTI_TOKEN_TTL seconds (a full API key only)."""
    token, expires = cti().credentials.issue(extension)
    return {"token": token, "agent": extension, "expires_at": utc_iso(expires)}


@bp.post("/api/v1/supervisors/token")
@allow(FULL_ONLY)
@describe(
    tags=["supervisors"],
    body=SupervisorTokenRequestSchema,
    responses={201: SupervisorTokenSchema},
    problems=(Unsupported,),
)
def issue_supervisor_token(body):
    """Issue a supervisor token for the console, valid for CTI_TOKEN_TTL seconds (a full key only)."""
    token, expires = cti().credentials.issue_supervisor(body["name"])
    return {"token": token, "name": body["name"], "expires_at": utc_iso(expires)}
