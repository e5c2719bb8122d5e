"""Agents and calls in progress: status, queues, wrap-up, active calls, call control and leads.

The path parameters are validated like the body (422 before anything else); what the configured
agent provider cannot do answers 501 once the input is known to be good.
"""

from __future__ import annotations

from flask import Blueprint

from schemas.agents import (
    ActiveCallsSchema,
    AgentPathSchema,
    AgentQuerySchema,
    AgentQueueListSchema,
    AgentQueuesAnswerSchema,
    AgentQueuesSchema,
    AgentStatusAnswerSchema,
    AgentStatusSchema,
    CallActionAnswerSchema,
    CallAgentSchema,
    CallPathSchema,
    ChangeLeadAnswerSchema,
    ChangeLeadSchema,
    ConnectCallsAnswerSchema,
    ConnectCallsSchema,
    CreateLeadAnswerSchema,
    CreateLeadSchema,
    DisposeAnswerSchema,
    DisposeSchema,
    LeadPathSchema,
    LeadPhonesSchema,
    RecordingAnswerSchema,
    RecordingSchema,
    ResultCodesSchema,
    WrapupAnswerSchema,
    WrapupSchema,
)
from schemas.board import BoardAgentSchema

from ..auth import IN_BODY, IN_PATH, IN_QUERY, OWN_AGENT_PATH, allow
from ..errors import Unsupported
from .common import cti
from .spec import describe

bp = Blueprint("agents", __name__)

# What the configured agent provider cannot do (the rest of the problem answers is derived).
PROBLEMS = (Unsupported,)


def _operation(tag, answer, status=200, **inputs):
    """An operation of the agent provider: its ``inputs`` (path, query, body) and one answer."""
    return describe(tags=[tag], responses={status: answer}, problems=PROBLEMS, **inputs)


def _agent_operation(body, answer):
    return _operation("agents", answer, path=AgentPathSchema, body=body)


def _call_operation(body, answer, tag="calls in progress", status=200):
    return _operation(tag, answer, status, path=CallPathSchema, body=body)


# agents ------------------------------------------------------------------------------------------


@bp.put("/api/v1/agents/<extension>/status")
@allow(OWN_AGENT_PATH)
@_agent_operation(AgentStatusSchema, AgentStatusAnswerSchema)
def set_status(extension, body):
    """Set the agent available, paused (with a pause reason on cc_agent) or offline."""
    return cti().agents.set_status(extension, **body)


@bp.get("/api/v1/agents/<extension>/status")
@allow(agent=IN_PATH, supervisor=True)
@describe(
    tags=["agents"],
    path=AgentPathSchema,
    responses={200: BoardAgentSchema},
)
def agent_status(extension):
    """The agent's entry of the board (status, call in progress, calls of today), the same on
    every worker and host; its changes come on the agent's stream as ``event: status``."""
    return cti().board.entry(extension)


@bp.get("/api/v1/agents/<extension>/queues")
@allow(OWN_AGENT_PATH)
@_agent_operation(None, AgentQueueListSchema)
def list_queues(extension):
    """The queues the agent may join (where the provider lists them), each with whether the agent
    is in it."""
    return cti().agents.list_queues(extension)


@bp.put("/api/v1/agents/<extension>/queues")
@allow(OWN_AGENT_PATH)
@_agent_operation(AgentQueuesSchema, AgentQueuesAnswerSchema)
def set_queues(extension, body):
    """Put the agent in exactly these queues."""
    return cti().agents.set_queues(extension, **body)


@bp.post("/api/v1/agents/<extension>/wrapup")
@allow(OWN_AGENT_PATH)
@_agent_operation(WrapupSchema, WrapupAnswerSchema)
def wrapup(extension, body):
    """Start wrap-up for ``seconds`` from now, or the agent's default; the body may be empty."""
    return cti().agents.wrapup(extension, **body)


@bp.get("/api/v1/agents/<extension>/calls")
@allow(OWN_AGENT_PATH)
@_agent_operation(None, ActiveCallsSchema)
def active_calls(extension):
    """The agent's calls in progress."""
    return cti().agents.active_calls(extension)


# calls in progress -------------------------------------------------------------------------------

CALL_ACTION = _call_operation(CallAgentSchema, CallActionAnswerSchema)


@bp.post("/api/v1/calls/<call_id>/hangup")
@allow(agent=IN_BODY)
@CALL_ACTION
def hangup(call_id, body):
    """Hang up the call; the agent goes to wrap-up."""
    return cti().agents.call_action(call_id, "hangup", **body)


@bp.post("/api/v1/calls/<call_id>/hold")
@allow(agent=IN_BODY)
@CALL_ACTION
def hold(call_id, body):
    """Put the call on hold."""
    return cti().agents.call_action(call_id, "hold", **body)


@bp.post("/api/v1/calls/<call_id>/retrieve")
@allow(agent=IN_BODY)
@CALL_ACTION
def retrieve(call_id, body):
    """Take the call back from hold."""
    return cti().agents.call_action(call_id, "retrieve", **body)


@bp.post("/api/v1/calls/<call_id>/dispose")
@allow(agent=IN_BODY)
@_call_operation(DisposeSchema, DisposeAnswerSchema)
def dispose(call_id, body):
    """Close the call with a result code (see GET /api/v1/result-codes); hangs it up if needed."""
    return cti().agents.dispose(call_id, **body)


@bp.put("/api/v1/calls/<call_id>/recording")
@allow(agent=IN_BODY)
@_call_operation(RecordingSchema, RecordingAnswerSchema)
def recording(call_id, body):
    """Stop the recording (while a card number is read) or start it again."""
    return cti().agents.set_recording(call_id, **body)


@bp.get("/api/v1/result-codes")
@allow(agent=IN_QUERY)
@_operation("calls in progress", ResultCodesSchema, query=AgentQuerySchema)
def result_codes(query):
    """The result codes an agent may dispose a call with (the dispose picker)."""
    return cti().agents.result_codes(**query)


# leads -------------------------------------------------------------------------------------------


@bp.get("/api/v1/leads/<lead_id>/phones")
@allow(agent=IN_QUERY)
@_operation("leads", LeadPhonesSchema, path=LeadPathSchema, query=AgentQuerySchema)
def lead_phones(lead_id, query):
    """The phones of a lead; a ``lead_phone_id`` moves a call to that lead."""
    return cti().agents.lead_phones(lead_id, **query)


@bp.put("/api/v1/calls/<call_id>/lead")
@allow(agent=IN_BODY)
@_call_operation(ChangeLeadSchema, ChangeLeadAnswerSchema, tag="leads")
def change_lead(call_id, body):
    """Attach the call in progress to the lead of a lead phone."""
    return cti().agents.change_lead(call_id, **body)


@bp.post("/api/v1/calls/<call_id>/lead")
@allow(agent=IN_BODY)
@_call_operation(CreateLeadSchema, CreateLeadAnswerSchema, tag="leads", status=201)
def create_lead(call_id, body):
    """Create a lead with this phone number and attach the call in progress to it."""
    return cti().agents.create_lead(call_id, **body)


@bp.post("/api/v1/calls/<call_id>/connect")
@allow(agent=IN_BODY)
@_call_operation(ConnectCallsSchema, ConnectCallsAnswerSchema, tag="leads")
def connect_calls(call_id, body):
    """Bridge this call with another call in progress (a warm transfer), disposing both."""
    return cti().agents.connect_calls(call_id, **body)
