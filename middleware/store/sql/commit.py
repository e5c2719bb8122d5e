"""How writes reach the disk: the group commit of a process's journal writes, and the flock on
which SQLite writers of every process take turns. Both were measured (``benchmarks/``); both keep
the durability promise: nobody returns before their own write is committed and synced."""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from sqlalchemy import Connection

from ...errors import UpstreamUnavailable
from ...runtime.forks import PerProcess

log = logging.getLogger(__name__)
#: (connection, commit time) -> result, run inside the shared transaction
Write = Callable[[Connection, float], object]
#: (connection, commit time, the write's result) -> the result, after every write of the batch
Then = Callable[[Connection, float, object], object]


class _Slot:
    __slots__ = (
        "write",
        "order",
        "then",
        "done",
        "result",
        "error",
        "lead",
        "what",
        "host",
        "committed",
        "_ready",
    )

    def __init__(
        self, write: Write, order: tuple = (), then: Then | None = None, what: str | None = None
    ):
        self.write = write
        self.what = what  # a rider's name in the log when it fails (``GroupCommit.ride``)
        self.host: _Slot | None = None  # the write a rider rides with: it commits only with it
        self.committed: Callable[[], None] | None = None  # a rider's: called once it committed
        self.order = order  # the writes of one transaction lock entries in this order
        self.then = then  # run after every write of the transaction, given the write's result
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
    """One process's queue of writes, and whether a thread is committing them."""

    def __init__(self):
        self.queue: list[_Slot] = []
        self.lock = threading.Lock()
        self.leading = False


class GroupCommit:
    """Group commit: the writes of a process's threads at once share one transaction.

    Each caller queues its write. One thread at a time leads: once its transaction has begun (on
    SQLite, once the other processes' commits have let it have the writers' turn) it takes every
    queued write, runs them in that one synced transaction, wakes their callers, and hands the
    lead to the first write queued meanwhile, so the next commit starts at once. One fsync
    answers many webhooks (and the deliverer's marks ride along with them), and nobody returns
    before its own write is on disk.

    A write that fails on its own (a constraint, a value the driver cannot encode: any error but
    the database's) fails alone: the transaction is rolled back and the batch runs again without
    it, so its neighbours commit. Nothing is paid for this until a write fails. When the database
    itself fails (``UpstreamUnavailable``: unreachable, timed out) or the commit does, every write
    of the batch fails with that error.
    """

    def __init__(self, transaction: Callable[[], AbstractContextManager[Connection]]):
        self._transaction = transaction  # a write transaction, committed when its block ends
        self._group = PerProcess(_Group)  # a forked child queues its own writes
        self._riders = threading.local()  # a thread's riders (``riding``), or None

    @contextmanager
    def riding(self) -> Iterator[None]:
        """Within the block, the thread's ``ride`` writes wait for its next ``write`` and join its
        transaction: one commit where there were two. What still waits at the block's end is
        written then (a write of its own); when the block raises, it is dropped."""
        self._riders.slots = []
        try:
            yield
        except BaseException:
            self._riders.slots = None  # what failed first is not shown beside it
            raise
        left, self._riders.slots = self._riders.slots, None
        if left:
            first = left.pop(0)
            try:
                self._write(first, left)
            except Exception as exc:
                log.warning("%s is not written (%s)", first.what, type(exc).__name__)
            else:
                if first.committed is not None:
                    first.committed()

    def ride(
        self,
        write: Write,
        *,
        order: tuple = (),
        then: Then | None = None,
        what: str,
        committed: Callable[[], None] | None = None,
    ):
        """A best-effort write: inside ``riding``, queued with the thread's next ``write`` (None
        now) and committed only with it; outside, written at once (its result). A rider that
        fails on its own is left out of the transaction and logged, never failing the write it
        rode with. ``committed`` is called (in the caller's thread) once it has committed."""
        slots = getattr(self._riders, "slots", None)
        if slots is None:
            result = self.write(write, order=order, then=then)
            if committed is not None:
                committed()
            return result
        slot = _Slot(write, order, then, what)
        slot.committed = committed
        slots.append(slot)
        return None

    def write(self, write: Write, *, order: tuple = (), then: Then | None = None):
        """Run ``write`` in the next shared transaction; its result once that has committed.
        ``then`` runs in the same transaction after every write of it (so the locks it takes, the
        event log's, are the transaction's last), given the write's result; its result is the
        answer then."""
        slots = getattr(self._riders, "slots", None)
        riders = []
        if slots:
            riders, self._riders.slots = slots, []
        return self._write(_Slot(write, order, then), riders)

    def _write(self, slot: _Slot, riders: list[_Slot]):
        for rider in riders:
            rider.host = slot
        group = self._group.get()
        with group.lock:
            group.queue.append(slot)
            group.queue.extend(riders)  # in the same batch as ``slot``: taken with it
            lead = not group.leading
            group.leading = True
        if not lead:
            slot.wait()  # committed by a leader, or made the leader
        if not slot.done:
            try:
                self._commit(group, leader=slot)
            finally:
                with group.lock:
                    if group.queue:
                        group.queue[0].lead = True
                        group.queue[0].wake()
                    else:
                        group.leading = False
        for rider in riders:  # done with ``slot``: the batch took them together
            if rider.error is not None:
                log.warning("%s is not written (%s)", rider.what, type(rider.error).__name__)
            elif rider.committed is not None and slot.error is None:
                rider.committed()
        if slot.error is not None:
            raise slot.error
        return slot.result

    def queued(self) -> int:
        """How many writes wait for the next commit."""
        return len(self._group.get().queue)

    def _commit(self, group: _Group, *, leader: _Slot) -> None:
        """Run and commit the queued writes (the leader's among them); then every slot is done and
        its caller woken.

        The batch is taken once the transaction has begun, i.e. once this process has the writers'
        turn (SQLite: the flock other processes' commits hold): what queued while the turn was
        waited for commits now, not after another process's commit."""
        batch: list[_Slot] | None = None
        pending: list[_Slot] = []
        now = 0.0

        def take() -> None:
            nonlocal batch, pending, now
            if batch is None:
                with group.lock:
                    batch, group.queue = group.queue, []
                now = time.time()
                # Every write of the batch, in the order of the entries they lock (stable sort:
                # a deliverer's marks, keyed by nothing, go first in the order they came); then
                # each write's ``then``, after all of them.
                pending = sorted(batch, key=lambda slot: slot.order)

        while True:
            writing = None
            try:
                with self._transaction() as conn:
                    take()
                    for writing in pending:
                        writing.result = writing.write(conn, now)
                    for writing in pending:
                        if writing.then is not None:
                            writing.result = writing.then(conn, now, writing.result)
                    writing = None  # what fails from here on is the commit
            except BaseException as exc:
                take()  # the transaction could not begin: the queued writes fail with it
                if writing is not None and _its_own(exc):
                    failed = writing  # rolled back: the others again, without it
                    for slot in [s for s in pending if s is failed or s.host is failed]:
                        slot.error = exc  # and without its riders: they commit only with it
                        pending.remove(slot)
                    if pending:
                        continue
                else:
                    for slot in pending:
                        slot.error = exc
            break
        for slot in batch:
            slot.done = True
            if slot is not leader:
                slot.wake()


