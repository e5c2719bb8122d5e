"""The narrow interface to shared state, and the choice of its implementation.

Everything that must hold across gunicorn workers (and, with the shared implementation, across
hosts) goes through a ``Store``: a container of named parts, each a small protocol in its own
module, with its implementations in files of their own. A service receives the parts it uses.

- ``store.claims`` (``claims.Claims``): claims (click-to-call dedupe, ``Idempotency-Key``
  records, an agent's checked-out mark) and sliding rate windows;
- ``store.events`` (``events.Events``): the live event log the streams read (screen pops,
  callbacks, board changes);
- ``store.journal`` (``journal.Journal``): the call journal (entries, legs, delivery leases);
- ``store.sandbox`` (``sandbox.SandboxCrm``): the sandbox CRM's contacts and call logs;
- ``store.callbacks`` (``callbacks.Callbacks``): the numbers to call back (SQL in every
  deployment);
- ``store.board`` (``board.Board``: the supervisor's board, in SQL or in Redis) and
  ``store.reports`` (``reports.Reports``: call reports, SQL);
- ``store.retention`` (``retention.Retention``: purges of what is no longer needed, the lease that
  lets one process purge at a time, a SQLite file's free pages; SQL in every deployment);
- privacy (``privacy.py``): ``journal_numbers``, ``event_numbers`` and ``claim_numbers``
  (``NumberData``: what each holds about a number) and ``erasures`` (the log of erasures every
  process follows).

A new kind of state is a new part: its protocol here, its implementations, and one line in each
store's ``__init__``. Implementations: ``sql/`` (SQLAlchemy Core over SQLite in WAL mode on one
host, or PostgreSQL for several; ``sql/sqlite.py`` and ``sql/postgresql.py`` hold what each
database needs, ``sql/commit.py`` the group commit and the writers' flock) and ``redis*.py``
(claims, rate windows, events, the board, privacy). A whole store is one container per
deployment, building its parts on one ``Database`` (and the Redis URL): ``sql.SqlStore``, or
``shared.SharedStore`` (Redis for claims, rates, events and the board; SQL for the rest).
``check()`` and ``close()`` are the store's own.
"""

from __future__ import annotations

from typing import Protocol

from .board import AgentState, Announce, Board, BoardLeg
from .callbacks import Callback, Callbacks
from .claims import DONE, FAILED, OWNER, PENDING, Claim, Claims
from .events import Event, Events
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
    "Events",
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


class Store(Protocol):
    """The store's parts, by name; each service is given the ones it uses."""

    claims: Claims
    events: Events
    journal: Journal
    sandbox: SandboxCrm
    callbacks: Callbacks
    board: Board
    reports: Reports
    retention: Retention  # what the store keeps and lets go (``retention.Retention``)
    journal_numbers: NumberData
    event_numbers: NumberData
    claim_numbers: NumberData
    erasures: Erasures

    def check(self) -> None:
        """Raise if the store cannot be written."""

    def close(self) -> None:
        """Release connections (at worker exit)."""


def build_store(settings) -> Store:
    """The SQL store, or with ``CTI_REDIS_URL`` set a ``SharedStore`` that keeps claims, rates,
    events and the board in Redis."""
    if not settings.redis_url:
        return build_sql_store(settings)
    from .shared import SharedStore
    from .sql import open_database

    return SharedStore(settings.redis_url, open_database(settings.database))


def build_sql_store(settings) -> Store:
    """SQLite at a path (the default), or PostgreSQL at a ``postgresql://`` URL."""
    from .sql import SqlStore

    return SqlStore(settings.database)
