"""Click-to-call: ``POST /api/v1/calls`` for programs, ``GET /click-to-call`` for CRM links."""

from __future__ import annotations

import logging
import re

from flask import Blueprint, make_response, render_template, request

from schemas.calls import CallCreateSchema, CallSchema, ClickToCallQuerySchema

from ..auth import IN_BODY, IN_QUERY, allow
from ..errors import (
    Busy,
    Conflict,
    DestinationNotAllowed,
    Problem,
    RateLimited,
    Unsupported,
    failures_as_page,
)
from ..numbers import parse, pretty
from .common import cti, started_in_time, wants_html
from .idempotency import REPLAYED, idempotent
from .spec import describe

log = logging.getLogger(__name__)
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


# A lone UTF-16 surrogate: what a query's bytes that are not UTF-8 become (``runtime/wsgi.py``),
# and what no page can be encoded with.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _page(status: int, **context):
    """The click-to-call page, always encodable: text that is not UTF-8 (a field name the query
    spelled with bad bytes, say) reads as U+FFFD, as the JSON answer escapes it."""
    page = render_template("click_to_call.html", **context)
    return make_response(_LONE_SURROGATE.sub("\ufffd", page), status)


def _problem_page(problem: Problem):
    """A browser sees a refused click-to-call as a page, whatever refused it: the credential check
    before the view, the checks around it (``Idempotency-Key``, the queue wait), the view. The
    problem's status and headers (``Retry-After``...), its words as problem+json has them (the
    detail scrubbed). Anything else, or another route, is problem+json (None)."""
    if request.endpoint != f"{bp.name}.{click_to_call.__name__}" or not wants_html():
        return None
    try:
        response = _page(problem.status, problem=problem.to_dict(), call=None)
    except Exception:  # never a 500 for a page: the same problem as problem+json
        log.exception("the click-to-call error page failed")
        return None
    response.headers.update(problem.headers)
    return response


# One rule for every failure of the link, raised wherever: ``errors.render`` answers with it.
bp.record_once(lambda state: failures_as_page(state.app, _problem_page))


@bp.get("/click-to-call")
@allow(agent=IN_QUERY)
@_places_a_call(query=ClickToCallQuerySchema, problems=CALL_PROBLEMS)
def click_to_call(query):
    """The same for a link in the CRM: an HTML page for a browser, JSON for anything else."""
    outcome = _place(**query)
    if not wants_html():
        return _answer(outcome)
    display = pretty(parse(outcome.body["to"], cti().settings.default_region))
    response = _page(
        outcome.status,
        problem=None,
        call=outcome.body,
        display=display,
        replayed=outcome.replayed,
    )
    if outcome.replayed:
        response.headers[REPLAYED] = "true"
    return response