def _its_own(exc: BaseException) -> bool:
    """Whether a write's error is its own, not the database's (``Database._reachable`` makes a
    database that fails or cannot be reached ``UpstreamUnavailable``)."""
    return isinstance(exc, Exception) and not isinstance(exc, UpstreamUnavailable)


class WriterTurn:
    """On SQLite, writers of every process queue on a kernel lock beside the database file.

    SQLite's own busy handler polls with sleeps of up to 100 ms, so under contention from several
    processes throughput collapses and latency soars; a blocked ``flock`` wakes the moment the lock
    frees. The kernel drops the lock of a process that dies. SQLite's locking stays the authority
    (and the busy timeout the fallback, e.g. for other programs). PostgreSQL needs none of this:
    its row locks queue writers.
    """

    def __init__(self, path: str):
        # A flock belongs to the open file, which a forked child shares with its parent: so each
        # process opens the file itself, and a child closes the descriptor it inherited (the
        # parent's lock stays the parent's).
        self._held = PerProcess(
            lambda: (threading.Lock(), os.open(path, os.O_RDWR | os.O_CREAT, 0o600)),
            in_child=lambda held: os.close(held[1]),
        )

    @contextmanager
    def __call__(self):
        try:
            lock, fd = self._held.get()
        except OSError as exc:  # a read-only or missing directory: the store cannot be written
            log.warning("sqlite unavailable: the lock file cannot be opened: %s", exc.strerror)
            raise UpstreamUnavailable(
                "sqlite", f"the database's directory cannot be written ({exc.strerror})"
            ) from None
        with lock:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
