"""Every process forgets a number erased by another within ``BOUND_SECONDS``, through the store's
erasure log, and the lookup's hit path reads nothing for it (``services/forgetting.py``)."""

from __future__ import annotations

import threading
import time
from collections import Counter

from devtools.waiting import wait_until
from middleware.numbers import parse
from middleware.services.forgetting import BOUND_SECONDS
from middleware.services.lookup import Lookup

from .conftest import API_KEY, CRM_URL
from .journal_fakes import CRM_ENV, RECORD_URL, crm_knows

KEY = {"X-API-Key": API_KEY}


def two_processes(make_app):
    """Clients of two apps on one store: two processes (workers, or hosts) as far as it knows."""
    return make_app(**CRM_ENV).test_client(), make_app(**CRM_ENV).test_client()


def crm_lookups(upstream) -> int:
    """How many times the CRM was asked for a record."""
    return sum(call.request.url.startswith(RECORD_URL) for call in upstream.calls)


class CountedErasures:
    """The store's erasure log, counting the reads each thread makes."""

    def __init__(self, erasures):
        self.erasures = erasures
        self.reads: Counter[str] = Counter()

    def _count(self) -> None:
        self.reads[threading.current_thread().name] += 1

    def add_erasure(self, mask: str) -> int:
        return self.erasures.add_erasure(mask)

    def erasures_after(self, after: int, *, limit: int = 100):
        self._count()
        return self.erasures.erasures_after(after, limit=limit)

    def last_erasure_id(self) -> int:
        self._count()
        return self.erasures.last_erasure_id()


def test_a_process_forgets_a_number_another_erased_within_the_bound(make_app, upstream):
    crm_knows(upstream)
    on_one, on_two = two_processes(make_app)
    lookup = "/api/v1/contacts/lookup?phone=0721234567"
    assert on_two.get(lookup, headers=KEY).get_json()["cached"] is False
    assert on_two.get(lookup, headers=KEY).get_json()["cached"] is True
    asked = crm_lookups(upstream)

    assert on_one.delete("/api/v1/privacy/numbers/0721234567", headers=KEY).status_code == 200
    time.sleep(BOUND_SECONDS)

    assert on_two.get(lookup, headers=KEY).get_json()["cached"] is False
    assert crm_lookups(upstream) == asked + 1


def test_a_contact_created_on_one_process_is_no_longer_unknown_on_another(make_app, upstream):
    """Contract, section 4: a cached "not found" for a created contact's number is forgotten at
    once; on another worker (or host) too, within the follower's bound."""
    crm_knows(upstream)
    upstream.post(
        f"{CRM_URL}/calls/create",
        json={
            "status": True,
            "contact": {"id": "c-9", "firstname": "Nomsa", "lastname": "Dlamini"},
        },
    )
    on_one, on_two = two_processes(make_app)
    lookup = "/api/v1/contacts/lookup?phone=0829876543"
    assert on_two.get(lookup, headers=KEY).get_json()["found"] is False
    assert on_two.get(lookup, headers=KEY).get_json()["cached"] is True
    asked = crm_lookups(upstream)

    body = {"first_name": "Nomsa", "last_name": "Dlamini", "phone": "082 987 6543"}
    assert on_one.post("/api/v1/contacts", json=body, headers=KEY).status_code == 201
    wait_until(
        lambda: on_two.get(lookup, headers=KEY).get_json()["cached"] is not True,
        BOUND_SECONDS + 5,
        "the other process still answers its cached not-found",
    )

    assert crm_lookups(upstream) > asked


def test_the_hit_path_reads_no_erasure_log_only_the_follower_does(make_app, upstream):
    crm_knows(upstream)
    services = make_app(**CRM_ENV).extensions["cti"]
    counted = CountedErasures(services.store.erasures)
    lookup = Lookup(services.settings, services.crm, erasures=counted)
    number = parse("0721234567", "ZA")
    lookup.lookup_phone(number)  # the process's first lookup starts the follower
    me = threading.current_thread().name
    started = counted.reads[me]

    for _ in range(2000):
        assert lookup.lookup_phone(number).cached is True
    wait_until(lambda: counted.reads["erasures"] != 0, 5, "the follower never read the log")

    assert started == 1  # where to begin: read once, before the cache held anything
    assert counted.reads[me] == started  # 2000 hits, no read
