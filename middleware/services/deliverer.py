"""The background deliverer: one daemon thread per worker process sends due journal entries.

It starts on the first request a process serves (``ensure_started``, called before every request,
is a pid check), so it runs in each gunicorn worker after the fork, needs no gunicorn hook or config
file, and never runs in a process that serves nothing (``flask journal ...``, the gunicorn master
with ``--preload``). A new entry wakes the thread of the process that stored it at once; otherwise
it looks for due entries (retries, entries stored by other processes, claims of dead processes)
every ``POLL_SECONDS``. Several threads never deliver one entry: each claim is atomic in the store.
At a clean exit the thread finishes the delivery in flight before the process goes.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
EXIT_WAIT_SECONDS = 10.0


class Deliverer:
    def __init__(self, journal, *, poll: float = POLL_SECONDS):
        self.journal = journal
        self.poll = poll
        self._pid: int | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        journal.on_stored = self.wake

    def ensure_started(self) -> None:
        """Start this process's thread unless it runs already (cheap: a pid comparison)."""
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            # After a fork the parent's thread and events do not exist here: start afresh.
            self._wake, self._stop = threading.Event(), threading.Event()
            self._thread = threading.Thread(target=self._run, name="journal-deliverer", daemon=True)
            self._thread.start()
            self._pid = os.getpid()
            atexit.register(self.stop)

    def wake(self) -> None:
        # Set already means the thread has yet to clear it and look: it will see this entry too.
        if not self._wake.is_set() and self._pid == os.getpid():
            self._wake.set()

    def stop(self, timeout: float = EXIT_WAIT_SECONDS) -> None:
        """Stop after the delivery in flight (at process exit, or at the end of a test)."""
        thread = self._thread
        if thread is None or self._pid != os.getpid():
            return
        self._stop.set()
        self._wake.set()
        thread.join(timeout)
        self._thread, self._pid = None, None

    def _run(self) -> None:
        log.info("journal deliverer started in process %s", os.getpid())
        while not self._stop.is_set():
            self._wake.clear()
            try:
                outcomes = self.journal.deliver_due(stop=self._stop)
            except Exception:
                log.exception("journal deliverer: pass failed; trying again shortly")
                outcomes = {}
            if not any(outcomes.values()):
                self._wake.wait(self.poll)
