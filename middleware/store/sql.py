"""The SQL store: one implementation, SQLite by default, PostgreSQL when several hosts share it.

SQLAlchemy Core writes the statements for both. What each database needs to keep the promises:

- SQLite (one host): WAL lets readers run beside the one writer; every write is a ``BEGIN
  IMMEDIATE`` transaction (the driver's own BEGIN is switched off), so a read-then-write is atomic
  across processes; writers of every process queue on a ``flock`` beside the file; the busy timeout
  is the fallback; ``synchronous=FULL`` makes a commit survive a power cut.
- PostgreSQL (several hosts): a claim or rate window locks its row (``INSERT ... ON CONFLICT`` then
  ``SELECT ... FOR UPDATE``), so two hosts never both own a key; deliverers claim journal entries
  with ``FOR UPDATE SKIP LOCKED``; events take a table lock while inserting, so ids become visible
  in the order they were drawn from the sequence; ``synchronous_commit`` is on.

Engines are made per process (gunicorn forks after import: a child drops the parent's pool without
closing its sockets). A database that cannot be reached becomes ``UpstreamUnavailable`` naming it
(503 ``upstream_unavailable``), never a 500 and never the URL, which may hold a password. The schema
is created on first use (``migrations.py`` has the upgrade path), so a server that is down at
start-up delays nothing but readiness.
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from sqlalchemy import (
    BigInteger,
    Column,
    Double,
    Engine,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    and_,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool, StaticPool

from ..errors import UpstreamUnavailable
from . import (
    DELIVERED,
    DONE,
    FAILED,
    FAILED_ENTRY,
    OWNER,
    PENDING,
    PENDING_ENTRY,
    CallState,
    Claim,
    Event,
    JournalEntry,
    LegEvent,
    Summarise,
    migrations,
)

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 30_000
CONNECT_TIMEOUT_SECONDS = 3  # an unreachable server answers 503 quickly instead of hanging
STATEMENT_TIMEOUT_MS = 15_000
# Per process: gunicorn threads share the pool. 2 hosts x 4 workers x (4 + 6) stays within
# PostgreSQL's default max_connections of 100.
POOL_SIZE, POOL_OVERFLOW, POOL_WAIT_SECONDS = 4, 6, 10
SCHEMA_LOCK = 0x43_54_49  # pg_advisory_xact_lock key: one process creates or upgrades the schema
EVENT_KEEP_SECONDS = 3600
_PURGE_EVERY = 200

# 64-bit ids on PostgreSQL; SQLite's rowid alias must be spelled INTEGER.
Id = BigInteger().with_variant(Integer, "sqlite")

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
    UniqueConstraint("source", "key"),
    Index("journal_due", "status", "next_attempt_at"),
    Index("journal_status_id", "status", "id"),
    Index("journal_agent", "agent", "id"),
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
schema_version = Table("schema_version", metadata, Column("version", Integer, nullable=False))

_now = bindparam("now")
_DUE = and_(
    journal.c.status == PENDING_ENTRY,
    journal.c.next_attempt_at <= _now,
    or_(journal.c.claimed_by.is_(None), journal.c.claim_expires_at <= _now),
)
_ANY_DUE = select(journal.c.id).where(_DUE).limit(1)
_FIRST_DUE = (
    select(journal.c.id)
    .where(_DUE)
    .order_by(journal.c.next_attempt_at, journal.c.id)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)
_JOURNAL_BY_KEY = select(journal).where(
    journal.c.source == bindparam("source"), journal.c.key == bindparam("key")
)
_JOURNAL_BY_ID = select(journal).where(journal.c.id == bindparam("entry_id"))
# A call's entry while it is open (pending, never claimed), locked; rows a deliverer holds are
# filtered out before locking, so an ingest never waits on them.
_OPEN_CALL_LOCK = _JOURNAL_BY_KEY.where(
    journal.c.status == PENDING_ENTRY, journal.c.attempts == 0
).with_for_update()
_LEGS_OF = select(journal_legs).where(journal_legs.c.entry_id == bindparam("entry_id"))
# One statement: lock the first due entries (skipping those other deliverers hold) and claim them.
_JOURNAL_CLAIM = (
    update(journal)
    .where(journal.c.id.in_(_FIRST_DUE.correlate(None)))
    .values(
        claimed_by=bindparam("owner"),
        claim_expires_at=bindparam("until"),
        attempts=journal.c.attempts + 1,
    )
    .returning(*journal.c)
)
_RELEASED = {"claimed_by": None, "claim_expires_at": None}
_PENDING_ID = (journal.c.id == bindparam("entry_id"), journal.c.status == PENDING_ENTRY)
_OWNED = (*_PENDING_ID, journal.c.claimed_by == bindparam("owner"))
_CALL_REMADE = (
    update(journal)
    .where(*_PENDING_ID, journal.c.attempts == 0)
    .values(
        call_log=bindparam("call_log"),
        agent=bindparam("agent"),
        legs=bindparam("legs"),
        next_attempt_at=bindparam("due_at"),
        recording_url=bindparam("recording_url"),
    )
)
_JOURNAL_DELIVERED = (
    update(journal)
    .where(*_PENDING_ID)
    .values(
        status=DELIVERED,
        delivered_at=bindparam("at"),
        call_log=bindparam("body"),
        last_error=None,
        **_RELEASED,
    )
)
_JOURNAL_RETRY_LATER = (
    update(journal)
    .where(*_OWNED)
    .values(next_attempt_at=bindparam("at"), last_error=bindparam("error"), **_RELEASED)
)
# Claims given back untried: the attempt the claim counted is taken back.
_JOURNAL_RELEASE = (
    update(journal)
    .where(
        journal.c.id.in_(bindparam("entry_ids", expanding=True)),
        journal.c.status == PENDING_ENTRY,
        journal.c.claimed_by == bindparam("owner"),
    )
    .values(attempts=journal.c.attempts - 1, **_RELEASED)
)
_JOURNAL_FAILED = (
    update(journal)
    .where(*_OWNED)
    .values(status=FAILED_ENTRY, last_error=bindparam("error"), **_RELEASED)
)
_JOURNAL_COUNTS = select(journal.c.status, func.count()).group_by(journal.c.status)

_CLAIM_FOR_UPDATE = select(claims).where(claims.c.key == bindparam("k")).with_for_update()
_CLAIM_PEEK = select(claims).where(
    claims.c.key == bindparam("k"), claims.c.expires_at > bindparam("now")
)
_CLAIM_TAKE_OVER = (
    update(claims)
    .where(claims.c.key == bindparam("k"))
    .values(status=None, body=None)  # token, state, fingerprint, expires_at: from the parameters
)
_CLAIM_SETTLE = update(claims).where(
    claims.c.key == bindparam("k"), claims.c.token == bindparam("t")
)  # state, status, body, expires_at: from the parameters
_CLAIM_RELEASE = delete(claims).where(
    claims.c.key == bindparam("k"), claims.c.token == bindparam("t")
)
_CLAIMS_EXPIRED = delete(claims).where(claims.c.expires_at < bindparam("before"))
_RATE_SAVE = update(rate_windows).where(rate_windows.c.key == bindparam("k"))

_CONTACTS = select(sandbox_contacts.c.body).order_by(
    sandbox_contacts.c.created_at, sandbox_contacts.c.id
)
_ADD_CALL_LOG = sandbox_call_logs.insert()
_CALL_LOGS = (
    select(sandbox_call_logs.c.body)
    .order_by(sandbox_call_logs.c.seq.desc())
    .limit(bindparam("limit"))
)
_ADD_EVENT = events.insert().returning(events.c.id)
_EVENTS_PURGE = delete(events).where(events.c.created_at < bindparam("before"))
_EVENTS_AFTER = (
    select(events)
    .where(events.c.id > bindparam("after"))
    .order_by(events.c.id)
    .limit(bindparam("limit"))
)
_AGENT_EVENTS_AFTER = _EVENTS_AFTER.where(events.c.agent == bindparam("agent"))
_LAST_EVENT = select(func.max(events.c.id))


def is_postgresql(database: str) -> bool:
    return database.startswith(("postgresql://", "postgres://"))


def _open(entry: JournalEntry) -> bool:
    """A call still waiting for its log: pending and never claimed (not even now)."""
    return entry.status == PENDING_ENTRY and entry.attempts == 0


def _entry(row, *, call_log: dict | None = None) -> JournalEntry:
    """The entry of a row; ``call_log`` when the caller has the body decoded already."""
    return JournalEntry(
        id=row.id,
        source=row.source,
        key=row.key,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
        call_log=json.loads(row.call_log) if call_log is None else call_log,
        recording_url=row.recording_url,
        agent=row.agent,
        legs=tuple(json.loads(row.legs)) if row.legs else (),
    )


class _Slot:
    __slots__ = ("write", "order", "done", "result", "error", "lead", "_ready")

    def __init__(self, write, order: tuple = ()):
        self.write = write  # (connection, commit time) -> result, run inside the shared transaction
        self.order = order  # the writes of one transaction lock entries in this order
        self.done = False
        self.result = None
        self.error: BaseException | None = None
        self.lead = False  # handed the leader's role instead of being committed
        self._ready = threading.Lock()
        self._ready.acquire()

    def wait(self) -> None:
        self._ready.acquire()

    def wake(self) -> None:
        self._ready.release()


class _Group:
    """One process's queue of journal writes, and whether a thread is committing them."""

    def __init__(self, pid: int):
        self.pid = pid
        self.queue: list[_Slot] = []
        self.lock = threading.Lock()
        self.leading = False


