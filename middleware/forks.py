"""What belongs to one process is made again in a forked child: the one place that says so.

gunicorn forks its workers, after importing the app (``--preload``) or before it. A child inherits
its parent's memory but none of its threads, and a socket or file it shared with its parent would
mix two processes' traffic. So a per-process resource (a thread pool, a database engine, a Redis
client, a background thread, a random prefix) is kept in a ``PerProcess``: made on first use, and
forgotten in a forked child (``os.register_at_fork``), which then makes its own on first use.
Module state that is not one value registers a function with ``after_fork`` instead.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

_holders: weakref.WeakSet[PerProcess] = weakref.WeakSet()


class PerProcess(Generic[T]):
    """``make()``'s value, made once per process on first use (``get``); a failed ``make`` is
    tried again on the next ``get``."""

    def __init__(self, make: Callable[[], T]):
        self._make = make
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
        self._value = None


def after_fork(forget: Callable[[], None]) -> Callable[[], None]:
    """Run ``forget`` in every forked child (for module state); returns it, to use as a
    decorator."""
    os.register_at_fork(after_in_child=forget)
    return forget


@after_fork
def _forget_every_value() -> None:
    for holder in list(_holders):
        holder._start_in_child()
