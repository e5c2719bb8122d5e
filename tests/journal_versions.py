"""Databases as earlier schema versions made them, for the tests of their migration. The journal's
columns are written out here, not taken from ``store/sql/tables.py``: an old database is what it
was, whatever the tables are now."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Double,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    insert,
)

from middleware.store.sql import is_postgresql


def _journal(metadata: MetaData, version: int) -> Table:
    """The journal of schema ``version`` 1, or 2 (which added ``agent`` and ``legs``)."""
    added = [Column("agent", Text), Column("legs", Text)] if version >= 2 else []
    return Table(
        "journal",
        metadata,
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
        Column("source", Text, nullable=False),
        Column("key", Text, nullable=False),
        Column("status", Text, nullable=False),
        Column("attempts", Integer, nullable=False, server_default="0"),
        Column("next_attempt_at", Double, nullable=False),
        Column("last_error", Text),
        Column("claimed_by", Text),
        Column("claim_expires_at", Double),
        Column("created_at", Double, nullable=False),
        Column("delivered_at", Double),
        Column("call_log", Text, nullable=False),
        Column("recording_url", Text),
        *added,
        UniqueConstraint("source", "key"),
    )


@contextlib.contextmanager
def old_database(database: str, version: int) -> Iterator[tuple[Connection, Table]]:
    """Make ``database`` (a SQLite path or a PostgreSQL URL) as schema ``version`` (1 or 2) made
    it; yields a connection and its journal table to fill, committed when the block ends."""
    metadata = MetaData()
    journal = _journal(metadata, version)
    versions = Table("schema_version", metadata, Column("version", Integer, nullable=False))
    url = database.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = create_engine(url if is_postgresql(database) else f"sqlite:///{database}")
    try:
        with engine.begin() as conn:
            metadata.create_all(conn)
            conn.execute(insert(versions).values(version=version))
            yield conn, journal
    finally:
        engine.dispose()
