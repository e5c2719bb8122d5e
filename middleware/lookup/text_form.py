"""Who asks for the caller lookup's plain-text form: a PBX putting the body on a phone's display.

The one rule, used by the view for its answer and by the error handler for every failure on that
path (an unknown or refused caller, a CRM down, a bad number or key, a wrong method): such a PBX
shows the body whatever the status, so a failure there is its status with an empty body.
"""

from __future__ import annotations

from flask import request

LOOKUP_PATH = "/api/v1/contacts/lookup"
TEXT = "text/plain"


def asks_for_text(format_: str | None) -> bool:
    """``format=text``, or (no ``format``) an ``Accept`` that prefers text/plain over JSON."""
    if format_ is not None:
        return format_ == "text"
    if TEXT not in request.environ.get("HTTP_ACCEPT", ""):
        return False  # the usual case, decided without parsing the header
    return request.accept_mimetypes.best_match(["application/json", TEXT]) == TEXT


def is_text_lookup() -> bool:
    """This request is a plain-text lookup, whatever became of it (for the error handler)."""
    return request.path.rstrip("/") == LOOKUP_PATH and asks_for_text(request.args.get("format"))
