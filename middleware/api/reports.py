"""Call reports (``GET /api/v1/reports/calls``), as JSON or CSV."""

from __future__ import annotations

from flask import Blueprint, Response, request

from schemas.reports import CallReportQuerySchema, CallReportSchema, report_csv

from ..auth import SUPERVISORS, allow
from .common import cti
from .spec import describe

bp = Blueprint("reports", __name__)
CSV = "text/csv"


@bp.get("/api/v1/reports/calls")
@allow(SUPERVISORS)
@describe(
    tags=["supervisor"],
    query=CallReportQuerySchema,
    responses={200: CallReportSchema},
    also=(CSV,),
)
def calls(query):
    """Calls per day, hour or agent of a range of days (``format=csv`` or ``Accept: text/csv``:
    CSV, the row's field names first and a ``total`` row last)."""
    report = cti().reports.calls(query.get("first"), query.get("last"), query["by"])
    wanted = query.get("format")
    if wanted is None:
        wanted = (
            "csv"
            if request.accept_mimetypes.best_match(("application/json", CSV)) == CSV
            else "json"
        )
    if wanted == "json":
        return report
    return Response(report_csv(calls.cti_doc.dump(report)), mimetype=CSV)
