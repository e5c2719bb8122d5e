"""A duty run by one daemon thread per process: the journal deliverer's, retention's.

``ensure_started`` starts this process's thread unless it runs (one read of a ``forks.PerProcess``,
forgotten in a forked child); ``wake`` cuts its wait short; ``stop`` ends it after the pass in
flight (at a clean exit, registered with ``atexit``, or at the end of a test). The factory starts
them on the first request a process serves (``factory._before_request``).
"""

from __future__ import annotations

import atexit
import threading

from ..runtime.forks import PerProcess


class Running:
    """This process's thread and the events it waits on."""

    def __init__(self, target, name: str):
        self.wake, self.stop = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=target, args=(self,), name=name, daemon=True)


class ThreadRunner:
    """Runs ``run(running)`` on a thread of this process; ``run`` returns once ``running.stop``
    is set, and waits on ``running.wake`` (or ``running.stop``) between passes."""

    thread_name = "runner"
    exit_wait = 10.0  # seconds ``stop`` waits for the pass in flight

    def __init__(self):
        self._running = PerProcess(self._start)

    def ensure_started(self) -> None:
        """Start this process's thread unless it runs already (cheap: one attribute read)."""
        self._running.get()

    def wake(self) -> None:
        # Set already means the thread has yet to clear it and look: it will see this work too.
        running = self._running.peek()
        if running is not None and not running.wake.is_set():
            running.wake.set()

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the pass in flight (at process exit, or at the end of a test)."""
        running = self._running.peek()
        if running is None:
            return
        running.stop.set()
        running.wake.set()
        running.thread.join(self.exit_wait if timeout is None else timeout)
        self._running.forget()

    def run(self, running: Running) -> None:
        raise NotImplementedError

    def _start(self) -> Running:
        running = Running(self.run, self.thread_name)
        running.thread.start()
        atexit.register(self.stop)
        return running
