"""One pool per process for upstream work that a request thread must not be held by.

A caller lookup is bounded by ``CTI_LOOKUP_TIMEOUT`` however the CRM answers, and ``requests``
offers no total deadline (its read timeout applies to each read): so the CRM request runs here,
the request thread waits on its single flight up to the deadline, and an answer that comes later
still fills the cache. Revalidations of expired contacts run here too. The pool is made on first
use in each process (``forks.PerProcess``: its threads do not survive a fork).

Work that waits on this pool's work must not run in it: a burst of it would hold every thread
waiting on flights queued behind it, and each caller's lookup would then time out. So two small
pools stand beside this one, each for such waiters: the ringing call's cache warm
(``services/rings.py``) and the stream server's reads and pop messages (``stream_server.py``).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

from .forks import PerProcess

MAX_THREADS = 32

_pool = PerProcess(lambda: ThreadPoolExecutor(MAX_THREADS, thread_name_prefix="cti-background"))


def submit(fn, *args) -> Future:
    return _pool.get().submit(fn, *args)
