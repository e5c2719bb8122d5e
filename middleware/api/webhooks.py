"""Webhooks: the PBX's event push and the IVR's call-log push, answered once the call is stored.

Both take the webhook secret (``X-Webhook-Token`` or ``?token=``). The PBX answers problem+json on
errors like every endpoint; the IVR reads the text of the answer, so its endpoint answers
``text/plain`` always: ``Accepted`` (200), ``Invalid Data`` (400), and for a missing or wrong
secret ``Unauthorized`` (401).
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response
from werkzeug.exceptions import HTTPException

from schemas.journal import AcceptedSchema, IbizfonePushSchema, PbxEventSchema

from ..auth import webhook
from ..errors import Problem
from .common import cti, encoded, json_answer
from .spec import FORM_OR_JSON, QUERY_FORM_OR_JSON, describe

log = logging.getLogger(__name__)

bp = Blueprint("webhooks", __name__)
ivr = Blueprint("ivr_webhook", __name__)
ACCEPTED = encoded(AcceptedSchema().dump({"accepted": True}))


@bp.post("/api/v1/webhooks/pbx")
@describe(
    tags=["webhooks"],
    body=PbxEventSchema,
    body_from=FORM_OR_JSON,
    responses={202: AcceptedSchema},
)
@webhook
def pbx(body):
    """cc_agent event push (JSON or form): leg events are journaled, ``call:ring`` pops a screen."""
    cti().journal.pbx_event(body)
    return json_answer(ACCEPTED, 202)


@ivr.route("/api/v1/webhooks/ibizfone", methods=["GET", "POST"])
@describe(
    tags=["webhooks"],
    body=IbizfonePushSchema,
    body_from=QUERY_FORM_OR_JSON,
    # Every answer is text (``_ivr_problem``): a refused push is 400, a store down 503.
    responses={200: "text/plain", 400: "text/plain", 401: "text/plain", 503: "text/plain"},
    on_problem=lambda problem: _refused(problem) if problem.status == 422 else None,
)
@webhook
def ibizfone(body):
    """The IVR's call-log push, in the query string or a form body; answers plain text."""
    cti().journal.record_ibizfone(body)
    return _text("Accepted", 200)


def _refused(problem: Problem) -> Response:
    log.info("ibizfone push refused: %s", sorted(problem.errors or ()))
    return _text("Invalid Data", 400)


def _text(body: str, status: int) -> Response:
    return Response(body, status=status, mimetype="text/plain")


@ivr.errorhandler(Problem)
def _ivr_problem(problem: Problem):
    if problem.status == 401:
        return _text("Unauthorized", 401)
    if problem.status < 500:
        return _text("Invalid Data", 400)
    log.warning("ibizfone push: %s %s", problem.status, problem.code)
    return _text("Failure", problem.status)


@ivr.errorhandler(HTTPException)
def _ivr_http(exc: HTTPException):
    """What the protocol refuses before the push is read (a body over the limit) is
    ``Invalid Data`` (400), like any push that is not stored (contract section 4)."""
    status = exc.code or 400
    if status < 500:
        return _text("Invalid Data", 400)
    return _text("Failure", status)


@ivr.errorhandler(Exception)
def _ivr_unexpected(exc: Exception):
    log.exception("ibizfone push: unexpected error")
    return _text("Failure", 500)
