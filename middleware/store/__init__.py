"""The narrow interface to shared state, and the choice of its implementation.

Everything that must hold across gunicorn workers (and, with the shared implementation, across
hosts) goes through a ``Store``, made of small protocols:

- ``claims.Claims``: claims (click-to-call dedupe and ``Idempotency-Key`` records), sliding rate
  windows and live events (screen pops);
- ``journal.Journal``: the call journal (entries, legs, delivery leases);
- ``sandbox.SandboxCrm``: the sandbox CRM's contacts and call logs.

Newer parts are attributes of the store rather than mixed into it: ``store.callbacks``
(``callbacks.Callbacks``: the numbers to call back, SQL in every deployment).
So are the privacy parts (``privacy.py``): ``journal_numbers``, ``event_numbers`` and
``claim_numbers`` (``NumberData``: what each holds about a number) and ``erasures`` (the log of
erasures every process follows); ``store.board`` (``board.Board``: the supervisor's board, in SQL
or in Redis) and ``store.reports`` (``reports.Reports``: call reports, SQL).
And ``store.retention`` (``retention.Retention``: purges of what is no longer needed, the
lease that lets one process purge at a time, a SQLite file's free pages; SQL in every deployment).

Each has its implementations in files of their own: ``sql/`` (SQLAlchemy Core over SQLite in WAL
mode on one host, or PostgreSQL for several; ``sql/sqlite.py`` and ``sql/postgresql.py`` hold what
each database needs, ``sql/commit.py`` the group commit and the writers' flock) and ``redis.py``
(claims, rate windows and events). A whole store is one class per deployment: ``sql.SqlStore``, or
``shared.SharedStore`` (Redis for claims, rates and events; SQL for the journal and the sandbox).
"""

from __future__ import annotations

from typing import Protocol

from .board import AgentState, Announce, Board, BoardLeg
from .callbacks import Callback, Callbacks
from .claims import DONE, FAILED, OWNER, PENDING, Claim, Claims, Event
from .journal import (
    DELIVERED,
    FAILED_ENTRY,
    PENDING_ENTRY,
    CallState,
    Journal,
    JournalEntry,
    LegEvent,
    Summarise,
)
from .privacy import Erasure, Erasures, NumberData
from .reports import ReportRow, Reports
from .retention import FinishedEntry, Retention
from .sandbox import SandboxCrm

__all__ = [
    "AgentState",
    "Announce",
    "Board",
    "BoardLeg",
    "DELIVERED",
    "DONE",
    "FAILED",
    "FAILED_ENTRY",
    "OWNER",
    "PENDING",
    "PENDING_ENTRY",
    "ReportRow",
    "Reports",
    "CallState",
    "Callback",
    "Callbacks",
    "Claim",
    "Claims",
    "Erasure",
    "Erasures",
    "Event",
    "FinishedEntry",
    "Journal",
    "JournalEntry",
    "LegEvent",
    "Retention",
    "NumberData",
    "SandboxCrm",
    "Store",
    "Summarise",
    "build_sql_store",
    "build_store",
]


class Store(Claims, Journal, SandboxCrm, Protocol):
    retention: Retention  # what the store keeps and lets go (``retention.Retention``)
    callbacks: Callbacks
    journal_numbers: NumberData
    event_numbers: NumberData
    claim_numbers: NumberData
    erasures: Erasures
    board: Board
    reports: Reports

    def check(self) -> None:
        """Raise if the store cannot be written."""

    def close(self) -> None:
        """Release connections (at worker exit)."""


def build_store(settings) -> Store:
    """The SQL store, or with ``CTI_REDIS_URL`` set a ``SharedStore`` that keeps claims, rates and
    events in Redis."""
    if not settings.redis_url:
        return build_sql_store(settings)
    from .shared import SharedStore
    from .sql import open_database

    return SharedStore(settings.redis_url, open_database(settings.database))


def build_sql_store(settings) -> Store:
    """SQLite at a path (the default), or PostgreSQL at a ``postgresql://`` URL."""
    from .sql import SqlStore

    return SqlStore(settings.database)
