"""Webhooks: the PBX's event push and the IVR's call-log push, answered once the call is stored.

Both take the webhook secret (``X-Webhook-Token`` or ``?token=``). The PBX answers problem+json on
errors like every endpoint; the IVR reads the text of the answer, so its endpoint answers
``text/plain`` always: ``Accepted`` (200), ``Invalid Data`` (400), and for a missing or wrong
secret ``Unauthorized`` (401).
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, request
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from schemas.journal import AcceptedSchema, IbizfonePushSchema, PbxEventSchema

from ..auth import webhook
from ..errors import Problem, ValidationFailed
from .common import cti, encoded, json_answer, load, parsed_json
from .spec import describe

log = logging.getLogger(__name__)

bp = Blueprint("webhooks", __name__)
ivr = Blueprint("ivr_webhook", __name__)
pbx_schema = PbxEventSchema()
ibizfone_schema = IbizfonePushSchema()
ACCEPTED = encoded(AcceptedSchema().dump({"accepted": True}))


@bp.post("/api/v1/webhooks/pbx")
@describe(
    tags=["webhooks"],
    body=PbxEventSchema,
    responses={202: AcceptedSchema},
    problems=(401, 413, 422),
)
@webhook
def pbx():
    """cc_agent event push (JSON or form): ``call:end`` is journaled, ``call:ring`` pops a screen."""
    event = load(pbx_schema, _pbx_body())
    cti().journal.pbx_event(event)
    return json_answer(ACCEPTED, 202)


FORM_TYPES = frozenset(("application/x-www-form-urlencoded", "multipart/form-data"))


def _pbx_body() -> dict:
    # ``request.form`` is read only for a form: for any other body it sets up the form parser
    # for nothing (about 3% of a JSON webhook's time under load).
    if request.mimetype in FORM_TYPES:
        if request.form:
            return request.form.to_dict()
    data = parsed_json()
    if not isinstance(data, dict):
        raise ValidationFailed(
            "The body must be a JSON object or a form.", errors={"_body": ["Not an event."]}
        )
    return data


@ivr.route("/api/v1/webhooks/ibizfone", methods=["GET", "POST"])
@describe(
    tags=["webhooks"],
    query=IbizfonePushSchema,
    responses={200: "text/plain", 400: "text/plain", 401: "text/plain"},
)
@webhook
def ibizfone():
    """The IVR's call-log push, in the query string or a form body; answers plain text."""
    data = request.args.to_dict()
    data.update(request.form.to_dict())
    body = parsed_json() if request.is_json else None
    if isinstance(body, dict):
        data.update(body)
    try:
        push = ibizfone_schema.load(data)
    except ValidationError as err:
        log.info("ibizfone push refused: %s", sorted(err.normalized_messages()))
        return _text("Invalid Data", 400)
    cti().journal.record_ibizfone(push)
    return _text("Accepted", 200)


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
    status = exc.code or 400
    return _text("Invalid Data" if status < 500 else "Failure", status if status != 404 else 400)


@ivr.errorhandler(Exception)
def _ivr_unexpected(exc: Exception):
    log.exception("ibizfone push: unexpected error")
    return _text("Failure", 500)
