"""Call reports: the journal's call logs counted by day, hour or agent, by the database.

Each entry's report columns (its call log's local day and hour, direction, type and talk seconds)
are written with it (``sql.journal``), so a report is one ``GROUP BY`` over an index, never the
entries loaded. Implementation: ``sql.reports.SqlReports`` (SQLite or PostgreSQL).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

BY_DAY, BY_HOUR, BY_AGENT = "day", "hour", "agent"


@dataclass(frozen=True)
class ReportRow:
    """The calls of one day (``YYYY-MM-DD``), hour (0-23) or agent (extension, "" for none)."""

    key: str | int
    calls: int = 0
    inbound: int = 0
    outbound: int = 0
    answered: int = 0
    missed: int = 0
    talk_seconds: int = 0
    answered_talk_seconds: int = 0  # the talk time of the answered calls (for their average)


class Reports(Protocol):
    def calls_report(self, first_day: str, last_day: str, by: str) -> list[ReportRow]:
        """The calls that started from ``first_day`` to ``last_day`` (``YYYY-MM-DD``, inclusive),
        one row per ``by`` key that has any, in key order."""
