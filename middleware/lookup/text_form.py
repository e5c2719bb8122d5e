"""Who asks for the caller lookup's plain-text form: a PBX putting the body on a phone's display.

The one rule, used by the view for its answer and by the error handler for every failure on that
path (an unknown or refused caller, a CRM down, a bad number or key, a wrong method): such a PBX
shows the body whatever the status, so a failure there is its status with an empty body.
"""

from __future__ import annotations

from flask import request
from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header

LOOKUP_PATH = "/api/v1/contacts/lookup"
TEXT = "text/plain"


def asks_for_text(format_: str | None, environ=None) -> bool:
    """``format=text``, or (no ``format``) an ``Accept`` that prefers text/plain over JSON
    (``environ``: the request's, by default the current one)."""
    if format_ is not None:
        return format_ == "text"
    accept = (request.environ if environ is None else environ).get("HTTP_ACCEPT", "")
    if TEXT not in accept:
        return False  # the usual case, decided without parsing the header
    # as ``request.accept_mimetypes`` reads it
    return parse_accept_header(accept, MIMEAccept).best_match(["application/json", TEXT]) == TEXT


def is_text_lookup() -> bool:
    """This request is a plain-text lookup, whatever became of it (for the error handler)."""
    return request.path.rstrip("/") == LOOKUP_PATH and asks_for_text(request.args.get("format"))
