"""The supervisor's board (``GET /api/v1/board``) and its changes as a stream (``/events``)."""

from __future__ import annotations

from flask import Blueprint, Response, request, stream_with_context

from schemas.board import BoardSchema
from schemas.events import EventsQuerySchema

from ..auth import SUPERVISORS, allow
from .common import cti, load
from .spec import describe

bp = Blueprint("board", __name__)
header_schema = EventsQuerySchema()


@bp.get("/api/v1/board")
@allow(SUPERVISORS)
@describe(tags=["supervisor"], responses={200: BoardSchema}, problems=(401, 503))
def board():
    """Every agent: its status, its call in progress and its calls of today, by extension."""
    return cti().board.board()


@bp.get("/api/v1/board/events")
@allow(SUPERVISORS)
@describe(
    tags=["supervisor"],
    summary="The board's changes (text/event-stream, event: board, one agent's entry)",
    query=EventsQuerySchema,
    responses={200: "text/event-stream"},
    problems=(401, 422, 503),
)
def board_events(query):
    """Each change of an agent's entry as ``event: board``; ``Last-Event-ID`` resumes. The
    stream counts against the worker's ``CTI_STREAMS_PER_WORKER`` (503 ``busy`` beyond)."""
    header = request.headers.get("Last-Event-ID", "").strip()
    last = query.get("last_event_id")
    if last is None and header:
        last = load(header_schema, {"last_event_id": header})["last_event_id"]
    threaded = bool(request.environ.get("wsgi.multithread"))
    stream = cti().board_stream
    release = stream.slots.take() if threaded else None
    response = Response(
        stream_with_context(stream.stream(last, threaded=threaded)),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
    if release is not None:
        response.call_on_close(release)
    return response
