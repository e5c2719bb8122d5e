"""Click-to-call: ``POST /api/v1/calls`` for programs, ``GET /click-to-call`` for CRM links."""

from __future__ import annotations

from flask import Blueprint, make_response, render_template

from schemas.calls import CallCreateSchema, CallSchema, ClickToCallQuerySchema

from ..auth import IN_BODY, IN_QUERY, allow
from ..errors import Problem
from ..idempotency import REPLAYED, idempotent
from ..numbers import parse, pretty
from .common import cti, json_body, load, query_args, started_in_time, wants_html
from .spec import describe

bp = Blueprint("calls", __name__)
call_schema = CallSchema()


def _answer(outcome):
    response = make_response(call_schema.dump(outcome.body), outcome.status)
    if outcome.replayed:
        response.headers[REPLAYED] = "true"
    return response


@bp.post("/api/v1/calls")
@allow(agent=IN_BODY)
@describe(
    tags=["calls"],
    body=CallCreateSchema,
    responses={201: CallSchema, 200: CallSchema},
    problems=(401, 403, 409, 413, 422, 429, 501, 502, 503, 504),
)
@started_in_time
@idempotent
def create_call():
    """Place a click-to-call: the PBX rings the agent and connects the customer."""
    request = load(cti().schemas.call_create, json_body())
    return _answer(cti().calls.place(**request))


@bp.get("/click-to-call")
@allow(agent=IN_QUERY)
@describe(
    tags=["calls"],
    query=ClickToCallQuerySchema,
    responses={201: CallSchema, 200: CallSchema},
    problems=(401, 403, 409, 422, 429, 501, 502, 503, 504),
)
@started_in_time
@idempotent
def click_to_call():
    """The same for a link in the CRM: an HTML page for a browser, JSON for anything else."""
    if not wants_html():
        request = load(cti().schemas.click_to_call, query_args())
        return _answer(cti().calls.place(**request))
    try:
        request = load(cti().schemas.click_to_call, query_args())
        outcome = cti().calls.place(**request)
    except Problem as problem:
        page = render_template("click_to_call.html", problem=problem, call=None)
        response = make_response(page, problem.status)
        response.headers.update(problem.headers)
        return response
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
