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

from sqlalchemy import Connection, Table, insert, select, text, update

from ..call_logs import report_columns

log = logging.getLogger(__name__)

VERSION = 4
BACKFILL_BATCH = 5000


def _fill_report_columns(conn: Connection) -> None:
    """Version 3: the report columns of every entry stored before, from its call log."""
    page = text("SELECT id, call_log FROM journal WHERE id > :after ORDER BY id LIMIT :limit")
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
        "ALTER TABLE journal ADD COLUMN local_day TEXT",
        "ALTER TABLE journal ADD COLUMN local_hour INTEGER",
        "ALTER TABLE journal ADD COLUMN direction TEXT",
        "ALTER TABLE journal ADD COLUMN call_type TEXT",
        "ALTER TABLE journal ADD COLUMN talk_seconds INTEGER",
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
