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

VERSION = 1

#: version -> the statements that take a database from the version before to it.
#: Example of a future entry: ``2: ("ALTER TABLE journal ADD COLUMN host TEXT",)``.
STEPS: dict[int, tuple[str, ...]] = {}


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
