"""The background deliverer: one daemon thread per worker process sends due journal entries.

It starts on the first request a process serves (``ensure_started``, called before every request,
is one read of a ``forks.PerProcess``, forgotten in a forked child), so it runs in each gunicorn
worker after the fork, needs no gunicorn hook or config file, and never runs in a process that
serves nothing (``flask journal ...``, the gunicorn master with ``--preload``). A new entry wakes the
thread of the process that stored it at once (the factory wires ``Journal.on_stored`` to
``wake``); otherwise it looks for due entries (retries, entries stored by other processes, claims
of dead processes) every ``POLL_SECONDS``. Several threads never deliver one entry: each claim is
atomic in the store. At a clean exit the thread finishes the delivery in flight before the process
goes (``runner.ThreadRunner``).
"""

from __future__ import annotations

import logging
import os

from .runner import Running, ThreadRunner

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0


class Deliverer(ThreadRunner):
    """Delivers ``delivery``'s due entries on a thread of this process; the factory wires
    ``wake`` to the journal's new entries (``Journal.on_stored``)."""

    thread_name = "journal-deliverer"

    def __init__(self, delivery, *, poll: float = POLL_SECONDS):
        super().__init__()
        self.delivery = delivery
        self.poll = poll

    def run(self, running: Running) -> None:
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
