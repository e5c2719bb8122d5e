"""The do-not-call list: a cc_agent phone list (CTI_DNC_LIST_ID) that click-to-call refuses to dial.

The list is fetched at most once a minute per worker and kept in memory as a set of E.164 numbers.
The PBX writes its entries like ``972xxxxxxx``: an entry is read as international digits and, when
it also makes sense so, as a national number of CTI_DEFAULT_REGION; every valid reading is refused
(on a do-not-call list a false refusal is the lesser harm). When the PBX cannot be asked, the last
copy serves for up to CTI_CACHE_STALE_TTL seconds; with no copy at all the call fails with the
upstream's error rather than dial a number that may be on the list.
"""

from __future__ import annotations

import logging
import threading
import time

import phonenumbers
from phonenumbers import PhoneNumber

from ..errors import DestinationNotAllowed, UpstreamError
from ..numbers import e164

log = logging.getLogger(__name__)

FRESH_SECONDS = 60


class DoNotCallList:
    def __init__(self, client, list_id: str, *, region: str, stale_seconds: float):
        self.client = client
        self.list_id = list_id
        self.region = region
        self.stale_seconds = stale_seconds
        self._numbers: frozenset[str] | None = None
        self._fetched_at = 0.0
        self._lock = threading.Lock()  # concurrent clicks of one worker make one fetch

    def check(self, number: PhoneNumber) -> None:
        if e164(number) in self._current():
            raise DestinationNotAllowed("The number is on the do-not-call list.")

    def _current(self) -> frozenset[str]:
        with self._lock:
            age = time.monotonic() - self._fetched_at
            if self._numbers is not None and age < FRESH_SECONDS:
                return self._numbers
            try:
                entries = self.client.phone_list_numbers(self.list_id)
            except UpstreamError as exc:
                if self._numbers is not None and age < self.stale_seconds:
                    log.warning("do-not-call list not refreshed (%s); using the last copy", exc)
                    return self._numbers
                raise
            self._numbers = frozenset(n for entry in entries for n in readings(entry, self.region))
            self._fetched_at = time.monotonic()
            log.info("do-not-call list %s: %d numbers", self.list_id, len(self._numbers))
            return self._numbers


def readings(entry: str, region: str) -> set[str]:
    """Every valid E.164 reading of a list entry."""
    text = entry.strip()
    if text.startswith("+"):
        candidates = [(text, None)]
    elif text.startswith("00"):
        candidates = [("+" + text[2:], None)]
    elif text.startswith("0"):
        candidates = [(text, region)]
    else:
        candidates = [("+" + text, None), (text, region)]
    found = set()
    for candidate, where in candidates:
        try:
            number = phonenumbers.parse(candidate, where)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            found.add(e164(number))
    return found


def build_dnc(settings) -> DoNotCallList | None:
    """The list named by CTI_DNC_LIST_ID (settings guarantee cc_agent's URL and key), or None."""
    if not settings.dnc_list_id:
        return None
    from ..upstreams.base import edge_options
    from ..upstreams.cc_agent import CcAgentClient

    client = CcAgentClient(
        settings.cc_agent_url, settings.cc_agent_api_key, **edge_options(settings)
    )
    return DoNotCallList(
        client,
        settings.dnc_list_id,
        region=settings.default_region,
        stale_seconds=settings.cache_stale_ttl,
    )
