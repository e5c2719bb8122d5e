"""The call journal: list entries, put a failed one back."""

from __future__ import annotations

from flask import Blueprint

from schemas.journal import JournalEntrySchema, JournalPageSchema, JournalQuerySchema

from ..auth import IN_QUERY, allow
from ..errors import Conflict
from .common import cti
from .spec import describe

bp = Blueprint("journal", __name__)


@bp.get("/api/v1/journal")
@allow(agent=IN_QUERY, supervisor=True)
@describe(
    tags=["journal"],
    query=JournalQuerySchema,
    responses={200: JournalPageSchema},
)
def list_entries(query):
    """Journal entries, newest first; ``next`` is the cursor of the following page."""
    return cti().journal.entries(**{"status": None, "cursor": None, "agent": None, **query})


@bp.post("/api/v1/journal/<int:entry_id>/retry")
@allow(supervisor=True)
@describe(
    tags=["journal"],
    path_params={"entry_id": "The entry's id"},
    responses={200: JournalEntrySchema},
    problems=(Conflict,),
)
def retry_entry(entry_id: int):
    """Put a failed entry back to pending; it is delivered again at once."""
    return cti().journal.retry(entry_id)
