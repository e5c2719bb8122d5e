"""Click-to-call: ``POST /api/v1/calls`` for programs, ``GET /click-to-call`` for CRM links."""

from __future__ import annotations

from flask import Blueprint, make_response, render_template

from schemas.calls import CallCreateSchema, CallSchema, ClickToCallQuerySchema

from ..auth import IN_BODY, IN_QUERY, allow
from ..errors import Busy, Conflict, DestinationNotAllowed, Problem, RateLimited, Unsupported
from ..numbers import parse, pretty
from .common import cti, started_in_time, wants_html
from .idempotency import REPLAYED, idempotent
from .spec import describe

bp = Blueprint("calls", __name__)
# What placing a call refuses beyond what is derived (credentials, input, the dialer).
CALL_PROBLEMS = (DestinationNotAllowed, Conflict, RateLimited, Unsupported, Busy)


def _places_a_call(**declaration):
    """A view that places a call: refused when it waited too long for a thread, idempotent (an
    ``Idempotency-Key`` replays the first answer), answering the call (201, or 200 replayed)."""
    operation = describe(
        tags=["calls"], responses={201: CallSchema, 200: CallSchema}, **declaration
    )
    return lambda view: started_in_time(idempotent(operation(view)))


def _place(**request):
    """The service places the call; a remembered failure it raises again is marked replayed."""
    try:
        return cti().calls.place(**request)
    except Problem as problem:
        if getattr(problem, "replayed", False):
            problem.headers[REPLAYED] = "true"
        raise


def _answer(outcome):
    return outcome.body, outcome.status, {REPLAYED: "true"} if outcome.replayed else {}


@bp.post("/api/v1/calls")
@allow(agent=IN_BODY)
@_places_a_call(body=CallCreateSchema, problems=CALL_PROBLEMS)
def create_call(body):
    """Place a click-to-call: the PBX rings the agent and connects the customer."""
    return _answer(_place(**body))


def _problem_page(problem: Problem):
    """A browser sees a refused click-to-call as a page; anything else as problem+json."""
    if not wants_html():
        return None
    page = render_template("click_to_call.html", problem=problem, call=None)
    response = make_response(page, problem.status)
    response.headers.update(problem.headers)
    return response


@bp.get("/click-to-call")
@allow(agent=IN_QUERY)
@_places_a_call(query=ClickToCallQuerySchema, problems=CALL_PROBLEMS, on_problem=_problem_page)
def click_to_call(query):
    """The same for a link in the CRM: an HTML page for a browser, JSON for anything else."""
    outcome = _place(**query)
    if not wants_html():
        return _answer(outcome)
    display = pretty(parse(outcome.body["to"], cti().settings.default_region))
    page = render_template(
        "click_to_call.html",
        problem=None,
        call=outcome.body,
        display=display,
        replayed=outcome.replayed,
    )
    response = make_response(page, outcome.status)
    if outcome.replayed:
        response.headers[REPLAYED] = "true"
    return response
