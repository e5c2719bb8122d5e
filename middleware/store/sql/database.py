"""One SQL database of the store: its engine per process, its transactions, its failures, its
schema. What differs between SQLite and PostgreSQL is in ``sqlite.py`` and ``postgresql.py``.

Engines are made per process (gunicorn forks after import: a child drops the parent's pool without
closing its sockets). A database that cannot be reached becomes ``UpstreamUnavailable`` naming it
(503 ``upstream_unavailable``), never a 500 and never the URL, which may hold a password. The schema
is created on first use (``migrations.py`` has the upgrade path), so a server that is down at
start-up delays nothing but readiness.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager, nullcontext

from sqlalchemy import Connection, Engine, bindparam, delete
from sqlalchemy import exc as sa_exc

from ...errors import UpstreamUnavailable
from ...runtime.forks import PerProcess
from .. import migrations
from .commit import GroupCommit
from .tables import claims, metadata, schema_version

log = logging.getLogger(__name__)

CLAIMS_EXPIRED = delete(claims).where(claims.c.expires_at < bindparam("before"))


def _roll_back(conn: Connection) -> None:
    """Roll back what ``conn`` has begun; a connection that cannot is invalidated (dropped).

    A COMMIT that failed (SQLite: a full disk, a deferred constraint) ends SQLAlchemy's transaction
    but may leave the database's open: sqlite3 says so (``in_transaction``) and is rolled back too,
    or the next BEGIN would fail."""
    try:
        conn.rollback()
        driver = conn.connection.driver_connection
        if getattr(driver, "in_transaction", False):
            driver.rollback()
    except Exception:  # the connection is broken: the caller's error is the one to raise
        log.debug("rollback failed: the connection is let go", exc_info=True)
        conn.invalidate()


def _let_go(engine: Engine) -> None:
    engine.dispose(close=False)


def is_postgresql(database: str) -> bool:
    return database.startswith(("postgresql://", "postgres://"))


class Database:
    """The parts of the SQL store (``claims.py``, ``journal.py``, ``sandbox.py``) share one."""

    backend: str  # "sqlite" or "postgresql": names the database in problems and logs
    postgresql: bool
    insert: Callable  # the dialect's ``insert`` (with ``on_conflict_do_*``)

    def __init__(self, url: str):
        self._url = url  # may hold a password: never logged, never in an error
        # One engine (and pool) per process; a forked child lets go of its parent's without
        # closing the parent's connections (SQLAlchemy's ``dispose(close=False)``).
        self._engines = PerProcess(self._create_engine, in_child=_let_go)
        self._schema_ready = False
        self.group = GroupCommit(self.transaction)  # the journal's and events' writes
        try:
            self._ensure_schema()
        except UpstreamUnavailable:
            log.warning("%s unreachable at start-up: the schema is made on first use", self.backend)

    # what each database does its own way ------------------------------------------------------

    def _create_engine(self) -> Engine:
        raise NotImplementedError

    @contextmanager
    def _connect(self):
        """A connection from this process's pool."""
        with self._engine().connect() as conn:
            yield conn

    def _writer_turn(self):
        """Held around every write transaction (SQLite: the writers' flock)."""
        return nullcontext()

    def _start(self, conn: Connection) -> None:
        """Begin a write transaction (SQLite: take the write lock before the first read)."""

    def _schema_lock(self, conn: Connection) -> None:
        """Serialise the hosts creating or upgrading the schema."""

    def lock_events(self, conn: Connection) -> None:
        """Before inserting an event: no reader may see its id before a smaller one commits."""

    # engines, transactions and failures --------------------------------------------------------

    def _engine(self) -> Engine:
        return self._engines.get()

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
    def _ready(self):
        """Failures become 503s; the schema is made first if start-up could not make it."""
        with self._reachable():
            if not self._schema_ready:
                self._ensure_schema()
            yield

    @contextmanager
    def transaction(self):
        """A write transaction, committed (and synced) when the block ends without an error."""
        with self._ready(), self._begin() as conn:
            yield conn

    @contextmanager
    def _begin(self):
        """A write transaction on this thread's connection. Whatever fails in it (the block, the
        BEGIN, the commit: a disk that filled up) rolls it back, so the connection serves the next
        transaction once the database can be written again; a connection that cannot even roll
        back is let go (``_connect`` opens a new one)."""
        with self._writer_turn(), self._connect() as conn:
            try:
                self._start(conn)
                yield conn
                conn.commit()
            except BaseException:
                _roll_back(conn)
                raise

    @contextmanager
    def reading(self):
        """A connection for reads; on SQLite they take no lock and never wait for writers."""
        with self._ready(), self._connect() as conn:
            try:
                yield conn
            finally:
                _roll_back(conn)  # ends the read (on SQLite, only SQLAlchemy's bookkeeping)

    def _ensure_schema(self) -> None:
        """Create what is missing and upgrade, once per database (the lock serialises hosts)."""
        with self._reachable(), self._begin() as conn:
            self._schema_lock(conn)
            metadata.create_all(conn)
            migrations.upgrade(conn, schema_version)
        self._schema_ready = True

    def space(self):
        """The file's pages (SQLite); None here: PostgreSQL's space is its own to manage."""
        return None

    def reclaim_space(self, pages: int) -> int:
        """Give free pages back to the file system (SQLite); PostgreSQL's autovacuum reuses them."""
        return 0

    def check(self) -> None:
        """Raise if the database cannot be written: the probe purges long-expired claims and
        writes (then deletes) a claim of its own, so a full disk fails it as it fails a webhook,
        where a purge that found nothing would commit without writing a page."""
        now = time.time()
        key = f"readyz:{os.getpid()}:{threading.get_ident()}"
        probe = {"key": key, "token": "", "state": "probe", "expires_at": now}
        with self.transaction() as conn:
            conn.execute(CLAIMS_EXPIRED, {"before": now - 60})
            conn.execute(claims.insert(), probe)
            conn.execute(delete(claims).where(claims.c.key == probe["key"]))

    def close(self) -> None:
        engine = self._engines.peek()
        if engine is not None:
            engine.dispose()
            self._engines.forget()
