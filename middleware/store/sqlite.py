"""The embedded store: one SQLite file shared by every worker of one host.

WAL lets readers run beside the one writer; every write is a ``BEGIN IMMEDIATE`` transaction, so a
read-then-write (a claim, a rate window) is atomic across processes; the busy timeout makes writers
queue instead of failing with "database is locked"; ``synchronous=FULL`` makes a commit survive a
power cut. Connections are per thread and per process (gunicorn forks after import).
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from . import DONE, FAILED, OWNER, PENDING, Claim
from .sqlite_journal import SQLiteJournal

BUSY_TIMEOUT_MS = 30_000
_PURGE_EVERY = 200

SCHEMA = """
CREATE TABLE IF NOT EXISTS claims (
    key         TEXT PRIMARY KEY,
    token       TEXT NOT NULL,
    state       TEXT NOT NULL,
    fingerprint TEXT,
    status      INTEGER,
    body        TEXT,
    expires_at  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS claims_expiry ON claims (expires_at);
CREATE TABLE IF NOT EXISTS rate_hits (
    key TEXT NOT NULL,
    at  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS rate_hits_key ON rate_hits (key, at);
CREATE TABLE IF NOT EXISTS sandbox_contacts (
    id         TEXT PRIMARY KEY,
    body       TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sandbox_call_logs (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    body       TEXT NOT NULL,
    created_at REAL NOT NULL
);
"""


class SQLiteStore(SQLiteJournal):
    def __init__(self, path: str):
        self.path = path
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._turn: tuple[int, threading.Lock, int] | None = None
        self._writes = 0
        self.connection().executescript(SCHEMA)
        self._create_journal()

    # connections -------------------------------------------------------------------------------

    def connection(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None or self._local.pid != os.getpid():
            db = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            self._local.db, self._local.pid = db, os.getpid()
        return db

    @contextmanager
    def transaction(self):
        """A write transaction: BEGIN IMMEDIATE takes the write lock before the first read."""
        db = self.connection()
        with self._writer_turn():
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    @contextmanager
    def _writer_turn(self):
        """Writers of every process queue on a kernel lock beside the database file.

        SQLite's own busy handler polls with sleeps of up to 100 ms, so under contention from
        several processes throughput collapses and latency soars; a blocked ``flock`` wakes the
        moment the lock frees. The kernel drops the lock of a process that dies. SQLite's locking
        stays the authority (and the busy timeout the fallback, e.g. for other programs).
        """
        if self.path == ":memory:":
            yield
            return
        lock, fd = self._writer_lock()
        with lock:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def _writer_lock(self) -> tuple[threading.Lock, int]:
        held = self._turn
        if held is None or held[0] != os.getpid():  # new after a fork
            fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            held = self._turn = (os.getpid(), threading.Lock(), fd)
        return held[1], held[2]

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    def check(self) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM claims WHERE expires_at < ?", (time.time() - 60,))

    # claims ------------------------------------------------------------------------------------

    def claim(self, key: str, *, lease: float, fingerprint: str | None = None) -> Claim:
        now = time.time()
        with self.transaction() as db:
            row = db.execute("SELECT * FROM claims WHERE key = ?", (key,)).fetchone()
            live = row is not None and row["expires_at"] > now and row["state"] != FAILED
            if live:
                return Claim(
                    row["state"], row["token"], row["fingerprint"], row["status"], row["body"]
                )
            token = uuid.uuid4().hex
            db.execute(
                "INSERT OR REPLACE INTO claims (key, token, state, fingerprint, status, body,"
                " expires_at) VALUES (?, ?, ?, ?, NULL, NULL, ?)",
                (key, token, PENDING, fingerprint, now + lease),
            )
            self._purge(db, now)
        return Claim(OWNER, token, fingerprint)

    def peek(self, key: str) -> Claim | None:
        row = (
            self.connection()
            .execute("SELECT * FROM claims WHERE key = ? AND expires_at > ?", (key, time.time()))
            .fetchone()
        )
        if row is None:
            return None
        return Claim(row["state"], row["token"], row["fingerprint"], row["status"], row["body"])

    def complete(self, key: str, token: str, *, status: int, body: str, ttl: float) -> None:
        self._settle(key, token, DONE, status, body, ttl)

    def fail(self, key: str, token: str, *, body: str, ttl: float) -> None:
        self._settle(key, token, FAILED, None, body, ttl)

    def release(self, key: str, token: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM claims WHERE key = ? AND token = ?", (key, token))

    def _settle(self, key, token, state, status, body, ttl) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE claims SET state = ?, status = ?, body = ?, expires_at = ?"
                " WHERE key = ? AND token = ?",
                (state, status, body, time.time() + ttl, key, token),
            )

    def _purge(self, db: sqlite3.Connection, now: float) -> None:
        self._writes += 1
        if self._writes % _PURGE_EVERY == 0:
            db.execute("DELETE FROM claims WHERE expires_at < ?", (now,))

    # rate windows ------------------------------------------------------------------------------

    def hit_rate(self, key: str, *, limit: int, window: float) -> float:
        now = time.time()
        with self.transaction() as db:
            db.execute("DELETE FROM rate_hits WHERE key = ? AND at <= ?", (key, now - window))
            count, oldest = db.execute(
                "SELECT COUNT(*), MIN(at) FROM rate_hits WHERE key = ?", (key,)
            ).fetchone()
            if count >= limit:
                return max(1.0, math.ceil(oldest + window - now))
            db.execute("INSERT INTO rate_hits (key, at) VALUES (?, ?)", (key, now))
        return 0.0

    # the sandbox CRM ---------------------------------------------------------------------------

    def sandbox_contacts(self) -> list[dict]:
        rows = self.connection().execute(
            "SELECT body FROM sandbox_contacts ORDER BY created_at, id"
        )
        return [json.loads(row["body"]) for row in rows]

    def add_sandbox_contact(self, contact: dict) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO sandbox_contacts (id, body, created_at) VALUES (?, ?, ?)",
                (contact["id"], json.dumps(contact), time.time()),
            )

    def add_sandbox_call_log(self, payload: dict) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO sandbox_call_logs (body, created_at) VALUES (?, ?)",
                (json.dumps(payload), time.time()),
            )

    def sandbox_call_logs(self, limit: int = 100) -> list[dict]:
        rows = self.connection().execute(
            "SELECT body FROM sandbox_call_logs ORDER BY seq DESC LIMIT ?", (limit,)
        )
        return [json.loads(row["body"]) for row in rows]
