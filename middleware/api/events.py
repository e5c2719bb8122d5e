"""``GET /api/v1/agents/{extension}/events``: the agent's screen pops as Server-Sent Events."""

from __future__ import annotations

from flask import Blueprint, Response, request, stream_with_context

from schemas.agents import AgentPathSchema
from schemas.events import EventsQuerySchema

from ..auth import OWN_AGENT_PATH, allow
from .common import cti, load
from .spec import describe

bp = Blueprint("events", __name__)
header_schema = EventsQuerySchema()


@bp.get("/api/v1/agents/<extension>/events")
@allow(OWN_AGENT_PATH)
@describe(
    tags=["agents"],
    summary="Screen pops for one agent (text/event-stream, event: screen-pop)",
    path=AgentPathSchema,
    query=EventsQuerySchema,
    responses={200: "text/event-stream"},
    problems=(401, 422, 503),
)
def events(extension, query):
    """Stream screen pops; ``Last-Event-ID`` (header or query) resumes without loss. A worker holds
    at most ``CTI_STREAMS_PER_WORKER`` streams (503 ``busy`` beyond, with ``Retry-After``)."""
    header = request.headers.get("Last-Event-ID", "").strip()
    last = query.get("last_event_id")
    if last is None and header:
        last = load(header_schema, {"last_event_id": header})["last_event_id"]
    threaded = bool(request.environ.get("wsgi.multithread"))
    screen_pops = cti().screen_pops
    release = screen_pops.slots.take() if threaded else None
    stream = screen_pops.stream(extension, last, threaded=threaded)
    response = Response(
        stream_with_context(stream),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
    if release is not None:
        response.call_on_close(release)  # the server closes the response when the stream ends
    return response
