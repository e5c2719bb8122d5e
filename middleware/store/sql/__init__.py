"""The SQL store: SQLite by default, PostgreSQL when several hosts share it.

SQLAlchemy Core writes the statements of each part once for both databases: ``claims.py``
(claims, rate windows), ``events.py`` (live events), ``journal.py`` (the call journal),
``sandbox.py`` (the sandbox CRM), ``callbacks.py`` (the numbers to call back), ``board.py`` (the
supervisor's board), ``reports.py`` (call reports), ``retention.py`` (purges), ``privacy.py`` (what
each part holds about a number, and the erasure log). ``database.py`` holds a database's engine,
transactions, failures and schema, with what differs in ``sqlite.py`` and ``postgresql.py``;
``commit.py`` the group commit and the flock; ``tables.py`` the schema (``../migrations.py`` its
upgrades). ``SqlStore`` builds every part on one ``Database``, so they share its connections and
its group commit (a ring's event is synced with its leg).
"""

from __future__ import annotations

from .board import SqlBoard
from .callbacks import SqlCallbacks
from .claims import SqlClaims
from .database import Database, is_postgresql
from .events import SqlEvents
from .journal import SqlJournal
from .postgresql import PostgresDatabase
from .privacy import SqlClaimNumbers, SqlErasures, SqlEventNumbers, SqlJournalNumbers
from .reports import SqlReports
from .retention import SqlRetention
from .sandbox import SqlSandbox
from .sqlite import SqliteDatabase
from .tables import schema_version

__all__ = [
    "Database",
    "SqlBoard",
    "SqlCallbacks",
    "SqlClaimNumbers",
    "SqlClaims",
    "SqlErasures",
    "SqlEventNumbers",
    "SqlEvents",
    "SqlJournal",
    "SqlRetention",
    "SqlJournalNumbers",
    "SqlReports",
    "SqlSandbox",
    "SqlStore",
    "is_postgresql",
    "open_database",
    "schema_version",
]


def open_database(database: str) -> Database:
    """SQLite at a path (or ``:memory:``), PostgreSQL at a ``postgresql://`` URL."""
    return PostgresDatabase(database) if is_postgresql(database) else SqliteDatabase(database)


class SqlStore:
    """The whole ``Store`` on one SQL database: its parts, each built on the same ``Database``."""

    def __init__(self, database: str):
        self.db = db = open_database(database)
        self.claims = SqlClaims(db)
        self.events = SqlEvents(db)
        self.journal = SqlJournal(db)
        self.sandbox = SqlSandbox(db)
        self.retention = SqlRetention(db)
        self.callbacks = SqlCallbacks(db)
        # privacy: what holds numbers, and the erasure log (``privacy.py``)
        self.journal_numbers = SqlJournalNumbers(db)
        self.event_numbers = SqlEventNumbers(db)
        self.claim_numbers = SqlClaimNumbers(db)
        self.erasures = SqlErasures(db)
        self.board = SqlBoard(db)
        self.reports = SqlReports(db)

    def check(self) -> None:
        self.db.check()

    def close(self) -> None:
        self.db.close()
