"""One pool per process for upstream work that a request thread must not be held by.

A caller lookup is bounded by ``CTI_LOOKUP_TIMEOUT`` however the CRM answers, and ``requests``
offers no total deadline (its read timeout applies to each read): so the CRM request runs here,
the request thread waits on its single flight up to the deadline, and an answer that comes later
still fills the cache. Revalidations of expired contacts run here too. The pool is made on first
use in each process (``forks.PerProcess``: its threads do not survive a fork).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

from .forks import PerProcess

MAX_THREADS = 32

_pool = PerProcess(lambda: ThreadPoolExecutor(MAX_THREADS, thread_name_prefix="cti-background"))


def submit(fn, *args) -> Future:
    return _pool.get().submit(fn, *args)
