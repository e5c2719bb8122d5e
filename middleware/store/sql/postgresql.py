"""PostgreSQL (several hosts): what it needs to keep the store's promises.

A claim or rate window locks its row (``INSERT ... ON CONFLICT`` then ``SELECT ... FOR UPDATE``,
in ``claims.py``), so two hosts never both own a key; deliverers claim journal entries with ``FOR
UPDATE SKIP LOCKED`` (``journal.py``); events take a table lock while inserting, so ids become
visible in the order they were drawn from the sequence; one host at a time creates or upgrades the
schema (an advisory lock); ``synchronous_commit`` is on.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.engine import make_url

from .database import Database

CONNECT_TIMEOUT_SECONDS = 3  # an unreachable server answers 503 quickly instead of hanging
STATEMENT_TIMEOUT_MS = 15_000
# Per process: gunicorn threads share the pool. 2 hosts x 4 workers x (4 + 6) stays within
# PostgreSQL's default max_connections of 100.
POOL_SIZE, POOL_OVERFLOW, POOL_WAIT_SECONDS = 4, 6, 10
SCHEMA_LOCK = 0x43_54_49  # pg_advisory_xact_lock key: one process creates or upgrades the schema


class PostgresDatabase(Database):
    backend = "postgresql"
    postgresql = True
    insert = staticmethod(postgresql_insert)

    def _create_engine(self) -> Engine:
        return create_engine(
            make_url(self._url).set(drivername="postgresql+psycopg"),
            pool_size=POOL_SIZE,
            max_overflow=POOL_OVERFLOW,
            pool_timeout=POOL_WAIT_SECONDS,
            pool_pre_ping=True,  # a server restart costs no request a 503
            pool_recycle=1800,
            hide_parameters=True,
            connect_args={
                "connect_timeout": CONNECT_TIMEOUT_SECONDS,
                "options": f"-c synchronous_commit=on -c statement_timeout={STATEMENT_TIMEOUT_MS}",
            },
        )

    def _schema_lock(self, conn: Connection) -> None:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})

    def lock_events(self, conn: Connection) -> None:
        # Writers take turns, so no reader sees an id before a smaller one commits.
        conn.execute(text("LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE"))
