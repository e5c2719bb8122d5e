"""The contact cache of one worker: fresh, negative and stale-if-error entries, and single flight.

A phone rings and the PBX asks who is calling: the answer must not wait on the CRM when we already
know it, and a burst of lookups of one new number must reach the CRM once. Entries are kept by key
(E.164 number or ``email:`` + lower-cased address) in LRU order under one lock (cachetools classes
are not thread-safe, and the work under the lock is a few dict operations). A ``Flight`` is the
one upstream lookup in progress for a key; later callers wait for its outcome instead of asking
the CRM again.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict


class Entry:
    """A cached answer: ``contact`` None means "no such contact". ``answer`` is free for the
    lookup service to keep what a fresh hit of this entry answers, made once."""

    __slots__ = ("contact", "fresh_until", "stale_until", "answer")

    def __init__(self, contact: dict | None, fresh_until: float, stale_until: float):
        self.contact = contact
        self.fresh_until = fresh_until
        self.stale_until = stale_until
        self.answer = None


class Flight:
    """One upstream lookup in progress; followers wait on it."""

    __slots__ = ("_done", "contact", "error", "discarded")

    def __init__(self):
        self._done = threading.Event()
        self.contact: dict | None = None
        self.error: BaseException | None = None
        self.discarded = False  # forgotten while in flight: its answer must not be cached

    def finish(self, contact: dict | None = None, error: BaseException | None = None) -> None:
        self.contact, self.error = contact, error
        self._done.set()

    def wait(self, timeout: float) -> bool:
        return self._done.wait(max(0.0, timeout))


class ContactCache:
    def __init__(
        self,
        *,
        ttl: float,
        negative_ttl: float,
        stale_ttl: float,
        size: int,
        clock=time.monotonic,
    ):
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.stale_ttl = stale_ttl
        self.size = size
        self.clock = clock
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._flights: dict[str, Flight] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Entry | None:
        """The entry under ``key``, fresh or stale (the caller decides); None once useless."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry.stale_until <= self.clock():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
        return entry

    def put(self, key: str, contact: dict | None) -> None:
        """Remember an answer: a contact is fresh for ``ttl`` and may be served stale (when the
        CRM fails) until ``stale_ttl`` after it was fetched; "not found" lasts ``negative_ttl``."""
        with self._lock:
            self._store(key, contact)

    def keep(self, key: str, entry: Entry) -> None:
        """Remember an entry read from the shared cache, fresh no longer than our own ``ttl``."""
        now = self.clock()
        ttl = self.ttl if entry.contact is not None else self.negative_ttl
        fresh_until = min(entry.fresh_until, now + ttl)
        with self._lock:
            self._keep(key, Entry(entry.contact, fresh_until, max(fresh_until, entry.stale_until)))

    def _store(self, key: str, contact: dict | None) -> None:
        now = self.clock()
        if contact is None:
            entry = Entry(None, now + self.negative_ttl, now + self.negative_ttl)
        else:
            entry = Entry(contact, now + self.ttl, now + max(self.ttl, self.stale_ttl))
        self._keep(key, entry)

    def _keep(self, key: str, entry: Entry) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def forget(self, key: str) -> None:
        """Drop the entry, and keep an answer now in flight from being stored."""
        with self._lock:
            self._entries.pop(key, None)
            flight = self._flights.get(key)
            if flight is not None:
                flight.discarded = True

    def take_off(self, key: str) -> tuple[Flight, bool]:
        """The flight for ``key`` and whether the caller leads it (and must ``land`` it)."""
        with self._lock:
            flight = self._flights.get(key)
            if flight is not None:
                return flight, False
            flight = self._flights[key] = Flight()
            return flight, True

    def land(self, key: str, flight: Flight, contact=None, error=None) -> None:
        """End the leader's flight: store a successful answer, then wake every follower.

        The answer is stored before the flight is removed, under one lock, so no caller can find
        neither and ask the CRM a second time."""
        with self._lock:
            if error is None and not flight.discarded:
                self._store(key, contact)
            if self._flights.get(key) is flight:
                del self._flights[key]
        flight.finish(contact, error)

    def __len__(self) -> int:
        return len(self._entries)
