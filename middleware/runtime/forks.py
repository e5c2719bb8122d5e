"""What belongs to one process is made again in a forked child: the one place that says so.

gunicorn forks its workers, after importing the app (``--preload``) or before it. A child inherits
its parent's memory but none of its threads, and a socket or file it shared with its parent would
mix two processes' traffic. So a per-process resource (a thread pool, a database engine, a Redis
client, a background thread, a random prefix) is kept in a ``PerProcess``: made on first use, and
forgotten in a forked child (``os.register_at_fork``), which then makes its own on first use.
Module state that is not one value registers a function with ``after_fork`` instead.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)

_holders: weakref.WeakSet[PerProcess] = weakref.WeakSet()


class PerProcess(Generic[T]):
    """``make()``'s value, made once per process on first use (``get``); a failed ``make`` is
    tried again on the next ``get``. ``in_child``, if given, is handed the parent's value in a
    forked child before it is forgotten (to let go of it without touching what the parent still
    uses: an engine's pooled connections, a file descriptor)."""

    def __init__(self, make: Callable[[], T], *, in_child: Callable[[T], object] | None = None):
        self._make = make
        self._in_child = in_child
        self._value: T | None = None
        self._lock = threading.Lock()
        _holders.add(self)

    def get(self) -> T:
        value = self._value
        if value is None:
            with self._lock:
                value = self._value
                if value is None:
                    value = self._value = self._make()
        return value

    def peek(self) -> T | None:
        """This process's value if it has been made, else None (nothing is made)."""
        return self._value

    def forget(self) -> None:
        """Drop this process's value: the next ``get`` makes a new one."""
        self._value = None

    def _start_in_child(self) -> None:
        self._lock = threading.Lock()  # another thread of the parent may have held it
        inherited, self._value = self._value, None
        if inherited is not None and self._in_child is not None:
            self._in_child(inherited)


def after_fork(forget: Callable[[], None]) -> Callable[[], None]:
    """Run ``forget`` in every forked child (for module state); returns it, to use as a
    decorator."""
    os.register_at_fork(after_in_child=forget)
    return forget


@after_fork
def _forget_every_value() -> None:
    for holder in list(_holders):
        try:
            holder._start_in_child()
        except Exception:  # one holder's failure must not leave the others' values inherited
            log.exception("after fork: letting go of an inherited value failed")
