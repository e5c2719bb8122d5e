"""Agents and calls in progress: status, queues, wrap-up, active calls, call control and leads.

The path parameters are validated like the body (422 before anything else); what the configured
agent provider cannot do answers 501 once the input is known to be good.
"""

from __future__ import annotations

from flask import Blueprint, request

from schemas.agents import (
    ActiveCallsSchema,
    AgentPathSchema,
    AgentQuerySchema,
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

from ..auth import IN_BODY, IN_QUERY, OWN_AGENT_PATH, allow
from .common import cti, json_body, load, query_args
from .spec import describe

bp = Blueprint("agents", __name__)

UPSTREAM = (502, 503, 504)
AGENT_PATH = {"extension": "Agent extension (see CTI_AGENTS_FILE)"}
CALL_PATH = {"call_id": "The upstream's call id"}

agent_path, call_path, lead_path = AgentPathSchema(), CallPathSchema(), LeadPathSchema()
status_in, status_out = AgentStatusSchema(), AgentStatusAnswerSchema()
queues_in, queues_out = AgentQueuesSchema(), AgentQueuesAnswerSchema()
wrapup_in, wrapup_out = WrapupSchema(), WrapupAnswerSchema()
calls_out = ActiveCallsSchema()
call_agent_in, action_out = CallAgentSchema(), CallActionAnswerSchema()
dispose_in, dispose_out = DisposeSchema(), DisposeAnswerSchema()
recording_in, recording_out = RecordingSchema(), RecordingAnswerSchema()
agent_query, result_codes_out = AgentQuerySchema(), ResultCodesSchema()
lead_phones_out = LeadPhonesSchema()
change_lead_in, change_lead_out = ChangeLeadSchema(), ChangeLeadAnswerSchema()
create_lead_out = CreateLeadAnswerSchema()
connect_in, connect_out = ConnectCallsSchema(), ConnectCallsAnswerSchema()


def _extension(extension: str) -> str:
    return load(agent_path, {"extension": extension})["extension"]


def _call_id(call_id: str) -> str:
    return load(call_path, {"call_id": call_id})["call_id"]


def _optional_body() -> dict:
    """An empty body is ``{}``; anything else must be a JSON object."""
    return json_body() if request.get_data(cache=True).strip() else {}


# agents ------------------------------------------------------------------------------------------


@bp.put("/api/v1/agents/<extension>/status")
@allow(OWN_AGENT_PATH)
@describe(
    tags=["agents"],
    path_params=AGENT_PATH,
    body=AgentStatusSchema,
    responses={200: AgentStatusAnswerSchema},
    problems=(401, 413, 422, 501, *UPSTREAM),
)
def set_status(extension):
    """Set the agent available, paused (with a pause reason on cc_agent) or offline."""
    extension = _extension(extension)
    body = load(status_in, json_body())
    return status_out.dump(cti().agents.set_status(extension, **body))


@bp.put("/api/v1/agents/<extension>/queues")
@allow(OWN_AGENT_PATH)
@describe(
    tags=["agents"],
    path_params=AGENT_PATH,
    body=AgentQueuesSchema,
    responses={200: AgentQueuesAnswerSchema},
    problems=(401, 413, 422, 501, *UPSTREAM),
)
def set_queues(extension):
    """Put the agent in exactly these queues."""
    extension = _extension(extension)
    body = load(queues_in, json_body())
    return queues_out.dump(cti().agents.set_queues(extension, **body))


@bp.post("/api/v1/agents/<extension>/wrapup")
@allow(OWN_AGENT_PATH)
@describe(
    tags=["agents"],
    path_params=AGENT_PATH,
    body=WrapupSchema,
    responses={200: WrapupAnswerSchema},
    problems=(401, 413, 422, 501, *UPSTREAM),
)
def wrapup(extension):
    """Start wrap-up for ``seconds`` from now, or the agent's default; the body may be empty."""
    extension = _extension(extension)
    body = load(wrapup_in, _optional_body())
    return wrapup_out.dump(cti().agents.wrapup(extension, **body))


@bp.get("/api/v1/agents/<extension>/calls")
@allow(OWN_AGENT_PATH)
@describe(
    tags=["agents"],
    path_params=AGENT_PATH,
    responses={200: ActiveCallsSchema},
    problems=(401, 422, 501, *UPSTREAM),
)
def active_calls(extension):
    """The agent's calls in progress."""
    return calls_out.dump(cti().agents.active_calls(_extension(extension)))


# calls in progress -------------------------------------------------------------------------------


def _call_action(call_id: str, action: str):
    call_id = _call_id(call_id)
    body = load(call_agent_in, json_body())
    return action_out.dump(cti().agents.call_action(call_id, action, **body))


_ACTION_DOC = dict(
    tags=["calls in progress"],
    path_params=CALL_PATH,
    body=CallAgentSchema,
    responses={200: CallActionAnswerSchema},
    problems=(401, 413, 422, 501, *UPSTREAM),
)


@bp.post("/api/v1/calls/<call_id>/hangup")
@allow(agent=IN_BODY)
@describe(**_ACTION_DOC)
def hangup(call_id):
    """Hang up the call; the agent goes to wrap-up."""
    return _call_action(call_id, "hangup")


@bp.post("/api/v1/calls/<call_id>/hold")
@allow(agent=IN_BODY)
@describe(**_ACTION_DOC)
def hold(call_id):
    """Put the call on hold."""
    return _call_action(call_id, "hold")


@bp.post("/api/v1/calls/<call_id>/retrieve")
@allow(agent=IN_BODY)
@describe(**_ACTION_DOC)
def retrieve(call_id):
    """Take the call back from hold."""
    return _call_action(call_id, "retrieve")


@bp.post("/api/v1/calls/<call_id>/dispose")
@allow(agent=IN_BODY)
@describe(
    tags=["calls in progress"],
    path_params=CALL_PATH,
    body=DisposeSchema,
    responses={200: DisposeAnswerSchema},
    problems=(401, 413, 422, 501, *UPSTREAM),
)
def dispose(call_id):
    """Close the call with a result code (see GET /api/v1/result-codes); hangs it up if needed."""
    call_id = _call_id(call_id)
    body = load(dispose_in, json_body())
    return dispose_out.dump(cti().agents.dispose(call_id, **body))


@bp.put("/api/v1/calls/<call_id>/recording")
@allow(agent=IN_BODY)
@describe(
    tags=["calls in progress"],
    path_params=CALL_PATH,
    body=RecordingSchema,
    responses={200: RecordingAnswerSchema},
    problems=(401, 413, 422, 501, *UPSTREAM),
)
def recording(call_id):
    """Stop the recording (while a card number is read) or start it again."""
    call_id = _call_id(call_id)
    body = load(recording_in, json_body())
    return recording_out.dump(cti().agents.set_recording(call_id, **body))


@bp.get("/api/v1/result-codes")
@allow(agent=IN_QUERY)
@describe(
    tags=["calls in progress"],
    query=AgentQuerySchema,
    responses={200: ResultCodesSchema},
    problems=(401, 422, 501, *UPSTREAM),
)
def result_codes():
    """The result codes an agent may dispose a call with (the dispose picker)."""
    query = load(agent_query, query_args())
    return result_codes_out.dump(cti().agents.result_codes(**query))


# leads -------------------------------------------------------------------------------------------


@bp.get("/api/v1/leads/<lead_id>/phones")
@allow(agent=IN_QUERY)
@describe(
    tags=["leads"],
    path_params={"lead_id": "The upstream's lead id"},
    query=AgentQuerySchema,
    responses={200: LeadPhonesSchema},
    problems=(401, 422, 501, *UPSTREAM),
)
def lead_phones(lead_id):
    """The phones of a lead; a ``lead_phone_id`` moves a call to that lead."""
    lead_id = load(lead_path, {"lead_id": lead_id})["lead_id"]
    query = load(agent_query, query_args())
    return lead_phones_out.dump(cti().agents.lead_phones(lead_id, **query))


@bp.put("/api/v1/calls/<call_id>/lead")
@allow(agent=IN_BODY)
@describe(
    tags=["leads"],
    path_params=CALL_PATH,
    body=ChangeLeadSchema,
    responses={200: ChangeLeadAnswerSchema},
    problems=(401, 413, 422, 501, *UPSTREAM),
)
def change_lead(call_id):
    """Attach the call in progress to the lead of a lead phone."""
    call_id = _call_id(call_id)
    body = load(change_lead_in, json_body())
    return change_lead_out.dump(cti().agents.change_lead(call_id, **body))


@bp.post("/api/v1/calls/<call_id>/lead")
@allow(agent=IN_BODY)
@describe(
    tags=["leads"],
    path_params=CALL_PATH,
    body=CreateLeadSchema,
    responses={201: CreateLeadAnswerSchema},
    problems=(401, 413, 422, 501, *UPSTREAM),
)
def create_lead(call_id):
    """Create a lead with this phone number and attach the call in progress to it."""
    call_id = _call_id(call_id)
    body = load(cti().schemas.create_lead, json_body())
    return create_lead_out.dump(cti().agents.create_lead(call_id, **body)), 201


@bp.post("/api/v1/calls/<call_id>/connect")
@allow(agent=IN_BODY)
@describe(
    tags=["leads"],
    path_params=CALL_PATH,
    body=ConnectCallsSchema,
    responses={200: ConnectCallsAnswerSchema},
    problems=(401, 413, 422, 501, *UPSTREAM),
)
def connect_calls(call_id):
    """Bridge this call with another call in progress (a warm transfer), disposing both."""
    call_id = _call_id(call_id)
    body = load(connect_in, json_body())
    return connect_out.dump(cti().agents.connect_calls(call_id, **body))
