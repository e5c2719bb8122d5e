"""SQLite (one host): what it needs to keep the store's promises.

WAL lets readers run beside the one writer; every write is a ``BEGIN IMMEDIATE`` transaction (the
driver's own BEGIN is switched off), so a read-then-write is atomic across processes; writers of
every process queue on a ``flock`` beside the file (``commit.WriterTurn``); the busy timeout is the
fallback; ``synchronous=FULL`` makes a commit survive a power cut. A new file is made with
incremental auto-vacuum, so the pages retention frees can be given back (``reclaim_space``).
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager, nullcontext
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool, StaticPool

from ...runtime.forks import PerProcess
from ..retention import Space
from .commit import WriterTurn
from .database import Database

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 30_000
INCREMENTAL = 2  # PRAGMA auto_vacuum's value for incremental


class SqliteDatabase(Database):
    backend = "sqlite"
    postgresql = False
    insert = staticmethod(sqlite_insert)

    def __init__(self, path: str):
        self._memory = path == ":memory:"
        self._local = PerProcess(threading.local)  # a forked child opens its own connections
        self._turn = None if self._memory else WriterTurn(f"{path}.lock")
        if not self._memory:
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:  # serves all the same: /readyz and every write say 503
                log.warning("sqlite: cannot make the database's directory: %s", exc.strerror)
        super().__init__(path)

    def _create_engine(self) -> Engine:
        engine = create_engine(
            URL.create("sqlite", database=self._url),
            connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            hide_parameters=True,
            # One connection per thread, kept (see _connect): the pool only opens them.
            poolclass=StaticPool if self._memory else NullPool,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_connection(dbapi_connection, _record):
            dbapi_connection.isolation_level = None  # we BEGIN ourselves (IMMEDIATE for writes)
            cursor = dbapi_connection.cursor()
            # Before anything is written to a new file (WAL writes its first page): only then
            # does it take; an existing file keeps its mode until a VACUUM (docs/operations.md).
            cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cursor.close()

        return engine

    @contextmanager
    def _connect(self):
        """This thread's own connection, kept for the thread's life, since checking one out per
        statement would cost more than most statements on a local file."""
        local = self._local.get()
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = self._engine().connect()
        try:
            yield conn
        finally:
            if conn.invalidated or conn.closed:
                local.conn = None

    def _writer_turn(self):
        return nullcontext() if self._turn is None else self._turn()

    def _start(self, conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock before the first read

    def space(self) -> Space:
        with self._ready(), self._connect() as conn:
            driver = conn.connection.driver_connection

            def pragma(name: str) -> int:
                return driver.execute(f"PRAGMA {name}").fetchone()[0]

            return Space(
                pages=pragma("page_count"),
                free_pages=pragma("freelist_count"),
                page_size=pragma("page_size"),
                incremental=pragma("auto_vacuum") == INCREMENTAL,
            )

    def reclaim_space(self, pages: int) -> int:
        """One write transaction in the writers' turn. ``executescript``: the driver's
        ``execute`` steps a statement once, and each step of this pragma frees one page."""
        before = self.space()
        if not before.incremental or not before.free_pages:
            return 0
        with self._ready(), self._writer_turn(), self._connect() as conn:
            conn.connection.driver_connection.executescript(
                f"PRAGMA incremental_vacuum({int(pages)})"
            )
        return before.free_pages - self.space().free_pages

    def close(self) -> None:
        local = self._local.peek()
        conn = getattr(local, "conn", None)
        if conn is not None:
            local.conn = None
            conn.close()
        super().close()
