"""Every process forgets an erased number within a second: a thread per process follows the
store's erasure log (``store.erasures``) and drops what the process's contact cache holds of each
number erased anywhere (by another gunicorn worker, the stream server, another host, the CLI).

The lookup's hit path reads no store for this: the thread does, every ``POLL_SECONDS``, so a
number erased elsewhere stays in this process's cache at most ``BOUND_SECONDS`` (a poll, plus a
slow read). The thread starts with the process's first lookup (``ensure_started``: one read of a
``forks.PerProcess``, so after a fork the child starts its own); it begins after the newest
erasure at that moment, read before the lookup fills the cache, so it misses none that matter.
It holds its owner weakly and ends when the owner is gone (an app built by a test).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable

from ..errors import Problem
from ..runtime.forks import PerProcess

log = logging.getLogger(__name__)

POLL_SECONDS = 0.25
BOUND_SECONDS = 1.0  # documented: how long another process may still answer an erased number
WARN_EVERY_SECONDS = 10.0
BACKOFF_MAX_SECONDS = 5.0  # while the store cannot be read, it is asked less and less often


class Follower:
    """Calls ``forget(mask)`` in this process for each erasure recorded after it started."""

    def __init__(self, erasures, forget: Callable[[str], object], *, poll: float = POLL_SECONDS):
        self.erasures = erasures
        self.forget = forget
        self.poll = poll
        self.seen: int | None = None
        self._warned = 0.0
        self._running = PerProcess(self._start)

    def ensure_started(self) -> None:
        """Start this process's thread unless it runs already (one attribute read)."""
        self._running.get()

    def _start(self) -> threading.Thread:
        try:
            self.seen = self.erasures.last_erasure_id()
        except Exception as exc:  # the store is down: every erasure still logged is replayed
            self._warn(exc)
            self.seen = 0
        thread = threading.Thread(
            target=_follow, args=(weakref.ref(self), self.poll), name="erasures", daemon=True
        )
        thread.start()
        return thread

    def catch_up(self) -> int:
        """Forget what every erasure since the last one seen names; how many there were."""
        count = 0
        while True:
            found = self.erasures.erasures_after(self.seen or 0)
            for erasure in found:
                self.forget(erasure.mask)
                self.seen = erasure.id
            count += len(found)
            if len(found) < 100:
                return count

    def _warn(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._warned >= WARN_EVERY_SECONDS:
            self._warned = now
            reason = exc.detail if isinstance(exc, Problem) else type(exc).__name__
            log.warning("erasures: cannot read the erasure log: %s", reason)


def _follow(owner: weakref.ref, poll: float) -> None:
    delay = poll
    while True:
        time.sleep(delay)
        follower = owner()
        if follower is None:
            return
        try:
            follower.catch_up()
            delay = poll
        except Exception as exc:  # the store is down: say so now and then, keep following
            follower._warn(exc)
            delay = min(delay * 2, BACKOFF_MAX_SECONDS)
        del follower
