"""The SQL store's tables (one ``metadata``; ``Database`` creates what is missing at start-up, and
``migrations.py`` upgrades what exists)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Double,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    text,
)

# 64-bit ids on PostgreSQL; SQLite's rowid alias must be spelled INTEGER.
Id = BigInteger().with_variant(Integer, "sqlite")

REPORT_COUNTS = ("direction", "call_type", "talk_seconds")
REPORT_BY_HOUR = ("local_day", "local_hour", *REPORT_COUNTS)
REPORT_BY_AGENT = ("local_day", "agent", *REPORT_COUNTS)

metadata = MetaData()
claims = Table(
    "claims",
    metadata,
    Column("key", Text, primary_key=True),
    Column("token", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("fingerprint", Text),
    Column("status", Integer),
    Column("body", Text),
    Column("expires_at", Double, nullable=False),
    Index("claims_expiry", "expires_at"),
)
rate_windows = Table(  # one row per key: its hit times (JSON), so a row lock guards the window
    "rate_windows",
    metadata,
    Column("key", Text, primary_key=True),
    Column("hits", Text, nullable=False),
    Column("expires_at", Double),  # when its last hit leaves the window (schema version 5)
    Index("rate_windows_expiry", "expires_at"),
)
journal = Table(
    "journal",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
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
    Column("agent", Text),  # the extension the call log names (schema version 2)
    Column("legs", Text),  # a cc_agent call's legs, JSON (schema version 2)
    # What the reports count by, from the call log (``call_logs.report_columns``; version 3)
    Column("local_day", Text),  # YYYY-MM-DD of its DateTime (local to CTI_TIMEZONE)
    Column("local_hour", Integer),
    Column("direction", Text),  # CallDirection
    Column("call_type", Text),  # CallType
    Column("talk_seconds", Integer),  # Duration
    Column("number", Text),  # the call log's customer Number, E.164 (schema version 4; privacy)
    Column("last_attempt_at", Double),  # when it was last claimed for delivery (version 5)
    # 1 while the callbacks have yet to see its log (pbx, ibizfone; version 6): set in the
    # insert, cleared by ``callbacks.settle`` once the log is made
    Column("for_callbacks", Integer),
    UniqueConstraint("source", "key"),
    Index("journal_due", "status", "next_attempt_at"),
    Index("journal_status_id", "status", "id"),
    Index("journal_agent", "agent", "id"),
    # The reports read these alone (covering indexes), a range of days in index order.
    Index("journal_day_hour", *REPORT_BY_HOUR),
    Index("journal_day_agent", *REPORT_BY_AGENT),
    # what retention looks for: delivered, and failed, entries by when they were finished
    Index("journal_delivered_at", "status", "delivered_at"),
    Index("journal_last_attempt", "status", "last_attempt_at"),
    Index("journal_number", "number", "id"),
    Index(
        "journal_for_callbacks",
        "next_attempt_at",
        "id",
        sqlite_where=text("for_callbacks IS NOT NULL"),
        postgresql_where=text("for_callbacks IS NOT NULL"),
    ),
    sqlite_autoincrement=True,
)
journal_legs = Table(  # every event of every leg of a cc_agent call, under the call's entry
    "journal_legs",
    metadata,
    Column("entry_id", Id, nullable=False),
    Column("leg", Text, nullable=False),
    Column("event", Text, nullable=False),
    Column("fields", Text, nullable=False),
    Column("at", Double, nullable=False),
    PrimaryKeyConstraint("entry_id", "leg", "event"),
)
events = Table(
    "events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", Text, nullable=False),
    Column("agent", Text),
    Column("payload", Text, nullable=False),
    Column("created_at", Double, nullable=False),
    Index("events_agent", "agent", "id"),
    sqlite_autoincrement=True,
)
erasures = Table(  # numbers erased, as log lines mask them: every process forgets what it cached
    "erasures",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("mask", Text, nullable=False),
    Column("created_at", Double, nullable=False),
    sqlite_autoincrement=True,
)
erasure_followers = Table(  # the processes following the erasure log, and how far each has come
    "erasure_followers",
    metadata,
    Column("id", Text, primary_key=True),
    Column("seen", Id, nullable=False),
    Column("dropped", Integer, nullable=False),
    Column("beat", Double, nullable=False),
)
sandbox_contacts = Table(
    "sandbox_contacts",
    metadata,
    Column("id", Text, primary_key=True),
    Column("body", Text, nullable=False),
    Column("created_at", Double, nullable=False),
)
sandbox_call_logs = Table(
    "sandbox_call_logs",
    metadata,
    Column("seq", Id, primary_key=True, autoincrement=True),
    Column("body", Text, nullable=False),
    Column("created_at", Double, nullable=False),
    sqlite_autoincrement=True,
)
leases = Table(  # one holder at a time of a background duty (retention), across hosts
    "leases",
    metadata,
    Column("name", Text, primary_key=True),
    Column("owner", Text, nullable=False),
    Column("expires_at", Double, nullable=False),
)
callbacks = Table(  # a number to call back: opened by a missed call, done by a call or a dismissal
    "callbacks",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("number", Text, nullable=False),
    Column("name", Text),
    Column("status", Text, nullable=False),  # open, assigned or done
    Column("agent", Text),
    Column("missed", Integer, nullable=False),
    Column("first_missed_at", Double, nullable=False),
    Column("last_missed_at", Double, nullable=False),
    Column("done_at", Double),
    Column("done_by", Text),
    Column("done_how", Text),
    # One callback per number at a time: both databases enforce this partial index, and the
    # upsert of a miss names it as its conflict target.
    Index(
        "callbacks_one_per_number",
        "number",
        unique=True,
        sqlite_where=text("done_at IS NULL"),
        postgresql_where=text("done_at IS NULL"),
    ),
    Index("callbacks_number", "number", "id"),
    Index("callbacks_status", "status", "id"),
    Index("callbacks_agent", "agent", "id"),
    Index("callbacks_done", "done_at", "id"),
    sqlite_autoincrement=True,
)
# Before version 6, the journal entries whose made log the callbacks had to see (now the journal's
# ``for_callbacks``); rows a host of an earlier build still writes are moved over by ``settle``.
callback_queue = Table(
    "callback_queue",
    metadata,
    Column("entry_id", Id, primary_key=True, autoincrement=False),
)
board_agents = Table(  # every agent the board has seen, and its latest status
    "board_agents",
    metadata,
    Column("extension", Text, primary_key=True),
    Column("status", Text),
    Column("status_at", Double),
)
# the agents' call legs, ended ones kept (4 h) so a late ring cannot revive them
board_legs = Table(
    "board_legs",
    metadata,
    Column("leg", Text, primary_key=True),
    Column("extension", Text, nullable=False),
    Column("call_id", Text, nullable=False),
    Column("direction", Text, nullable=False),
    Column("number", Text),
    Column("state", Text, nullable=False),
    Column("rank", Integer, nullable=False),  # ringing 1, talking 2, ended 3: only ever up
    Column("since", Double, nullable=False),
    Column("started", Double, nullable=False),
    Index("board_legs_extension", "extension", "rank"),
    Index("board_legs_started", "started"),
)
schema_version = Table("schema_version", metadata, Column("version", Integer, nullable=False))
