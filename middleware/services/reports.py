"""Call reports: how many calls, in and out, answered and missed, and how long agents talked, per
day, hour or agent of a range of days (``GET /api/v1/reports/calls``).

Every journal entry counts, whatever its delivery status, by its call log: the day and hour of its
``DateTime`` (written local to ``CTI_TIMEZONE``), ``CallDirection``, ``CallType`` (Inbound and
Outbound are answered, Missed and Notanswered missed) and ``Duration``. The database counts
(``store.reports``); this fills in the days and hours without calls and adds the totals.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta

from ..errors import ValidationFailed
from ..settings import Settings
from ..store import ReportRow, Reports
from ..store.reports import BY_DAY, BY_HOUR
from .board import extension_order

MAX_DAYS = 366
COUNTS = ("calls", "inbound", "outbound", "answered", "missed", "talk_seconds")


class CallReports:
    def __init__(self, settings: Settings, reports: Reports, *, clock=time.time):
        self.settings = settings
        self.reports = reports
        self.clock = clock

    def today(self) -> date:
        return datetime.fromtimestamp(self.clock(), self.settings.timezone).date()

    def calls(self, first: date | None = None, last: date | None = None, by: str = BY_DAY) -> dict:
        """``{"from", "to", "by", "rows", "totals"}``; both days default to today (local)."""
        today = self.today()
        first, last = first or today, last or today
        if first > last:
            raise ValidationFailed(
                "`from` is after `to`.", errors={"from": ["Must not be after `to`."]}
            )
        days = (last - first).days + 1
        if days > MAX_DAYS:
            raise ValidationFailed(
                f"The range holds {days} days; at most {MAX_DAYS} are reported at once.",
                errors={"to": [f"At most {MAX_DAYS} days from `from`."]},
            )
        found = self.reports.calls_report(first.isoformat(), last.isoformat(), by)
        if by == BY_DAY:
            keyed = {row.key: row for row in found}
            each_day = (first + timedelta(days=n) for n in range(days))
            rows = [keyed.get(day.isoformat()) or ReportRow(day.isoformat()) for day in each_day]
        elif by == BY_HOUR:
            keyed = {row.key: row for row in found}
            rows = [keyed.get(hour) or ReportRow(hour) for hour in range(24)]
        else:
            rows = sorted(found, key=lambda row: (row.key != "", extension_order(row.key)))
        return {
            "from": first.isoformat(),
            "to": last.isoformat(),
            "by": by,
            "rows": [{"key": _key(row.key, by), **_counts(row)} for row in rows],
            "totals": _counts(_sum(rows)),
        }


def _key(key, by: str) -> str:
    return f"{key:02d}" if by == BY_HOUR else str(key)


def _sum(rows: list[ReportRow]) -> ReportRow:
    return ReportRow(
        "",
        *(sum(getattr(row, name) for row in rows) for name in COUNTS),
        answered_talk_seconds=sum(row.answered_talk_seconds for row in rows),
    )


def _counts(row: ReportRow) -> dict:
    average = row.answered_talk_seconds / row.answered if row.answered else 0.0
    return {
        **{name: getattr(row, name) for name in COUNTS},
        "average_talk_seconds": round(average, 1),
    }
