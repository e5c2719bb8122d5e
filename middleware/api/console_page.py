"""``/console``: the supervisor's page. It holds no data itself: the supervisor signs in with a
supervisor token (or an API key) and the page's script calls the API (the board and its stream,
callbacks, the journal's failed and pending logs, call reports)."""

from __future__ import annotations

from flask import Blueprint, render_template

from ..auth import public
from .common import cti
from .spec import describe

bp = Blueprint("console_page", __name__)


@bp.get("/console")
@describe(tags=["supervisors"], summary="The supervisor console", responses={200: "text/html"})
@public
def console_page():
    """The live board, callbacks, call logs to retry and call reports, in plain HTML. The board's
    stream goes to ``CTI_STREAM_URL`` (the stream server) when it is set, else to this origin."""
    return render_template("console.html", stream_url=cti().settings.stream_url or "")
