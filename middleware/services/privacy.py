"""Access and erasure by phone number (contract section 4, privacy and retention).

Everything the service stores about a number is in the store's parts listed once, in ``ERASABLE``
(each offers ``for_number`` and ``erase_number``), plus the contact cache of every process. An
access request reads them; an erasure empties them in turn: the journal (entries whose call log's
``Number`` is the number, whatever their status, with their legs: a deliverer that holds one finds
its claim gone before it sends, ``Delivery._deliver``), the screen-pop events, the claims (dedupe
and replayable click-to-call answers), then the cache of this process and of Redis, and last the
erasure log, from which every other process (worker, stream server, host) forgets the number
before the erasure answers (``forgetting.erase_everywhere``). The erasure is logged as one line
of counts, never the number.
"""

from __future__ import annotations

import logging

from phonenumbers import PhoneNumber

from ..numbers import e164, written
from ..runtime import logs
from ..runtime.masking import masked_number
from ..store import NumberData, Store
from .forgetting import erase_everywhere

log = logging.getLogger(__name__)

#: The parts of the store that hold numbers, by the name the answers use: add a part here and both
#: access and erasure cover it.
ERASABLE = (
    ("journal", lambda store: store.journal_numbers),
    ("events", lambda store: store.event_numbers),
    ("claims", lambda store: store.claim_numbers),
    ("callbacks", lambda store: store.callbacks),
    ("board", lambda store: store.board),  # the customer of a call in progress (or just ended)
)
LISTED = ("journal", "callbacks")  # what the access answer shows and the erasure answer counts


class Privacy:
    def __init__(self, store: Store, lookup, *, erasable=ERASABLE):
        self.store = store
        self.lookup = lookup
        self.parts: tuple[tuple[str, NumberData], ...] = tuple(
            (name, part(store)) for name, part in erasable
        )

    def access(self, number: PhoneNumber) -> dict:
        """Everything stored about the number: its journal entries, its callbacks, the contact
        cached for it (``null`` when none is)."""
        e164_number = e164(number)
        found = {name: part.for_number(e164_number) for name, part in self.parts if name in LISTED}
        return {
            "number": e164_number,
            **{name: found.get(name, []) for name in LISTED},
            "contact": self.lookup.cached_contact(number),
        }

    def erase(self, number: PhoneNumber) -> dict:
        """Erase the number everywhere (see the module); the counts of what went."""
        e164_number = e164(number)
        counts = {name: part.erase_number(e164_number) for name, part in self.parts}
        counts["cache"] = self.lookup.erase(written(e164_number))
        # Every other process forgets it before this answers: the entries they dropped are
        # copies of the same keys, so the count is the most any one process held.
        elsewhere = erase_everywhere(
            self.store.erasures, masked_number(e164_number), own=self.lookup.follower_id
        )
        counts["cache"] = max(counts["cache"], elsewhere)
        log.info(
            "privacy: a number was erased: %s",
            ", ".join(f"{name} {count}" for name, count in counts.items()),
            extra=logs.fields(erased=counts),
        )
        return {
            "number": e164_number,
            "erased": {name: counts.get(name, 0) for name in (*LISTED, "cache")},
        }
