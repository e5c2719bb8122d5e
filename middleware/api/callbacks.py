"""Callbacks: the numbers whose call was missed; list them, take one, dismiss one."""

from __future__ import annotations

from flask import Blueprint

from schemas.callbacks import AssignSchema, CallbackPageSchema, CallbackQuerySchema, CallbackSchema

from ..auth import ANY_AGENT, IN_BODY, allow, current_principal
from ..services.callbacks import CallbackConflict
from .common import cti
from .spec import describe

bp = Blueprint("callbacks", __name__)
NO_STORE = {"Cache-Control": "no-store"}  # callers' numbers and names


@bp.get("/api/v1/callbacks")
@allow(agent=ANY_AGENT, supervisor=True)
@describe(
    tags=["callbacks"],
    query=CallbackQuerySchema,
    responses={200: CallbackPageSchema},
)
def list_callbacks(query):
    """Callbacks: open and assigned ones oldest first, then done ones newest first (with
    ``status``, that status only); ``next`` is the cursor of the following page. An agent token
    sees the open ones and those assigned to it (``agent`` may name only itself)."""
    page = cti().callbacks.page(current_principal(), **query)
    return page, 200, NO_STORE


@bp.post("/api/v1/callbacks/<int:callback_id>/assign")
@allow(agent=IN_BODY, supervisor=True)
@describe(
    tags=["callbacks"],
    path_params={"callback_id": "The callback's id"},
    body=AssignSchema,
    responses={200: CallbackSchema},
    problems=(CallbackConflict,),
)
def assign_callback(callback_id: int, body):
    """Assign a callback to an agent (null: open again). An agent token may take an open callback
    for itself only; one assigned to another agent answers 409 (a supervisor reassigns it)."""
    callback = cti().callbacks.assign(callback_id, body["agent"], current_principal())
    return callback, 200, NO_STORE


@bp.post("/api/v1/callbacks/<int:callback_id>/dismiss")
@allow(supervisor=True)
@describe(
    tags=["callbacks"],
    path_params={"callback_id": "The callback's id"},
    responses={200: CallbackSchema},
    problems=(CallbackConflict,),
)
def dismiss_callback(callback_id: int):
    """Mark a callback done without calling (``dismissed``); a done one answers 409."""
    return cti().callbacks.dismiss(callback_id), 200, NO_STORE
