"""Schema versions of the SQL store, and how a database moves from one to the next.

``create_all`` at start-up adds every table and index that is missing, so an additive change (a new
table) needs nothing here. A change to an existing table bumps ``VERSION`` and lists its statements
under the new number in ``STEPS``; the first process to start on an older database runs them, in
the start-up transaction that holds the schema lock, and records the new version. Steps stay
additive (new nullable columns, new indexes), so hosts still running the previous build keep
working against the upgraded schema during a rolling deploy.
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection, Table, insert, select, text, update

log = logging.getLogger(__name__)

VERSION = 2

#: version -> the statements that take a database from the version before to it.
STEPS: dict[int, tuple[str, ...]] = {
    # 2: a journal entry names the agent its log names (``?agent=``) and keeps a cc_agent call's
    # legs; the legs' events have a table of their own (made by ``create_all``).
    2: (
        "ALTER TABLE journal ADD COLUMN agent TEXT",
        "ALTER TABLE journal ADD COLUMN legs TEXT",
        "CREATE INDEX IF NOT EXISTS journal_agent ON journal (agent, id)",
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
        for statement in STEPS.get(version, ()):
            conn.execute(text(statement))
        log.info("database schema upgraded to version %s", version)
    if current < VERSION:
        conn.execute(update(versions).values(version=VERSION))
