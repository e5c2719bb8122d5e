"""The contact cache of one worker: fresh, revalidating, negative and stale-if-error entries, and
single flight.

A phone rings and the PBX asks who is calling: the answer must not wait on the CRM when we already
know it, and a burst of lookups of one new number must reach the CRM once. Entries are kept by key
(E.164 number or ``email:`` + lower-cased address) in a ``cachetools.LRUCache`` under one lock
(cachetools classes are not thread-safe, and the work under the lock is a few dict operations).
Each entry carries its own times, so the LRU bounds only the count. A ``Flight`` is the one
upstream lookup in progress for a key; later callers wait for its outcome instead of asking the
CRM again, as long as it is younger than the wait they are allowed (``take_off``'s ``join_within``):
an older flight has already outlived its first caller's budget, so a new one takes its place while
the old one, kept aside, may still land and fill the cache.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from cachetools import LRUCache


class Entry:
    """A cached answer: ``contact`` None means "no such contact". Until ``fresh_until`` it answers
    as it is; until ``revalidate_until`` (a found contact) it answers at once, marked stale, while
    a background lookup refreshes it; until ``stale_until`` it answers only when the CRM fails.
    ``answer`` is the one answer of its fresh hits (``middleware/lookup/memo.py``)."""

    __slots__ = ("contact", "fresh_until", "revalidate_until", "stale_until", "answer")

    def __init__(
        self,
        contact: dict | None,
        fresh_until: float,
        stale_until: float,
        revalidate_until: float | None = None,
    ):
        self.contact = contact
        self.fresh_until = fresh_until
        self.stale_until = stale_until
        self.revalidate_until = fresh_until if revalidate_until is None else revalidate_until
        self.answer = None


@dataclass(frozen=True)
class Lifetimes:
    """How long an answer lives (seconds from its fetch): the rule of the contract, written once
    for the worker's cache and the shared one."""

    ttl: float
    negative_ttl: float
    stale_ttl: float
    revalidate_ttl: float = 0

    def of(self, contact: dict | None, now: float) -> tuple[float, float, float]:
        """(fresh_until, revalidate_until, stale_until) of an answer fetched at ``now``.
        Revalidation and the stale window count from the fetch; revalidation never outlasts the
        stale window."""
        if contact is None:
            until = now + self.negative_ttl
            return until, until, until
        fresh = now + self.ttl
        stale = now + max(self.ttl, self.stale_ttl)
        return fresh, max(fresh, min(now + self.revalidate_ttl, stale)), stale


class Flight:
    """One upstream lookup in progress since ``took_off`` (the cache's clock); followers wait on
    it."""

    __slots__ = ("_done", "contact", "error", "discarded", "took_off")

    def __init__(self, took_off: float = 0.0):
        self._done = threading.Event()
        self.took_off = took_off
        self.contact: dict | None = None
        self.error: BaseException | None = None
        self.discarded = False  # forgotten while in flight: its answer must not be cached

    def finish(self, contact: dict | None = None, error: BaseException | None = None) -> None:
        self.contact, self.error = contact, error
        self._done.set()

    def wait(self, timeout: float) -> bool:
        return self._done.wait(max(0.0, timeout))


class ContactCache:
    def __init__(self, lifetimes: Lifetimes, *, size: int, clock=time.monotonic):
        self.lifetimes = lifetimes
        self.size = size
        self.clock = clock
        self._entries: LRUCache[str, Entry] = LRUCache(maxsize=size)
        self._flights: dict[str, Flight] = {}  # the flight a caller joins, per key
        # Flights a newer one replaced (``take_off``), per key, until they land.
        self._overtaken: dict[str, list[Flight]] = {}
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
        return entry

    def put(self, key: str, contact: dict | None) -> None:
        """Remember an answer fetched now (times as ``Lifetimes`` says)."""
        with self._lock:
            self._store(key, contact)

    def keep(self, key: str, entry: Entry) -> None:
        """Remember an entry read from the shared cache, fresh no longer than our own ``ttl``."""
        now = self.clock()
        lifetimes = self.lifetimes
        ttl = lifetimes.ttl if entry.contact is not None else lifetimes.negative_ttl
        fresh_until = min(entry.fresh_until, now + ttl)
        kept = Entry(
            entry.contact,
            fresh_until,
            max(fresh_until, entry.stale_until),
            max(fresh_until, entry.revalidate_until),
        )
        with self._lock:
            self._entries[key] = kept

    def _store(self, key: str, contact: dict | None) -> None:
        fresh, revalidate, stale = self.lifetimes.of(contact, self.clock())
        self._entries[key] = Entry(contact, fresh, stale, revalidate)

    def forget(self, key: str) -> None:
        """Drop the entry, and keep every answer now in flight from being stored."""
        with self._lock:
            self._entries.pop(key, None)
            for flight in self._in_flight(key):
                flight.discarded = True

    def drop(self, holds: Callable[[str, Entry | None], bool]) -> list[str]:
        """Forget every entry for which ``holds(key, entry)``, and keep every flight for which
        ``holds(key, None)`` from storing its answer (a privacy erasure); the keys forgotten.
        Rare, so it reads every entry, under the lock: no answer can slip in meanwhile."""
        with self._lock:
            found = [key for key in list(self._entries) if holds(key, self._entries[key])]
            for key in found:
                del self._entries[key]
            for key in {*self._flights, *self._overtaken}:
                if holds(key, None):
                    for flight in self._in_flight(key):
                        flight.discarded = True
        return found

    def _in_flight(self, key: str) -> list[Flight]:
        """Every flight of ``key`` that has not landed (under the lock)."""
        current = self._flights.get(key)
        overtaken = self._overtaken.get(key, [])
        return overtaken if current is None else [*overtaken, current]

    def take_off(self, key: str, join_within: float | None = None) -> tuple[Flight, bool]:
        """The flight for ``key`` and whether the caller leads it (and must ``land`` it).

        A flight that took off ``join_within`` seconds ago or more is not joined: a new one
        replaces it (its first caller has given up on it, and so would this one), while it is
        kept aside until it lands."""
        with self._lock:
            now = self.clock()
            flight = self._flights.get(key)
            if flight is not None:
                if join_within is None or now - flight.took_off < join_within:
                    return flight, False
                self._overtaken.setdefault(key, []).append(flight)
            flight = self._flights[key] = Flight(now)
            return flight, True

    def land(self, key: str, flight: Flight, contact=None, error=None) -> None:
        """End the leader's flight: store a successful answer, then wake every follower. A failed
        flight leaves the entry as it was (a refresh that failed keeps the old contact).

        The answer is stored before the flight is removed, under one lock, so no caller can find
        neither and ask the CRM a second time. A flight that a newer one replaced removes only
        itself (the newer one stays to be joined); the answer of the newest flight to succeed
        wins: flights it overtook store theirs no more."""
        with self._lock:
            if error is None and not flight.discarded:
                self._store(key, contact)
            if self._flights.get(key) is flight:
                del self._flights[key]
                overtaken = self._overtaken.get(key, ())
                if error is None:
                    for older in overtaken:
                        older.discarded = True
            else:
                overtaken = self._overtaken.get(key)
                if overtaken is not None and flight in overtaken:
                    overtaken.remove(flight)
                    if not overtaken:
                        del self._overtaken[key]
        flight.finish(contact, error)

    def __len__(self) -> int:
        return len(self._entries)
