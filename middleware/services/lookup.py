"""Caller lookup: who is calling, before the second ring, whatever form the number is written in.

A number is one cache key (E.164) however it was typed. A fresh entry answers without any I/O. An
expired found contact younger than ``CTI_CACHE_REVALIDATE_TTL`` answers at once, marked stale,
while one background lookup refreshes it: a caller the cache knows never waits on the CRM. A miss
asks the CRM for the number in each ``CTI_CRM_PHONE_FORMATS`` form in turn (first found wins), and
concurrent misses of one key share that one series (single flight) while it is younger than the
lookup budget; a later miss starts a new one. The series runs in the background pool
(``middleware/runtime/background.py``) and every caller waits on the flight up to its
``CTI_LOOKUP_TIMEOUT`` deadline, so a CRM that answers slowly, drips its headers or never answers
holds no request thread past the budget, and an answer that comes late still fills the cache. When
the CRM fails, a contact fetched less than ``CTI_CACHE_STALE_TTL`` ago is served marked stale; with
such a fallback at hand the CRM gets one try, not retries, so the stale answer comes at once.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from urllib.parse import quote

from phonenumbers import PhoneNumber

from ..errors import UpstreamError, UpstreamTimeout, UpstreamUnavailable
from ..lookup.cache import ContactCache, Entry, Lifetimes
from ..lookup.memo import entry_answer
from ..lookup.shared_cache import SharedContactCache
from ..numbers import NumberInfo, Written, dial_string, e164, number_info
from ..runtime import background, metrics
from ..runtime.masking import masked_number
from ..settings import Settings
from ..upstreams.crm import Crm
from .forgetting import Follower, erase_everywhere

log = logging.getLogger(__name__)

PHONE_FIELDS = ("mobile_phone", "business_phone", "business_phone2")  # of a contact
# Seconds the lookup pool's thread takes to wake and send a CRM request (a few tenths of a
# millisecond): a waiting caller does its own work after that (``_lookup``'s ``meanwhile``), so
# the two threads do not take turns at the interpreter's lock while the request goes out.
SENDING = 0.001


@dataclass(frozen=True, slots=True, eq=False)
class LookupResult:
    """Compared by identity. A cache entry's one answer carries a ``memo`` (``middleware/lookup/memo.py``)."""

    found: bool
    phone: str | None  # E.164: the number looked up, or the found contact's for an email lookup
    contact: dict | None  # the contract's contact shape
    cached: bool
    stale: bool = False
    memo: dict | None = field(default=None, repr=False)
    number_info: NumberInfo | None = None  # of the number looked up; None for an email lookup


