"""Schema versions of the SQL store, and how a database moves from one to the next.

``create_all`` at start-up adds every table and index that is missing, so an additive change (a new
table) needs nothing here. A change to an existing table bumps ``VERSION`` and lists its statements
under the new number in ``STEPS``; the first process to start on an older database runs them, in
the start-up transaction that holds the schema lock, and records the new version. Steps stay
additive (new nullable columns, new indexes), so hosts still running the previous build keep
working against the upgraded schema during a rolling deploy. A step is an SQL statement, or a
function of the connection where the two databases need different SQL (a backfill) or SQL alone
cannot compute it (the report columns read out of stored call logs).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, Table, insert, inspect, select, text, update

from ..journal.call_logs import report_columns

log = logging.getLogger(__name__)

VERSION = 6
BACKFILL_BATCH = 5000


def _fill_report_columns(conn: Connection) -> None:
    """Version 3: the report columns of every entry stored before, from its call log."""
    page = text(
        "SELECT id, call_log FROM journal WHERE local_day IS NULL AND id > :after"
        " ORDER BY id LIMIT :limit"
    )
    fill = text(
        "UPDATE journal SET local_day = :local_day, local_hour = :local_hour, "
        "direction = :direction, call_type = :call_type, talk_seconds = :talk_seconds "
        "WHERE id = :id"
    )
    after = 0
    while rows := conn.execute(page, {"after": after, "limit": BACKFILL_BATCH}).all():
        conn.execute(
            fill, [{"id": row.id, **report_columns(_decoded(row.call_log))} for row in rows]
        )
        after = rows[-1].id


def _decoded(body: str) -> dict:
    try:
        found = json.loads(body)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _backfill_numbers(conn: Connection) -> None:
    """Entries stored before version 4 get their number from their call log's ``Number``."""
    if conn.dialect.name == "postgresql":
        number = "call_log::jsonb ->> 'Number'"
    else:
        number = "CASE WHEN json_valid(call_log) THEN json_extract(call_log, '$.Number') END"
    conn.execute(
        text(f"UPDATE journal SET number = NULLIF({number}, '') WHERE number IS NULL")  # noqa: S608
    )


@dataclass(frozen=True)
class AddColumn:
    """``ALTER TABLE ... ADD COLUMN`` unless the column is there: ``create_all`` makes a table
    that was missing with every column of this build, before the steps run."""

    table: str
    column: str
    type: str

    def __call__(self, conn: Connection) -> None:
        if self.column not in {column["name"] for column in inspect(conn).get_columns(self.table)}:
            conn.execute(text(f"ALTER TABLE {self.table} ADD COLUMN {self.column} {self.type}"))


#: version -> the statements (or functions) that take a database from the version before to it.
STEPS: dict[int, tuple[str | Callable[[Connection], None], ...]] = {
    # 2: a journal entry names the agent its log names (``?agent=``) and keeps a cc_agent call's
    # legs; the legs' events have a table of their own (made by ``create_all``).
    2: (
        "ALTER TABLE journal ADD COLUMN agent TEXT",
        "ALTER TABLE journal ADD COLUMN legs TEXT",
        "CREATE INDEX IF NOT EXISTS journal_agent ON journal (agent, id)",
    ),
    # 3: the reports count by the day, hour, direction, type and talk time of each call log, in
    # columns of their own (``call_logs.report_columns``) read through two covering indexes.
    3: (
        AddColumn("journal", "local_day", "TEXT"),
        AddColumn("journal", "local_hour", "INTEGER"),
        AddColumn("journal", "direction", "TEXT"),
        AddColumn("journal", "call_type", "TEXT"),
        AddColumn("journal", "talk_seconds", "INTEGER"),
        _fill_report_columns,
        "CREATE INDEX IF NOT EXISTS journal_day_hour ON journal "
        "(local_day, local_hour, direction, call_type, talk_seconds)",
        "CREATE INDEX IF NOT EXISTS journal_day_agent ON journal "
        "(local_day, agent, direction, call_type, talk_seconds)",
    ),
    # 4: a journal entry names its customer number (E.164), so a privacy request finds and
    # erases its entries (and their legs) without reading every call log.
    4: (
        "ALTER TABLE journal ADD COLUMN number TEXT",
        _backfill_numbers,
        "CREATE INDEX IF NOT EXISTS journal_number ON journal (number, id)",
    ),
    # 5: retention finds finished entries by when (a failed one by its last attempt, which now
    # has a column; entries failed before count from when their last attempt was due), and rate
    # windows whose hits have all left the window.
    5: (
        AddColumn("journal", "last_attempt_at", "DOUBLE PRECISION"),
        "UPDATE journal SET last_attempt_at = next_attempt_at"
        " WHERE status = 'failed' AND last_attempt_at IS NULL",
        "CREATE INDEX IF NOT EXISTS journal_delivered_at ON journal (status, delivered_at)",
        "CREATE INDEX IF NOT EXISTS journal_last_attempt ON journal (status, last_attempt_at)",
        AddColumn("rate_windows", "expires_at", "DOUBLE PRECISION"),
        "CREATE INDEX IF NOT EXISTS rate_windows_expiry ON rate_windows (expires_at)",
    ),
    # 6: an entry the callbacks have yet to see is marked in its own row (set by its insert)
    # instead of a row of ``callback_queue`` (one statement fewer per call ingested); what the
    # queue holds is marked, and what hosts of the previous build still queue during a rolling
    # deploy is moved over by ``callbacks.settle``.
    6: (
        AddColumn("journal", "for_callbacks", "INTEGER"),
        "CREATE INDEX IF NOT EXISTS journal_for_callbacks ON journal (next_attempt_at, id)"
        " WHERE for_callbacks IS NOT NULL",
        "UPDATE journal SET for_callbacks = 1 WHERE id IN (SELECT entry_id FROM callback_queue)",
        "DELETE FROM callback_queue",
    ),
}


def upgrade(conn: Connection, versions: Table) -> None:
    """Bring the database to ``VERSION`` (called with the schema lock held)."""
    current = conn.execute(select(versions.c.version)).scalar()
    if current is None:
        conn.execute(insert(versions).values(version=VERSION))
        return
    if current > VERSION:
        log.warning(
            "the database schema is version %s, newer than this build's %s", current, VERSION
        )
        return
    for version in range(current + 1, VERSION + 1):
        for step in STEPS.get(version, ()):
            if callable(step):
                step(conn)
            else:
                conn.execute(text(step))
        log.info("database schema upgraded to version %s", version)
    if current < VERSION:
        conn.execute(update(versions).values(version=VERSION))
