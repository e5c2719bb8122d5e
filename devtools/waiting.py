"""One way to wait on a condition: poll it until it holds or a deadline passes, then fail saying
what was awaited. Never sleep-and-hope: a test waits on the condition it needs."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T],
    timeout: float,
    message: str | Callable[[], str],
    *,
    interval: float = 0.05,
) -> T:
    """``predicate()`` every ``interval`` seconds until it returns something true, which is
    returned; an AssertionError naming ``message`` (or what ``message()`` says then: the state
    reached) if ``timeout`` seconds pass first. An exception ``predicate`` raises goes through."""
    deadline = time.monotonic() + timeout
    while True:
        if result := predicate():
            return result
        if time.monotonic() >= deadline:
            what = message() if callable(message) else message
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(interval)