class Lookup:
    """``shared`` (with Redis) is the cache of every host; ``cache`` is then its short first level:
    an entry is trusted for ``CTI_CACHE_LOCAL_TTL`` seconds at most before Redis is asked again.
    ``erasures`` (the store's erasure log): this process forgets a number erased anywhere before
    that erasure answers (a thread follows the log and says how far it has come; the hit path
    reads nothing: ``forgetting.py``)."""

    def __init__(
        self,
        settings: Settings,
        crm: Crm,
        cache: ContactCache | None = None,
        shared: SharedContactCache | None = None,
        erasures=None,
    ):
        self.settings = settings
        self.crm = crm
        self.shared = shared
        local = settings.cache_local_ttl if shared is not None else float("inf")
        lifetimes = Lifetimes(
            min(settings.cache_ttl, local),
            min(settings.cache_negative_ttl, local),
            settings.cache_stale_ttl,
            settings.cache_revalidate_ttl,
        )
        self.cache = cache or ContactCache(lifetimes, size=settings.cache_size)
        # A CRM request that outlives the caller's wait may still finish and fill the cache.
        self.background_timeout = max(settings.lookup_timeout, settings.upstream_timeout)
        self.erasures = erasures
        self.follower = None if erasures is None else Follower(erasures, self.forget_erased)
        self._follow = _nothing if self.follower is None else self.follower.ensure_started

    # lookups ------------------------------------------------------------------------------------

    def lookup_phone(
        self, number: PhoneNumber, *, fresh_or_unknown: bool = False
    ) -> LookupResult | None:
        """``fresh_or_unknown``: only the answer of a fresh entry of this process's cache, or the
        lookup of a number whose contact no cache here holds (no entry with a contact in this
        process, no shared cache: no stale contact can stand in, and no line is logged on this
        thread); None, nothing counted or asked, for any other. The WSGI path's
        (``api/lookup_hits.py``)."""
        phone = e164(number)
        return self._lookup(
            phone,
            lambda deadline, retry: self._by_phone(number, deadline, retry),
            lambda contact: (phone, number_info(phone)),
            fresh_or_unknown,
            meanwhile=lambda: number_info(phone),  # memoised: the answer's own call finds it
        )

    def lookup_email(self, email: str, *, fresh_or_unknown: bool = False) -> LookupResult | None:
        address = email.strip().lower()
        return self._lookup(
            f"email:{address}",
            lambda deadline, retry: self.crm.record_by_email(
                address, deadline=deadline, retry=retry
            ),
            _shown_by_email,
            fresh_or_unknown,
        )

    @property
    def follower_id(self) -> str | None:
        """This process's place among the erasure log's followers (None before its first lookup)."""
        return self.follower.id if self.follower is not None else None

    def forget(self, number: PhoneNumber) -> None:
        """Drop what is cached for this number (a contact was just created under it)."""
        self._forget(e164(number))

    def forget_email(self, email: str) -> None:
        self._forget(f"email:{email.strip().lower()}")

    def _forget(self, key: str) -> None:
        self.cache.forget(key)
        if self.shared is not None:
            self.shared.forget(key)

    # privacy --------------------------------------------------------------------------------------

    def cached_contact(self, number: PhoneNumber) -> dict | None:
        """The contact this process or the shared cache holds for the number (no CRM asked)."""
        key = e164(number)
        entry = self.cache.get(key)
        if entry is None and self.shared is not None:
            entry = self.shared.get(key)
        return entry.contact if entry is not None else None

    def erase(self, number: Written) -> int:
        """Forget the number in this process and the shared cache: its own entry (every spelling
        is one key) and each contact that has it as a phone; answers in flight are not stored.
        How many keys went. Other processes forget it through the erasure log."""

        def has(contact: dict | None) -> bool:
            return contact is not None and any(
                number.is_phone(contact.get(f)) for f in PHONE_FIELDS
            )

        found = set(
            self.cache.drop(lambda key, entry: key == number.e164 or (entry and has(entry.contact)))
        )
        if self.shared is not None:
            found.update(self.shared.erase(lambda key, contact: key == number.e164 or has(contact)))
            self.shared.forget(number.e164)  # its flight lock, when no entry was there yet
        return len(found)

    def forget_erased(self, mask: str) -> int:
        """Forget, in this process, every entry that may hold the number ``mask`` stands for (an
        erasure elsewhere): its key masks the same, or its contact has a phone ending in the same
        four digits. A few others may go too; they cost a CRM lookup each."""
        tail = mask[-4:]

        def ends_in_tail(value) -> bool:
            return isinstance(value, str) and "".join(filter(str.isdigit, value)).endswith(tail)

        def holds(key: str, entry: Entry | None) -> bool:
            if key.endswith(tail) and masked_number(key) == mask:
                return True
            contact = entry.contact if entry is not None else None
            return contact is not None and any(ends_in_tail(contact.get(f)) for f in PHONE_FIELDS)

        return len(self.cache.drop(holds))

    def _lookup(
        self, key: str, fetch, shown, fresh_or_unknown: bool = False, meanwhile=None
    ) -> LookupResult | None:
        """The answer for ``key``; raises the CRM's problem when nothing usable.
        ``shown(contact)`` is the number the answer shows and its ``NumberInfo`` (or None); it is
        called once per answer made, so a fresh hit's remembered answer calls it no more.
        ``meanwhile()``, when given, runs while a caller waits on the CRM: the work of the answer
        that does not depend on the contact, done once the request has gone out and while the
        CRM works, rather than after the answer came (a miss's latency over the CRM's); an
        answer back within ``SENDING`` leaves it to ``shown``."""
        self._follow()
        entry = self.cache.get(key)
        now = time.monotonic()
        if entry is not None and now < entry.fresh_until:
            metrics.count_lookup("hit")
            return entry_answer(entry, _entry_result, entry.contact, shown)
        if fresh_or_unknown and (
            self.shared is not None or (entry is not None and entry.contact is not None)
        ):
            return None
        deadline = now + self.settings.lookup_timeout
        if self.shared is not None:
            shared = self.shared.get(key)
            if shared is not None and time.monotonic() < shared.fresh_until:
                self.cache.keep(key, shared)
                metrics.count_lookup("hit")
                return _result(shared.contact, shown, True, False)
            if shared is not None and shared.contact is not None:
                entry = shared
        fallback = entry if entry is not None and entry.contact is not None else None
        if fallback is not None and time.monotonic() < fallback.revalidate_until:
            self._flight(key, fetch, retry=False, join_within=None)  # no caller waits on it
            metrics.count_lookup("stale")
            return _result(fallback.contact, shown, True, True)
        flight = self._flight(key, fetch, retry=fallback is None)
        if meanwhile is not None and not flight.wait(SENDING):
            meanwhile()
        if flight.wait(deadline - time.monotonic()):
            contact, error = flight.contact, flight.error
        else:
            contact, error = None, UpstreamTimeout(self.crm.name, "did not answer in time")
        if error is None:
            metrics.count_lookup("miss")
            return _result(contact, shown, False, False)
        return _result(self._stale_or_raise(key, fallback, error), shown, True, True)

    def _flight(self, key: str, fetch, *, retry: bool, join_within: float | None = -1.0):
        """The one CRM lookup in progress for ``key``, started in the background if none is.

        A lookup older than ``CTI_LOOKUP_TIMEOUT`` is not joined: its first caller has answered
        504 already, and a caller joining it could only wait for its end (it may run up to
        ``background_timeout``) to answer the same. A new lookup takes its place; the old one may
        still land and fill the cache."""
        if join_within is not None and join_within < 0:
            join_within = self.settings.lookup_timeout
        flight, leader = self.cache.take_off(key, join_within=join_within)
        if leader:
            deadline = time.monotonic() + self.background_timeout
            try:
                background.submit(self._fly, key, flight, fetch, deadline, retry)
            except RuntimeError as exc:  # the pool is shut down: the process is exiting
                self.cache.land(key, flight, None, exc)
        return flight

    def _fly(self, key: str, flight, fetch, deadline: float, retry: bool) -> None:
        contact = error = None
        try:
            contact = self._fetch(key, fetch, deadline, retry)
        except BaseException as exc:
            error = exc
        finally:
            self.cache.land(key, flight, contact, error)
            # The callers just woken answer first: this thread lets go of the CPU and the
            # interpreter's lock before it returns to the pool, which it would otherwise hold
            # until it waits for its next work. On a worker held to one CPU (gunicorn.conf.py)
            # a miss was answered up to 0.1 ms sooner in A/B runs (docs/benchmarks.md).
            os.sched_yield()

    def _fetch(self, key: str, fetch, deadline: float, retry: bool) -> dict | None:
        """The CRM's answer, asked once across every host when the cache is shared."""
        if self.shared is None:
            return fetch(deadline, retry)
        return self.shared.fetch(
            key, lambda: fetch(deadline, retry), deadline, upstream=self.crm.name
        )

    def _stale_or_raise(self, key: str, fallback: Entry | None, error: BaseException) -> dict:
        if fallback is not None and time.monotonic() < fallback.stale_until:
            metrics.count_lookup("stale")
            log.warning("CRM lookup failed, serving a stale contact: %s", _reason(error))
            return fallback.contact
        metrics.count_lookup("error")
        raise error

    def _by_phone(self, number: PhoneNumber, deadline: float, retry: bool) -> dict | None:
        """Each configured form in turn, first found wins, all within one deadline."""
        region = self.settings.default_region
        known = e164(number)
        tried = []
        for form in self.settings.crm_phone_formats:
            written = dial_string(number, form, region)
            if written in tried:
                continue
            tried.append(written)
            contact = self.crm.record_by_phone(written, deadline=deadline, retry=retry, e164=known)
            if contact is not None:
                return contact
        return None

    # search and create --------------------------------------------------------------------------

    def search(self, term: str) -> list[dict]:
        return self.crm.autocomplete(term)

    def create(
        self,
        *,
        first_name: str,
        last_name: str,
        phone: PhoneNumber,
        email: str | None = None,
        company: str | None = None,
    ) -> dict:
        """Create the contact in the CRM (number in the first CRM form) and forget any cached
        "not found" for it, so the next lookup asks the CRM again: here at once, in every other
        worker and host through the erasure log (the log of numbers every process forgets)."""
        written = dial_string(
            phone, self.settings.crm_phone_formats[0], self.settings.default_region
        )
        # The CRM's record shows the number as written to it: it reads back as the E.164 given.
        contact = self.crm.create_contact(first_name, last_name, written, e164=e164(phone))
        self.cache.forget(e164(phone))
        if email:
            self.cache.forget(f"email:{email.strip().lower()}")
        try:
            self._forget_created(phone, email)
        except UpstreamUnavailable as exc:
            # The contact exists in the CRM, and the answer says so (a 503 would have the agent
            # create it again). A "not found" another process or host keeps lives out its
            # CTI_CACHE_NEGATIVE_TTL.
            log.warning("contact created; the other caches could not be told: %s", exc.detail)
        contact = dict(contact)
        contact["mobile_phone"] = contact.get("mobile_phone") or e164(phone)
        contact["email"] = contact.get("email") or email
        contact["company"] = contact.get("company") or company
        return contact

    def _forget_created(self, phone: PhoneNumber, email: str | None) -> None:
        """The shared cache and every other process forget a created contact's number (and
        email): every other process before this answers (``forgetting.erase_everywhere``)."""
        if self.shared is not None:
            self.shared.forget(e164(phone))
            if email:
                self.shared.forget(f"email:{email.strip().lower()}")
        if self.erasures is not None:
            erase_everywhere(self.erasures, masked_number(e164(phone)), own=self.follower_id)

    # screen pop ---------------------------------------------------------------------------------

    def screen_pop_url(self, result: LookupResult) -> str | None:
        """``CTI_POP_CONTACT_URL`` (known caller) or ``CTI_POP_UNKNOWN_URL`` filled in, values
        URL-encoded; None when the matching setting is unset."""
        if result.found:
            template = self.settings.pop_contact_url
            contact = result.contact
            values = {
                "id": contact.get("id"),
                "entity_type": contact.get("entity_type"),
                "phone": result.phone,
                "customer_number": contact.get("customer_number"),
            }
        else:
            template = self.settings.pop_unknown_url
            values = {"phone": result.phone}
        if not template:
            return None
        for name, value in values.items():
            template = template.replace("{" + name + "}", quote(value or "", safe=""))
        return template


def _result(contact: dict | None, shown, cached: bool, stale: bool, memo=None) -> LookupResult:
    phone, info = shown(contact)
    return LookupResult(contact is not None, phone, contact, cached, stale, memo, info)


def _entry_result(contact: dict | None, shown) -> LookupResult:
    """A fresh entry's one answer: the only kind that carries a memo."""
    return _result(contact, shown, True, False, memo={})


def _shown_by_email(contact: dict | None) -> tuple[str | None, None]:
    """An email lookup shows the contact's number and no number information."""
    return _phone_of(contact), None


def _nothing() -> None:
    pass


def _phone_of(contact: dict | None) -> str | None:
    if contact is None:
        return None
    for key in PHONE_FIELDS:
        value = contact.get(key)
        if value and value.startswith("+"):
            return value
    return None


def _reason(error: BaseException) -> str:
    return error.detail if isinstance(error, UpstreamError) else type(error).__name__
