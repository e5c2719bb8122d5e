"""``/agent``: the agent's page. It holds no data itself: the agent signs in with an extension and
an agent token (or an API key), and the page's scripts (``static/agent.js`` and the ES modules it
imports from ``static/agent/``) call the API (stream, status, calls in progress, callbacks,
click-to-call, contacts, the agent's own journal)."""

from __future__ import annotations

from flask import Blueprint, render_template

from ..auth import public
from .common import cti
from .spec import describe

bp = Blueprint("agent_page", __name__)


@bp.get("/agent")
@describe(tags=["agents"], summary="The agent's web page", responses={200: "text/html"})
@public
def agent_page():
    """Live screen pops, status and call control, callbacks, contact search, a dial box and recent
    calls, in plain HTML. Streams go to ``CTI_STREAM_URL`` (the stream server) when it is set, else
    to this origin; ``CTI_TIMEZONE`` lets the page read the call logs' local times."""
    settings = cti().settings
    return render_template(
        "agent.html", stream_url=settings.stream_url or "", timezone=settings.timezone.key
    )
