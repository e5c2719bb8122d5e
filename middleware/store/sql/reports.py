"""Call reports on SQL (``reports.Reports``): one statement per report, computed by the database.

The journal keeps each call log's local day and hour, direction, type and talk seconds in columns
of their own, under two covering indexes that lead with the day: ``(local_day, local_hour, ...)``
and ``(local_day, agent, ...)``. A report by day groups the index's range in its order. By hour
or agent, the database first groups by day and key (in index order again: no sort of the entries)
and then those few thousand groups by key, so neither SQLite nor PostgreSQL sorts a year of calls.
"""

from __future__ import annotations

from sqlalchemy import Integer, bindparam, case, cast, func, literal, select

from ..reports import BY_AGENT, BY_DAY, BY_HOUR, ReportRow
from .database import Database
from .tables import journal

ANSWERED_TYPES = ("Inbound", "Outbound")
MISSED_TYPES = ("Missed", "Notanswered")
COUNTS = ("calls", "inbound", "outbound", "answered", "missed", "talk_seconds", "answered_talk")


def _flag(condition):
    return case((condition, 1), else_=0)


def _counts():
    """Each count of one group of entries, in ``COUNTS`` order."""
    answered = journal.c.call_type.in_(ANSWERED_TYPES)
    talk = func.coalesce(journal.c.talk_seconds, 0)
    return (
        func.count().label("calls"),
        func.sum(_flag(journal.c.direction == "Inbound")).label("inbound"),
        func.sum(_flag(journal.c.direction == "Outbound")).label("outbound"),
        func.sum(_flag(answered)).label("answered"),
        func.sum(_flag(journal.c.call_type.in_(MISSED_TYPES))).label("missed"),
        func.sum(talk).label("talk_seconds"),
        func.sum(case((answered, talk), else_=0)).label("answered_talk"),
    )


_IN_RANGE = (
    journal.c.local_day >= bindparam("first_day"),
    journal.c.local_day <= bindparam("last_day"),
)


def _statement(by: str):
    where = _IN_RANGE
    if by == BY_DAY:
        key = journal.c.local_day
        return select(key.label("key"), *_counts()).where(*where).group_by(key).order_by(key)
    column = journal.c.local_hour if by == BY_HOUR else journal.c.agent
    daily = (
        select(column.label("key"), *_counts())
        .where(*where)
        .group_by(journal.c.local_day, column)
        .subquery()
    )
    key = daily.c.key if by == BY_HOUR else func.coalesce(daily.c.key, literal(""))
    sums = [cast(func.sum(daily.c[name]), Integer).label(name) for name in COUNTS]
    return select(key.label("key"), *sums).group_by(key).order_by(key)


class SqlReports:
    def __init__(self, db: Database):
        self.db = db
        self._statements = {by: _statement(by) for by in (BY_DAY, BY_HOUR, BY_AGENT)}

    def calls_report(self, first_day: str, last_day: str, by: str) -> list[ReportRow]:
        statement = self._statements[by]
        params = {"first_day": first_day, "last_day": last_day}
        with self.db.reading() as conn:
            rows = conn.execute(statement, params).all()
        return [
            ReportRow(
                row.key,
                *(int(getattr(row, name) or 0) for name in COUNTS[:-1]),
                answered_talk_seconds=int(row.answered_talk or 0),
            )
            for row in rows
            if row.key is not None
        ]
