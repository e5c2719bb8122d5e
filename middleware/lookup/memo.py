"""The caller lookup's hit-path memos: what a cache hit reuses instead of making it again.

A PBX asks about the same few callers over and over; on a hit nothing should be split, validated,
built or encoded twice. Three memos, each with its rule (``tests/test_memo.py`` holds them):

1. ``QueryMemo``: a loaded query string, kept by the raw bytes of the query string, so a repeat is
   not even split. Only a valid one is kept (an invalid one raises and is refused afresh each
   time); one longer than ``max_chars`` never; at most ``size`` (the least recently used goes
   first); what it gives back is read-only. The loader must be pure: same query string, same
   answer (it reads the arguments from those bytes alone, so the WSGI path loads as a view does).
2. ``entry_answer``: one answer object per cache entry, made on the entry's first fresh hit and
   kept on the entry (``cache.Entry.answer``); every later fresh hit answers that same object.
3. ``derived``: what a view makes of such an answer (its JSON body, its display name) is kept on
   the answer object itself (``LookupResult.memo``), keyed by whatever else it depends on. So it
   lives exactly as long as the answer, and so as the entry: a refreshed or forgotten entry is a
   new entry with a new answer and nothing of the old one. Any other answer (a miss, a stale or a
   shared-cache hit) carries no memo and is derived afresh.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from types import MappingProxyType

_MISSING = object()
QUERY_SIZE = 4096
QUERY_CHARS = 512  # longer query strings are loaded afresh each time, never remembered


class QueryMemo:
    """``load(raw)`` (a mapping) remembered by ``raw``, the request's query string."""

    def __init__(
        self,
        load: Callable[[bytes], Mapping],
        *,
        size: int = QUERY_SIZE,
        max_chars: int = QUERY_CHARS,
    ):
        def loaded(raw: bytes) -> Mapping:
            return MappingProxyType(load(raw))

        self._load = loaded
        self._memo = lru_cache(maxsize=size)(loaded)
        self.max_chars = max_chars
        self.info = self._memo.cache_info

    def __call__(self, raw: bytes) -> Mapping:
        if len(raw) > self.max_chars:
            return self._load(raw)
        return self._memo(raw)


def entry_answer(entry, make: Callable, *args):
    """The one answer of ``entry``: ``make(*args)`` on its first fresh hit, then that object.

    Two first hits at once may both make one; the entry keeps the last, and each is whole."""
    answer = entry.answer
    if answer is None:
        answer = entry.answer = make(*args)
    return answer


def derived(answer, key, make: Callable, *args):
    """``make(answer, *args)``, kept on ``answer`` under ``key`` when it is an entry's answer.

    ``key`` names everything besides ``answer`` the result depends on (``args`` included)."""
    memo = answer.memo
    if memo is None:
        return make(answer, *args)
    value = memo.get(key, _MISSING)
    if value is _MISSING:
        value = memo[key] = make(answer, *args)
    return value
