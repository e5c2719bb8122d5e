"""One pool per process for upstream work that a request thread must not be held by.

A caller lookup is bounded by ``CTI_LOOKUP_TIMEOUT`` however the CRM answers, and ``requests``
offers no total deadline (its read timeout applies to each read): so the CRM request runs here,
the request thread waits on its single flight up to the deadline, and an answer that comes later
still fills the cache. Revalidations of expired contacts run here too. The pool is made on first
use and forgotten in a forked child (its threads do not survive a fork).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor

MAX_THREADS = 32

_pool: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def submit(fn, *args) -> Future:
    global _pool
    if _pool is None:
        with _lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(MAX_THREADS, thread_name_prefix="cti-background")
    return _pool.submit(fn, *args)


def _forget_after_fork() -> None:
    global _pool, _lock
    _pool, _lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
