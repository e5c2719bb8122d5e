"""The background deliverer: one daemon thread per worker process sends due journal entries.

It starts on the first request a process serves (``ensure_started``, called before every request,
is one read of a ``forks.PerProcess``, forgotten in a forked child), so it runs in each gunicorn
worker after the fork, needs no gunicorn hook or config file, and never runs in a process that
serves nothing (``flask journal ...``, the gunicorn master with ``--preload``). A new entry wakes
the thread of the process that stored it at once (the factory wires ``Journal.on_stored`` to
``wake``); otherwise it looks for due entries (retries, entries stored by other processes, claims
of dead processes) every ``POLL_SECONDS``. Several threads never deliver one entry: each claim is atomic in the store.
At a clean exit the thread finishes the delivery in flight before the process goes.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading

from ..runtime.forks import PerProcess

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
EXIT_WAIT_SECONDS = 10.0


class _Running:
    """This process's delivering thread and the events it waits on."""

    def __init__(self, target):
        self.wake, self.stop = threading.Event(), threading.Event()
        self.thread = threading.Thread(
            target=target, args=(self,), name="journal-deliverer", daemon=True
        )


class Deliverer:
    """Delivers ``delivery``'s due entries on a thread of this process; the factory wires
    ``wake`` to the journal's new entries (``Journal.on_stored``)."""

    def __init__(self, delivery, *, poll: float = POLL_SECONDS):
        self.delivery = delivery
        self.poll = poll
        self._running = PerProcess(self._start)

    def ensure_started(self) -> None:
        """Start this process's thread unless it runs already (cheap: one attribute read)."""
        self._running.get()

    def _start(self) -> _Running:
        running = _Running(self._run)
        running.thread.start()
        atexit.register(self.stop)
        return running

    def wake(self) -> None:
        # Set already means the thread has yet to clear it and look: it will see this entry too.
        running = self._running.peek()
        if running is not None and not running.wake.is_set():
            running.wake.set()

    def stop(self, timeout: float = EXIT_WAIT_SECONDS) -> None:
        """Stop after the delivery in flight (at process exit, or at the end of a test)."""
        running = self._running.peek()
        if running is None:
            return
        running.stop.set()
        running.wake.set()
        running.thread.join(timeout)
        self._running.forget()

    def _run(self, running: _Running) -> None:
        log.info("journal deliverer started in process %s", os.getpid())
        while not running.stop.is_set():
            running.wake.clear()
            try:
                outcomes = self.delivery.deliver_due(stop=running.stop)
            except Exception:
                log.exception("journal deliverer: pass failed; trying again shortly")
                outcomes = {}
            if not any(outcomes.values()):
                running.wake.wait(self.poll)
