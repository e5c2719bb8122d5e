"""Every process forgets an erased number: a thread per process follows the store's erasure log
(``store.erasures``) and drops what the process's contact cache holds of each number erased
anywhere (by another gunicorn worker, the stream server, another host, the CLI).

The lookup's hit path reads no store for this: the thread does, every ``POLL_SECONDS``. And it
says how far it has come (``Erasures.report_follower``: after each erasure it forgot, and every
``HEARTBEAT_SECONDS`` besides), so the process that erases a number (``erase_everywhere``: the
privacy erasure, a contact created under a number cached as unknown) waits until every live
follower has forgotten it, ``CONFIRM_SECONDS`` at most, before it answers: after a ``DELETE``
answers, no worker or host answers the number from its cache. A follower silent for
``ALIVE_SECONDS`` is taken for gone (its process died) and not waited for; a slow one is waited
for up to the bound, then the erasure answers all the same and says so in a warning.

The thread starts with the process's first lookup (``ensure_started``: one read of a
``forks.PerProcess``, so after a fork the child starts its own); it begins after the newest
erasure at that moment, read before the lookup fills the cache, so it misses none that matter.
It holds its owner weakly and ends when the owner is gone (an app built by a test), leaving the
followers it was one of.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Callable

from ..errors import Problem
from ..runtime.forks import PerProcess

log = logging.getLogger(__name__)

POLL_SECONDS = 0.1
BOUND_SECONDS = 1.0  # documented: how long a process may answer a number erased elsewhere, unwaited
HEARTBEAT_SECONDS = 5.0  # a follower says it is alive at least this often
ALIVE_SECONDS = 3 * HEARTBEAT_SECONDS  # silent for longer: its process is gone, not waited for
STALE_SECONDS = 3600.0  # silent for longer: its record is deleted
CONFIRM_SECONDS = 2.0  # how long an erasure waits for every live follower to forget the number
CONFIRM_POLL_SECONDS = 0.02
WARN_EVERY_SECONDS = 10.0
BACKOFF_MAX_SECONDS = 5.0  # while the store cannot be read, it is asked less and less often


class Follower:
    """Calls ``forget(mask)`` in this process for each erasure recorded after it started."""

    def __init__(self, erasures, forget: Callable[[str], object], *, poll: float = POLL_SECONDS):
        self.erasures = erasures
        self.forget = forget
        self.poll = poll
        self.seen: int | None = None
        self.dropped = 0  # cache entries dropped for erasure ``seen``
        self.reported = 0.0  # monotonic time of the last report
        self._warned = 0.0
        self._running = PerProcess(self._start)  # this process's follower id, once started

    def ensure_started(self) -> None:
        """Start this process's thread unless it runs already (one attribute read)."""
        self._running.get()

    @property
    def id(self) -> str | None:
        """This process's follower id; None until its first lookup started it."""
        return self._running.peek()

    def _start(self) -> str:
        follower = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        try:
            self.seen = self.erasures.last_erasure_id()
            self._report(follower)
        except Exception as exc:  # the store is down: every erasure still logged is replayed
            self._warn(exc)
            self.seen = self.seen or 0
        thread = threading.Thread(
            target=_follow,
            args=(weakref.ref(self), self.poll, self.erasures, follower),
            name="erasures",
            daemon=True,
        )
        thread.start()
        return follower

    def catch_up(self) -> int:
        """Forget what every erasure since the last one seen names, saying so after each; how
        many there were."""
        count = 0
        while True:
            found = self.erasures.erasures_after(self.seen or 0)
            for erasure in found:
                dropped = self.forget(erasure.mask)
                self.seen, self.dropped = erasure.id, dropped if isinstance(dropped, int) else 0
                self._report(self.id)
            count += len(found)
            if len(found) < 100:
                return count

    def beat(self) -> None:
        """Say again how far this follower has come, when it has been silent for a heartbeat."""
        if time.monotonic() - self.reported >= HEARTBEAT_SECONDS:
            self._report(self.id)

    def _report(self, follower: str | None) -> None:
        if follower is None:
            return
        self.erasures.report_follower(
            follower, self.seen or 0, self.dropped, stale_before=time.time() - STALE_SECONDS
        )
        self.reported = time.monotonic()

    def _warn(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._warned >= WARN_EVERY_SECONDS:
            self._warned = now
            reason = exc.detail if isinstance(exc, Problem) else type(exc).__name__
            log.warning("erasures: cannot read the erasure log: %s", reason)


def _follow(owner: weakref.ref, poll: float, erasures, follower_id: str) -> None:
    delay = poll
    while True:
        time.sleep(delay)
        follower = owner()
        if follower is None:
            _leave(erasures, follower_id)
            return
        try:
            follower.catch_up()
            follower.beat()
            delay = poll
        except Exception as exc:  # the store is down: say so now and then, keep following
            follower._warn(exc)
            delay = min(delay * 2, BACKOFF_MAX_SECONDS)
        del follower


def _leave(erasures, follower_id: str) -> None:
    try:
        erasures.leave(follower_id)
    except Exception:  # the store is down: the record ages out (``ALIVE_SECONDS``)
        log.debug("erasures: could not leave the followers", exc_info=True)


def erase_everywhere(erasures, mask: str, *, own: str | None) -> int:
    """Record the erasure of the number ``mask`` stands for, then wait until every live follower
    but ``own`` (this process's, which forgot it already) has forgotten it, ``CONFIRM_SECONDS`` at
    most. The most cache entries one of them dropped for it (each process holds its own copy of
    an entry: the count of entries, not of copies)."""
    erasure_id = erasures.add_erasure(mask)
    give_up = time.monotonic() + CONFIRM_SECONDS
    dropped = 0
    while True:
        try:
            followers = erasures.followers(since=time.time() - ALIVE_SECONDS)
        except Exception as exc:  # the erasure is recorded: every follower still gets to it
            reason = exc.detail if isinstance(exc, Problem) else type(exc).__name__
            log.warning("erasures: cannot read who follows the erasure log: %s", reason)
            return dropped
        waiting = 0
        for follower in followers:
            if follower.id == own:
                continue
            if follower.seen < erasure_id:
                waiting += 1
            elif follower.seen == erasure_id:
                dropped = max(dropped, follower.dropped)
        if not waiting:
            return dropped
        if time.monotonic() >= give_up:
            log.warning(
                "erasures: %d process(es) did not confirm an erasure within %g s; each forgets "
                "it when it reads the erasure log again",
                waiting,
                CONFIRM_SECONDS,
            )
            return dropped
        time.sleep(CONFIRM_POLL_SECONDS)