class SqlStore:
    def __init__(self, database: str):
        self.postgresql = is_postgresql(database)
        self.backend = "postgresql" if self.postgresql else "sqlite"
        self._database = database  # may hold a password: never logged, never in an error
        insert = postgresql.insert if self.postgresql else sqlite.insert
        # Statements are built once: SQLAlchemy then reuses their compiled form.
        self._claim_insert = (
            insert(claims).on_conflict_do_nothing(index_elements=["key"]).returning(claims.c.key)
        )
        rate = insert(rate_windows).values(key=bindparam("k"), hits="[]")
        # An upsert that changes nothing still locks the row: concurrent hits queue on it.
        self._rate_lock = rate.on_conflict_do_update(
            index_elements=["key"], set_={"key": rate.excluded.key}
        ).returning(rate_windows.c.hits)
        self._contact_insert = insert(sandbox_contacts).on_conflict_do_nothing(
            index_elements=["id"]
        )
        self._journal_insert = (
            insert(journal)
            .on_conflict_do_nothing(index_elements=["source", "key"])
            .returning(*journal.c)
        )
        self._leg_insert = insert(journal_legs).on_conflict_do_nothing(
            index_elements=["entry_id", "leg", "event"]
        )
        self._held: tuple[int, Engine] | None = None
        self._local = threading.local()
        self._turn: tuple[int, threading.Lock, int] | None = None
        self._write_group: _Group | None = None  # journal writes
        self._schema_ready = False
        self._writes = 0
        if not self.postgresql and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._ensure_schema()
        except UpstreamUnavailable:
            log.warning("%s unreachable at start-up: the schema is made on first use", self.backend)

    # engines, transactions and failures ---------------------------------------------------------

    def _engine(self) -> Engine:
        held = self._held
        if held is None or held[0] != os.getpid():
            if held is not None:
                held[1].dispose(close=False)  # the parent's connections stay the parent's
            held = self._held = (os.getpid(), self._create_engine())
        return held[1]

    def _create_engine(self) -> Engine:
        if self.postgresql:
            return create_engine(
                make_url(self._database).set(drivername="postgresql+psycopg"),
                pool_size=POOL_SIZE,
                max_overflow=POOL_OVERFLOW,
                pool_timeout=POOL_WAIT_SECONDS,
                pool_pre_ping=True,  # a server restart costs no request a 503
                pool_recycle=1800,
                hide_parameters=True,
                connect_args={
                    "connect_timeout": CONNECT_TIMEOUT_SECONDS,
                    "options": (
                        f"-c synchronous_commit=on -c statement_timeout={STATEMENT_TIMEOUT_MS}"
                    ),
                },
            )
        memory = self._database == ":memory:"
        engine = create_engine(
            URL.create("sqlite", database=self._database),
            connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            hide_parameters=True,
            # One connection per thread, kept (see _connect): the pool only opens them.
            poolclass=StaticPool if memory else NullPool,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_connection(dbapi_connection, _record):
            dbapi_connection.isolation_level = None  # we BEGIN ourselves (IMMEDIATE for writes)
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cursor.close()

        return engine

    @contextmanager
    def _reachable(self):
        """Database failures become ``UpstreamUnavailable`` naming the backend (a 503)."""
        try:
            yield
        except (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError) as exc:
            self._unavailable(exc)
        except sa_exc.DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            self._unavailable(exc)

    def _unavailable(self, exc: Exception):
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:200]
        log.warning("%s unavailable: %s: %s", self.backend, type(exc).__name__, reason)
        raise UpstreamUnavailable(
            self.backend, "the database could not be reached or did not answer in time"
        ) from None

    @contextmanager
    def transaction(self):
        """A write transaction, committed (and synced) when the block ends without an error."""
        with self._reachable():
            if not self._schema_ready:
                self._ensure_schema()
            with self._begin() as conn:
                yield conn

    @contextmanager
    def _connect(self):
        """PostgreSQL: a connection from this process's pool. SQLite: this thread's own connection,
        kept for the thread's life, since checking one out per statement would cost more than
        most statements on a local file."""
        if self.postgresql:
            with self._engine().connect() as conn:
                yield conn
            return
        local = self._local
        conn = getattr(local, "conn", None)
        if conn is None or local.pid != os.getpid():  # new after a fork
            conn = self._engine().connect()
            local.conn, local.pid = conn, os.getpid()
        try:
            yield conn
        finally:
            if conn.invalidated or conn.closed:
                local.conn = None

    @contextmanager
    def _begin(self):
        with self._writer_turn(), self._connect() as conn:
            if not self.postgresql:
                conn.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock before the first read
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.commit()

    @contextmanager
    def reading(self):
        """A connection for reads; on SQLite they take no lock and never wait for writers."""
        with self._reachable():
            if not self._schema_ready:
                self._ensure_schema()
            with self._connect() as conn:
                try:
                    yield conn
                finally:
                    conn.rollback()  # ends the read (on SQLite, only SQLAlchemy's bookkeeping)

    def _ensure_schema(self) -> None:
        """Create what is missing and upgrade, once per database (the lock serialises hosts)."""
        with self._reachable(), self._begin() as conn:
            if self.postgresql:
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
            metadata.create_all(conn)
            migrations.upgrade(conn, schema_version)
        self._schema_ready = True

    @contextmanager
    def _writer_turn(self):
        """On SQLite, writers of every process queue on a kernel lock beside the database file.

        SQLite's own busy handler polls with sleeps of up to 100 ms, so under contention from
        several processes throughput collapses and latency soars; a blocked ``flock`` wakes the
        moment the lock frees. The kernel drops the lock of a process that dies. SQLite's locking
        stays the authority (and the busy timeout the fallback, e.g. for other programs).
        PostgreSQL needs none of this: its row locks queue writers.
        """
        if self.postgresql or self._database == ":memory:":
            yield
            return
        held = self._turn
        if held is None or held[0] != os.getpid():  # new after a fork
            fd = os.open(f"{self._database}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            held = self._turn = (os.getpid(), threading.Lock(), fd)
        _, lock, fd = held
        with lock:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            self._local.conn = None
            conn.close()
        held = self._held
        if held is not None and held[0] == os.getpid():
            held[1].dispose()
            self._held = None

    def check(self) -> None:
        with self.transaction() as conn:
            conn.execute(_CLAIMS_EXPIRED, {"before": time.time() - 60})

    # claims ------------------------------------------------------------------------------------

    def claim(self, key: str, *, lease: float, fingerprint: str | None = None) -> Claim:
        now = time.time()
        token = uuid.uuid4().hex
        mine = {
            "token": token,
            "state": PENDING,
            "fingerprint": fingerprint,
            "expires_at": now + lease,
        }
        with self.transaction() as conn:
            for _ in range(3):
                row = conn.execute(_CLAIM_FOR_UPDATE, {"k": key}).first()
                if row is None:
                    created = conn.execute(self._claim_insert, {"key": key, **mine}).first()
                    if created is not None:
                        break
                    continue  # another host inserted it meanwhile (PostgreSQL): read its claim
                if row.expires_at > now and row.state != FAILED:
                    return Claim(row.state, row.token, row.fingerprint, row.status, row.body)
                conn.execute(_CLAIM_TAKE_OVER, {"k": key, **mine})
                break
            else:
                raise UpstreamUnavailable(self.backend, "a claim kept changing under us")
            self._purge(conn, now)
        return Claim(OWNER, token, fingerprint)

    def peek(self, key: str) -> Claim | None:
        with self.reading() as conn:
            row = conn.execute(_CLAIM_PEEK, {"k": key, "now": time.time()}).first()
        if row is None:
            return None
        return Claim(row.state, row.token, row.fingerprint, row.status, row.body)

    def complete(self, key: str, token: str, *, status: int, body: str, ttl: float) -> None:
        self._settle(key, token, DONE, status, body, ttl)

    def fail(self, key: str, token: str, *, body: str, ttl: float) -> None:
        self._settle(key, token, FAILED, None, body, ttl)

    def release(self, key: str, token: str) -> None:
        with self.transaction() as conn:
            conn.execute(_CLAIM_RELEASE, {"k": key, "t": token})

    def _settle(self, key, token, state, status, body, ttl) -> None:
        with self.transaction() as conn:
            conn.execute(
                _CLAIM_SETTLE,
                {
                    "k": key,
                    "t": token,
                    "state": state,
                    "status": status,
                    "body": body,
                    "expires_at": time.time() + ttl,
                },
            )

    def _purge(self, conn, now: float) -> None:
        self._writes += 1
        if self._writes % _PURGE_EVERY == 0:
            conn.execute(_CLAIMS_EXPIRED, {"before": now})

    # rate windows ------------------------------------------------------------------------------

    def hit_rate(self, key: str, *, limit: int, window: float) -> float:
        now = time.time()
        with self.transaction() as conn:
            stored = conn.execute(self._rate_lock, {"k": key}).scalar_one()
            hits = [at for at in json.loads(stored) if at > now - window]
            if len(hits) >= limit:
                return max(1.0, math.ceil(min(hits) + window - now))
            hits.append(now)
            conn.execute(_RATE_SAVE, {"k": key, "hits": json.dumps(hits)})
        return 0.0

    # the sandbox CRM ---------------------------------------------------------------------------

    def sandbox_contacts(self) -> list[dict]:
        with self.reading() as conn:
            rows = conn.execute(_CONTACTS).all()
        return [json.loads(row.body) for row in rows]

    def add_sandbox_contact(self, contact: dict) -> None:
        with self.transaction() as conn:
            conn.execute(
                self._contact_insert,
                {"id": contact["id"], "body": json.dumps(contact), "created_at": time.time()},
            )

    def add_sandbox_call_log(self, payload: dict) -> None:
        with self.transaction() as conn:
            conn.execute(_ADD_CALL_LOG, {"body": json.dumps(payload), "created_at": time.time()})

    def sandbox_call_logs(self, limit: int = 100) -> list[dict]:
        with self.reading() as conn:
            rows = conn.execute(_CALL_LOGS, {"limit": limit}).all()
        return [json.loads(row.body) for row in rows]

    # journal: every write has committed (and synced) when it returns -----------------------------

    def journal_add(
        self,
        source: str,
        key: str,
        call_log: dict,
        *,
        recording_url: str | None = None,
        agent: str | None = None,
    ) -> tuple[JournalEntry, bool]:
        body = json.dumps(call_log)

        def add(conn, now: float) -> tuple[JournalEntry, bool]:
            row = conn.execute(
                self._journal_insert,
                {
                    "source": source,
                    "key": key,
                    "status": PENDING_ENTRY,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                    "call_log": body,
                    "recording_url": recording_url,
                    "agent": agent,
                },
            ).first()
            if row is None:  # stored before: the entry as it is now
                return _entry(
                    conn.execute(_JOURNAL_BY_KEY, {"source": source, "key": key}).one()
                ), False
            return _entry(row, call_log=call_log), True

        return self._group_write(add, order=(source, key))

    def journal_add_leg(
        self, key: str, leg: str, event: str, fields: dict, *, summarise: Summarise
    ) -> tuple[JournalEntry, bool]:
        """Locks: only an entry still open (never one a deliverer holds), and a transaction's
        writes take theirs in the order of their keys, so group commits on several processes
        never wait on each other in a circle."""
        body = json.dumps(fields)

        def add(conn, now: float) -> tuple[JournalEntry, bool]:
            entry = self._call_entry(conn, key, now)
            stored = conn.execute(
                self._leg_insert,
                {"entry_id": entry.id, "leg": leg, "event": event, "fields": body, "at": now},
            ).rowcount
            if not stored or not _open(entry):
                return entry, bool(stored)
            events = [
                LegEvent(row.leg, row.event, json.loads(row.fields), row.at)
                for row in conn.execute(_LEGS_OF, {"entry_id": entry.id})
            ]
            state: CallState = summarise(events, entry.created_at)
            conn.execute(
                _CALL_REMADE,
                {
                    "entry_id": entry.id,
                    "call_log": json.dumps(state.call_log),
                    "agent": state.agent,
                    "legs": json.dumps(state.legs),
                    "due_at": state.due_at,
                    "recording_url": state.recording_url,
                },
            )
            return replace(
                entry,
                next_attempt_at=state.due_at,
                call_log=state.call_log,
                recording_url=state.recording_url,
                agent=state.agent,
                legs=tuple(state.legs),
            ), True

        return self._group_write(add, order=("pbx", key))

    def _call_entry(self, conn, key: str, now: float) -> JournalEntry:
        """The call's entry, made if new; locked when it is open (a plain read otherwise, so a
        deliverer's marks never wait on an ingest, nor an ingest on them). SQLite: the
        transaction holds the database's write lock already."""
        params = {"source": "pbx", "key": key}
        for _ in range(3):
            if self.postgresql:  # the common case, an open call, in one statement
                row = conn.execute(_OPEN_CALL_LOCK, params).first()
                if row is not None:
                    return _entry(row)
            found = conn.execute(_JOURNAL_BY_KEY, params).first()
            if found is None:
                row = conn.execute(
                    self._journal_insert,
                    {
                        **params,
                        "status": PENDING_ENTRY,
                        "attempts": 0,
                        # not due until its legs say so: the event that made it says so at once
                        "next_attempt_at": now + 86400 * 365,
                        "created_at": now,
                        "call_log": "{}",
                        "recording_url": None,
                        "agent": None,
                    },
                ).first()
                if row is not None:
                    return _entry(row)  # inserted by this transaction: locked already
                continue  # another host made it meanwhile (PostgreSQL): read it again
            entry = _entry(found)
            if not self.postgresql or not _open(entry):
                return entry
            # given back by a deliverer between the two reads: lock it
        raise UpstreamUnavailable(self.backend, "a call's journal entry kept changing under us")

    def _group_write(self, write, *, order: tuple = ()):
        """Group commit: the journal writes of a process's threads at once share one transaction.

        Each caller queues its write. One thread at a time leads: it runs every queued write in
        one synced transaction, wakes their callers, and hands the lead to the first write queued
        meanwhile, so the next commit starts at once. One fsync answers many webhooks (and the
        deliverer's marks ride along with them), and nobody returns before its own write is on
        disk. When the transaction fails, every write in it fails with the same error.
        """
        slot = _Slot(write, order)
        group = self._group()
        with group.lock:
            group.queue.append(slot)
            lead = not group.leading
            group.leading = True
        if not lead:
            slot.wait()  # committed by a leader, or made the leader
        if not slot.done:
            try:
                with group.lock:
                    batch, group.queue = group.queue, []  # this slot among them
                self._commit_group(batch, leader=slot)
            finally:
                with group.lock:
                    if group.queue:
                        group.queue[0].lead = True
                        group.queue[0].wake()
                    else:
                        group.leading = False
        if slot.error is not None:
            raise slot.error
        return slot.result

    def _group(self) -> _Group:
        group = self._write_group
        if group is None or group.pid != os.getpid():  # new after a fork
            group = self._write_group = _Group(os.getpid())
        return group

    def _commit_group(self, batch: list[_Slot], *, leader: _Slot) -> None:
        """Run and commit the batch's writes; then every slot is done and its caller woken."""
        now = time.time()
        try:
            with self.transaction() as conn:
                # Every write of the batch, in the order of the entries they lock (stable sort:
                # a deliverer's marks, keyed by nothing, go first in the order they came).
                ordered = sorted(range(len(batch)), key=lambda index: batch[index].order)
                results: list = [None] * len(batch)
                for index in ordered:
                    results[index] = batch[index].write(conn, now)
        except BaseException as exc:
            results = None
            for slot in batch:
                slot.error = exc
        for index, slot in enumerate(batch):
            if results is not None:
                slot.result = results[index]
            slot.done = True
            if slot is not leader:
                slot.wake()

    def journal_claim(
        self, owner: str, *, lease: float, now: float, limit: int = 1
    ) -> list[JournalEntry]:
        """Up to ``limit`` due entries in one transaction (one statement), oldest due first."""
        # A plain read first, so an idle deliverer never takes a write lock.
        with self.reading() as conn:
            if conn.execute(_ANY_DUE, {"now": now}).first() is None:
                return []
        with self.transaction() as conn:
            rows = conn.execute(
                _JOURNAL_CLAIM,
                {"now": now, "owner": owner, "until": now + lease, "limit": max(1, limit)},
            ).all()
        # RETURNING gives no order; deliver in the order the claim chose them.
        return sorted(map(_entry, rows), key=lambda entry: (entry.next_attempt_at, entry.id))

    def journal_release(self, owner: str, entry_ids: list[int]) -> int:
        if not entry_ids:
            return 0
        with self.transaction() as conn:
            return conn.execute(
                _JOURNAL_RELEASE, {"owner": owner, "entry_ids": list(entry_ids)}
            ).rowcount

    def journal_delivered(self, entry_id: int, call_log: dict) -> bool:
        return self._journal_update(
            _JOURNAL_DELIVERED,
            {"entry_id": entry_id, "at": time.time(), "body": json.dumps(call_log)},
        )

    def journal_retry_later(self, entry_id: int, owner: str, *, at: float, error: str) -> bool:
        return self._journal_update(
            _JOURNAL_RETRY_LATER, {"entry_id": entry_id, "owner": owner, "at": at, "error": error}
        )

    def journal_failed(self, entry_id: int, owner: str, *, error: str) -> bool:
        return self._journal_update(
            _JOURNAL_FAILED, {"entry_id": entry_id, "owner": owner, "error": error}
        )

    def _journal_update(self, statement, params: dict) -> bool:
        """Update one entry (releasing its claim), committed with the other journal writes of the
        moment; whether it matched."""
        return self._group_write(
            lambda conn, _now: conn.execute(statement, params).rowcount == 1, order=()
        )

    def journal_requeue(self, entry_id: int) -> JournalEntry | None:
        with self.transaction() as conn:
            conn.execute(
                update(journal)
                .where(journal.c.id == entry_id, journal.c.status == FAILED_ENTRY)
                .values(
                    status=PENDING_ENTRY,
                    attempts=0,
                    next_attempt_at=time.time(),
                    claimed_by=None,
                    claim_expires_at=None,
                )
            )
            row = conn.execute(_JOURNAL_BY_ID, {"entry_id": entry_id}).first()
        return _entry(row) if row is not None else None

    def journal_get(self, entry_id: int) -> JournalEntry | None:
        with self.reading() as conn:
            row = conn.execute(_JOURNAL_BY_ID, {"entry_id": entry_id}).first()
        return _entry(row) if row is not None else None

    def journal_list(
        self,
        *,
        status: str | None = None,
        limit: int = 100,
        before: int | None = None,
        agent: str | None = None,
    ) -> list[JournalEntry]:
        query = select(journal).order_by(journal.c.id.desc()).limit(limit)
        if status is not None:
            query = query.where(journal.c.status == status)
        if agent is not None:
            query = query.where(journal.c.agent == agent)
        if before is not None:
            query = query.where(journal.c.id < before)
        with self.reading() as conn:
            rows = conn.execute(query).all()
        return [_entry(row) for row in rows]

    def journal_counts(self) -> dict[str, int]:
        counts = dict.fromkeys((PENDING_ENTRY, DELIVERED, FAILED_ENTRY), 0)
        with self.reading() as conn:
            rows = conn.execute(_JOURNAL_COUNTS).all()
        counts.update({status: count for status, count in rows})
        return counts

    # events ------------------------------------------------------------------------------------

    def add_event(self, kind: str, agent: str | None, payload: dict) -> int:
        body = json.dumps(payload)

        def add(conn, now: float) -> int:
            if self.postgresql:
                # Writers take turns, so no reader sees an id before a smaller one commits.
                conn.execute(text("LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE"))
            event_id = conn.execute(
                _ADD_EVENT, {"kind": kind, "agent": agent, "payload": body, "created_at": now}
            ).scalar_one()
            if event_id % 500 == 0:
                conn.execute(_EVENTS_PURGE, {"before": now - EVENT_KEEP_SECONDS})
            return event_id

        # A ring's screen pop shares the group commit (and its fsync) of its leg. Last in the
        # group's order: the table lock is the last lock a group takes, so a group holding it
        # waits for nothing more, and groups never wait on each other in a circle.
        return self._group_write(add, order=("~events",))

    def events_after(
        self, after: int, *, agent: str | None = None, limit: int = 100
    ) -> list[Event]:
        params = {"after": after, "limit": limit, "agent": agent}
        with self.reading() as conn:
            rows = conn.execute(
                _EVENTS_AFTER if agent is None else _AGENT_EVENTS_AFTER, params
            ).all()
        return [Event(r.id, r.kind, r.agent, json.loads(r.payload), r.created_at) for r in rows]

    def last_event_id(self) -> int:
        with self.reading() as conn:
            return conn.execute(_LAST_EVENT).scalar() or 0
