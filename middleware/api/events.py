"""``GET /api/v1/agents/{extension}/events``: the agent's screen pops as Server-Sent Events."""

from __future__ import annotations

from flask import Blueprint, Response, g, request, stream_with_context

from schemas.agents import AgentPathSchema
from schemas.events import EventsQuerySchema

from ..auth import OWN_AGENT_PATH, allow
from ..errors import Busy
from .common import cti, load
from .spec import describe
from .streams import stream_path

bp = Blueprint("events", __name__)
header_schema = EventsQuerySchema()


@bp.get("/api/v1/agents/<extension>/events")
@stream_path
@allow(OWN_AGENT_PATH)
@describe(
    tags=["agents"],
    summary="Screen pops for one agent (text/event-stream, event: screen-pop)",
    path=AgentPathSchema,
    query=EventsQuerySchema,
    responses={200: "text/event-stream", 307: None},
    problems=(Busy,),
)
def events(extension, query):
    """Stream screen pops; ``Last-Event-ID`` (header or query) resumes without loss. A worker holds
    at most ``CTI_STREAMS_PER_WORKER`` streams, and one credential at most
    ``CTI_STREAMS_PER_CREDENTIAL`` of this agent's on this host (503 ``busy`` beyond, with
    ``Retry-After``). With ``CTI_STREAM_URL`` set: 307 to the stream server."""
    screen_pops = cti().screen_pops
    return stream_answer(
        query,
        extension,
        lambda last, threaded: screen_pops.stream(extension, last, threaded=threaded),
    )


def stream_answer(query: dict, slot: str, stream_of) -> Response:
    """A stream's answer: where it resumes (``Last-Event-ID``, header or query), this worker's
    stream slot and the credential's on ``slot`` when the worker has threads (a stream without
    threads answers and ends: it holds nothing), ``stream_of(last, threaded)`` its text."""
    header = request.headers.get("Last-Event-ID", "").strip()
    last = query.get("last_event_id")
    if last is None and header:
        last = load(header_schema, {"last_event_id": header})["last_event_id"]
    threaded = bool(request.environ.get("wsgi.multithread"))
    services = cti()
    releases = []
    if threaded:
        releases.append(services.screen_pops.slots.take())
        try:
            releases.append(services.stream_slots.take(g.client_id, slot))
        except Exception:
            releases[0]()
            raise
    response = Response(
        stream_with_context(stream_of(last, threaded)),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
    for release in releases:
        response.call_on_close(release)  # the server closes the response when the stream ends
    return response
