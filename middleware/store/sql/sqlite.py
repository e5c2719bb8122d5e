"""SQLite (one host): what it needs to keep the store's promises.

WAL lets readers run beside the one writer; every write is a ``BEGIN IMMEDIATE`` transaction (the
driver's own BEGIN is switched off), so a read-then-write is atomic across processes; writers of
every process queue on a ``flock`` beside the file (``commit.WriterTurn``); the busy timeout is the
fallback; ``synchronous=FULL`` makes a commit survive a power cut. A new file is made with
incremental auto-vacuum, so the pages retention frees can be given back (``reclaim_space``).
"""

from __future__ import annotations

import sqlite3
import threading
from collections import namedtuple
from contextlib import contextmanager, nullcontext
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool, StaticPool

from ...runtime.forks import PerProcess
from ..retention import Space
from .commit import WriterTurn
from .database import Database

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
        self._direct: dict = {}  # statement -> its ``_Direct`` (``prepared``)
        if not self._memory:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
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

    def prepared(self, statement):
        """The statement run through the driver itself (``_Direct``), made once per statement."""
        found = self._direct.get(statement)
        if found is None:
            found = self._direct[statement] = _Direct(self, statement)
        return found

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


class _Direct:
    """A hot statement run through sqlite3 itself, inside SQLAlchemy's transaction on the same
    connection (``Connection.connection.driver_connection``): some 20 us of SQLAlchemy's execution
    per statement saved, more than a small statement's own work. Made from SQLAlchemy's documented
    API only: the statement compiled once per set of parameter names (``compile(column_keys=)``;
    its SQL ``str``, ``positiontup``, ``bind_names`` with each type's ``bind_processor``, and
    ``params`` for the values it binds itself), and only where no column read needs converting
    (no ``result_processor``), no list is expanded and no column has a Python-side default; any
    other statement goes through ``Connection.execute``. A driver
    error is raised as SQLAlchemy's of the same name (``OperationalError``...), which
    ``Database._reachable`` makes ``UpstreamUnavailable``."""

    __slots__ = ("db", "statement", "_compiled")

    def __init__(self, db: SqliteDatabase, statement):
        self.db = db
        self.statement = statement
        self._compiled: dict[tuple, tuple | None] = {}

    def __call__(self, conn: Connection, params: dict):
        names = tuple(params)
        try:
            compiled = self._compiled[names]
        except KeyError:
            compiled = self._compiled[names] = self._compile(conn, names)
        if compiled is None:
            return conn.execute(self.statement, params)
        sql, defaults, order, row = compiled
        given = {**defaults, **params} if defaults else params
        values = tuple(
            [given[name] if convert is None else convert(given[name]) for name, convert in order]
        )
        try:
            cursor = conn.connection.driver_connection.execute(sql, values)
            rows = [row._make(item) for item in cursor.fetchall()] if row else []
        except sqlite3.Error as exc:
            error = getattr(sa_exc, type(exc).__name__, sa_exc.DBAPIError)
            raise error(sql, values, exc, hide_parameters=True) from None
        return _Result(rows, cursor.rowcount)

    def _compile(self, conn: Connection, names: tuple):
        dialect = conn.dialect
        statement = self.statement
        compiled = statement.compile(dialect=dialect, column_keys=list(names))
        table = getattr(statement, "table", None)
        columns = list(getattr(statement, "exported_columns", ()))
        if (
            not compiled.positional
            or any(bind.expanding for bind in compiled.bind_names)
            or any(_processor(c.type, dialect, result=True) for c in columns)
            or (table is not None and any(c.default or c.onupdate for c in table.columns))
        ):
            return None
        converters = {
            name: _processor(bind.type, dialect) for bind, name in compiled.bind_names.items()
        }
        order = tuple((name, converters.get(name)) for name in compiled.positiontup)
        defaults = {k: v for k, v in compiled.params.items() if k not in names}
        row = namedtuple("Row", [column.key for column in columns]) if columns else None
        return str(compiled), defaults, order, row


def _processor(kind, dialect, *, result: bool = False):
    """How SQLAlchemy converts a value of this type on this dialect, to the driver or from it
    (None: it passes as it is)."""
    impl = kind.dialect_impl(dialect)
    return impl.result_processor(dialect, None) if result else impl.bind_processor(dialect)


class _Result:
    """What the store reads of a result: its rows (named tuples) and its ``rowcount``."""

    __slots__ = ("rows", "rowcount")

    def __init__(self, rows: list, rowcount: int):
        self.rows = rows
        self.rowcount = rowcount

    def __iter__(self):
        return iter(self.rows)

    def all(self) -> list:
        return self.rows

    def first(self):
        return self.rows[0] if self.rows else None

    def one(self):
        if len(self.rows) != 1:
            raise sa_exc.NoResultFound() if not self.rows else sa_exc.MultipleResultsFound()
        return self.rows[0]

    def scalar_one(self):
        return self.one()[0]
