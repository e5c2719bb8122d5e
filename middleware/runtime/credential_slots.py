"""How many streams one credential holds open at once on this host (``CTI_STREAMS_PER_CREDENTIAL``).

A stream's credential is a browser's agent token as a rule, which leaks more easily than a server's
key; without a bound, one credential could open streams until the host runs out of sockets. The
bound holds across the processes of one host (the stream server, every gunicorn worker) without a
store and without anything to clean up after a crash: a stream holds an exclusive ``flock`` on one
of ``limit`` empty files named after its credential, in a directory that one server start's
processes share, and the kernel lets go of the lock when the stream closes the file or its process
dies. A lock taken with ``LOCK_NB`` never waits, so taking a slot costs a few system calls.

What is counted is one credential on one stream: an agent token on its agent's stream, or a full
key on one agent's stream (a CRM server that relays every agent's pops with its one key holds
``limit`` streams per agent, not ``limit`` in all).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..errors import Busy
from . import metrics

BUSY_RETRY_SECONDS = 5


class CredentialSlots:
    def __init__(self, limit: int, directory: Path | None = None):
        self.limit = limit
        self._directory = directory

    @property
    def directory(self) -> Path:
        """The metrics directory of this server start (``make run`` and gunicorn's workers share
        it: ``metrics.server_directory``), else one of this process's own."""
        if self._directory is None:
            shared = metrics.shared_directory()
            base = Path(shared) if shared else Path(tempfile.mkdtemp(prefix="cti-streams-"))
            directory = base / "stream-slots"
            directory.mkdir(mode=0o700, exist_ok=True)
            self._directory = directory
        return self._directory

    def take(self, credential: str, stream: str) -> Callable[[], None]:
        """A slot for ``credential`` (a principal's client id) on ``stream`` (an agent's extension,
        or ``board``), as the function that gives it back (safe to call twice); ``Busy`` when the
        credential holds ``limit`` such streams on this host already."""
        name = hashlib.sha256(f"{credential}\0{stream}".encode()).hexdigest()[:32]
        for slot in range(self.limit):
            descriptor = os.open(self.directory / f"{name}.{slot}", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(descriptor)
                continue
            return _release(descriptor)
        raise Busy(
            f"This credential holds {self.limit} open streams of this kind already "
            "(CTI_STREAMS_PER_CREDENTIAL); close one, or try again shortly.",
            retry_after=BUSY_RETRY_SECONDS,
        )


def _release(descriptor: int) -> Callable[[], None]:
    held = [descriptor]

    def release() -> None:
        try:
            given_back = held.pop()  # once, whichever thread calls first
        except IndexError:
            return
        with contextlib.suppress(OSError):
            os.close(given_back)  # closing the file lets go of its lock

    return release
