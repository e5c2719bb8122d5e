"""The supervisor's board (``GET /api/v1/board``) and its changes as a stream (``/events``)."""

from __future__ import annotations

from flask import Blueprint

from schemas.board import BoardSchema
from schemas.events import EventsQuerySchema

from ..auth import SUPERVISORS, allow
from ..errors import Busy
from ..services.board import CHANNEL
from .common import cti
from .events import stream_answer
from .spec import describe
from .streams import stream_path

bp = Blueprint("board", __name__)


@bp.get("/api/v1/board")
@allow(SUPERVISORS)
@describe(tags=["supervisor"], responses={200: BoardSchema})
def board():
    """Every agent: its status, its call in progress and its calls of today, by extension."""
    return cti().board.board()


@bp.get("/api/v1/board/events")
@stream_path
@allow(SUPERVISORS)
@describe(
    tags=["supervisor"],
    summary="The board's changes (text/event-stream, event: board, one agent's entry)",
    query=EventsQuerySchema,
    responses={200: "text/event-stream", 307: None},
    problems=(Busy,),
)
def board_events(query):
    """Each change of an agent's entry as ``event: board``; ``Last-Event-ID`` resumes. Bounded like
    the agents' streams (``CTI_STREAMS_PER_WORKER``, ``CTI_STREAMS_PER_CREDENTIAL``: 503 ``busy``
    beyond). With ``CTI_STREAM_URL`` set: 307 to the stream server."""
    board = cti().board_stream
    return stream_answer(
        query, CHANNEL, lambda last, threaded: board.stream(last, threaded=threaded)
    )
