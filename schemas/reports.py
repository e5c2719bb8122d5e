"""Call reports: the query, the answer, and the answer as CSV."""

from __future__ import annotations

import csv
import io

from marshmallow import fields, validate

from .fields import Schema

BY = ("day", "hour", "agent")
COUNTS = (
    "calls",
    "inbound",
    "outbound",
    "answered",
    "missed",
    "talk_seconds",
    "average_talk_seconds",
)
CSV_FIELDS = ("key", *COUNTS)


class CallReportQuerySchema(Schema):
    first = fields.Date(
        data_key="from",
        format="%Y-%m-%d",
        metadata={"description": "First day (YYYY-MM-DD, CTI_TIMEZONE); default today"},
    )
    last = fields.Date(
        data_key="to",
        format="%Y-%m-%d",
        metadata={"description": "Last day, inclusive; default today; at most 366 days"},
    )
    by = fields.String(load_default="day", validate=validate.OneOf(BY))
    format = fields.String(
        validate=validate.OneOf(("json", "csv")),
        metadata={"description": "csv: text/csv (as with Accept: text/csv)"},
    )


def _counts():
    """The counts of a row and of the totals, in the order of the CSV columns."""
    return {
        "calls": fields.Integer(required=True),
        "inbound": fields.Integer(required=True, metadata={"description": "CallDirection Inbound"}),
        "outbound": fields.Integer(
            required=True, metadata={"description": "CallDirection Outbound"}
        ),
        "answered": fields.Integer(
            required=True, metadata={"description": "CallType Inbound or Outbound"}
        ),
        "missed": fields.Integer(
            required=True, metadata={"description": "CallType Missed or Notanswered"}
        ),
        "talk_seconds": fields.Integer(required=True, metadata={"description": "Sum of Duration"}),
        "average_talk_seconds": fields.Float(
            required=True,
            metadata={"description": "Talk time of the answered calls over their number (0: none)"},
        ),
    }


CallCountsSchema = Schema.from_dict(_counts(), name="CallCounts")
CallReportRowSchema = Schema.from_dict(
    {
        "key": fields.String(
            required=True,
            metadata={"description": 'YYYY-MM-DD (by day), 00-23 (by hour), extension or ""'},
        ),
        **_counts(),
    },
    name="CallReportRow",
)


class CallReportSchema(Schema):
    first = fields.String(
        attribute="from", data_key="from", required=True, metadata={"format": "date"}
    )
    last = fields.String(attribute="to", data_key="to", required=True, metadata={"format": "date"})
    by = fields.String(required=True, validate=validate.OneOf(BY))
    rows = fields.List(fields.Nested(CallReportRowSchema), required=True)
    totals = fields.Nested(CallCountsSchema, required=True)


def report_csv(report: dict) -> str:
    """A dumped report as CSV: the row's field names, the rows, then the ``total`` row."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_FIELDS)
    for row in (*report["rows"], {"key": "total", **report["totals"]}):
        writer.writerow(_text(row[name]) for name in CSV_FIELDS)
    return out.getvalue()


def _text(value) -> str:
    return f"{value:.1f}" if isinstance(value, float) else str(value)
