"""The caller lookup's hit-path memos (``middleware/lookup/memo.py``): what each remembers, by what key, and
that nothing remembered outlives or differs from the cache entry it was made of."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from middleware.lookup.cache import ContactCache, Lifetimes
from middleware.lookup.memo import QueryMemo, derived, entry_answer
from middleware.numbers import parse
from middleware.services.lookup import LookupResult

from .conftest import API_KEY

JAMES = {"id": "c1", "name": "James May", "mobile_phone": "+27721234567"}


class Loader:
    """A pure loader that counts its calls: ``?n=<int>``, anything else refused."""

    def __init__(self):
        self.calls = 0

    def __call__(self, raw: bytes) -> dict:
        self.calls += 1
        query = dict(parse_qsl(raw.decode()))
        if not query.get("n", "").isdigit():
            raise ValueError("n must be a number")
        return {"n": int(query["n"])}


# the query memo ----------------------------------------------------------------------------------


def test_a_valid_query_string_is_loaded_once_and_answered_as_the_same_read_only_object():
    loader = Loader()
    memo = QueryMemo(loader)
    first = memo(b"n=1")
    assert first == {"n": 1}
    assert memo(b"n=1") is first
    assert loader.calls == 1
    with pytest.raises(TypeError):
        first["n"] = 2  # what is shared between requests cannot be changed by one of them


def test_the_memo_is_keyed_by_the_raw_query_string():
    loader = Loader()
    memo = QueryMemo(loader)
    assert memo(b"n=1") == memo(b"n=01") == {"n": 1}
    assert loader.calls == 2  # two spellings, two keys: the raw bytes are the key, not the meaning
    assert memo(b"n=2") == {"n": 2}


def test_an_invalid_query_string_is_refused_afresh_every_time():
    loader = Loader()
    memo = QueryMemo(loader)
    for _ in range(3):
        with pytest.raises(ValueError):
            memo(b"n=x")
    assert loader.calls == 3
    assert memo.info().currsize == 0


def test_a_long_query_string_is_never_remembered():
    loader = Loader()
    memo = QueryMemo(loader, max_chars=8)
    raw = b"n=1&pad=xxxxxxxx"
    assert memo(raw) == memo(raw) == {"n": 1}
    assert loader.calls == 2
    assert memo.info().currsize == 0
    with pytest.raises(TypeError):
        memo(raw)["n"] = 2  # read-only whether remembered or not


def test_the_query_memo_is_bounded_least_recently_used_first():
    loader = Loader()
    memo = QueryMemo(loader, size=2)
    memo(b"n=1")
    memo(b"n=2")
    memo(b"n=1")  # n=2 is now the least recently used
    memo(b"n=3")
    assert memo.info().currsize == 2
    calls = loader.calls
    memo(b"n=1")
    assert loader.calls == calls
    memo(b"n=2")
    assert loader.calls == calls + 1


# one answer per entry, and what is derived from it -----------------------------------------------


def _fresh(contact):
    return LookupResult(contact is not None, "+27721234567", contact, True, False, memo={})


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _cache(clock):
    return ContactCache(Lifetimes(ttl=60, negative_ttl=10, stale_ttl=60), size=8, clock=clock)


def test_every_fresh_hit_of_an_entry_answers_one_object():
    cache = _cache(Clock())
    cache.put("+27721234567", JAMES)
    made = []

    def make(contact):
        made.append(contact)
        return _fresh(contact)

    entry = cache.get("+27721234567")
    first = entry_answer(entry, make, entry.contact)
    assert entry_answer(cache.get("+27721234567"), make, entry.contact) is first
    assert made == [JAMES]


def test_what_is_derived_is_made_once_per_key_and_kept_on_the_answer():
    answer = _fresh(JAMES)
    made = []

    def body(result, ascii):
        made.append(ascii)
        return f"{result.contact['name']} ascii={ascii}"

    assert derived(answer, ("text", True), body, True) == "James May ascii=True"
    assert derived(answer, ("text", True), body, True) == "James May ascii=True"
    assert derived(answer, ("text", False), body, False) == "James May ascii=False"
    assert made == [True, False]
    assert answer.memo == {
        ("text", True): "James May ascii=True",
        ("text", False): "James May ascii=False",
    }


def test_an_answer_that_is_no_entrys_is_derived_afresh_and_keeps_nothing():
    answer = LookupResult(True, "+27721234567", JAMES, True, True)  # stale: no entry's answer
    made = []
    for _ in range(2):
        derived(answer, "json", lambda result: made.append(1) or "body")
    assert made == [1, 1]
    assert answer.memo is None


def test_what_is_remembered_goes_with_its_entry_when_it_expires_or_is_forgotten():
    clock = Clock()
    cache = _cache(clock)
    key = "+27721234567"
    cache.put(key, JAMES)
    entry = cache.get(key)
    old = entry_answer(entry, _fresh, entry.contact)
    derived(old, "json", lambda result: "old body")

    cache.forget(key)
    assert cache.get(key) is None
    cache.put(key, {**JAMES, "name": "Jim May"})
    renewed = cache.get(key)
    new = entry_answer(renewed, _fresh, renewed.contact)
    assert new is not old
    assert new.memo == {}  # nothing of the forgotten entry
    assert derived(new, "json", lambda result: result.contact["name"]) == "Jim May"

    clock.now += 3600  # past every window: the entry, its answer and its memo are gone
    assert cache.get(key) is None


# the memos in the app ----------------------------------------------------------------------------


def test_a_lookup_hit_answers_the_body_its_entry_remembers_and_a_forget_starts_afresh(make_app):
    app = make_app(CTI_CRM="sandbox")
    client = app.test_client()
    headers = {"X-API-Key": API_KEY}
    number = "+27721234567"
    first = client.get(f"/api/v1/contacts/lookup?phone={number}", headers=headers)
    hit = client.get(f"/api/v1/contacts/lookup?phone={number}", headers=headers)
    assert first.status_code == hit.status_code == 200
    assert first.get_json()["cached"] is False
    assert hit.get_json()["cached"] is True

    lookup = app.extensions["cti"].lookup
    entry = lookup.cache.get(number)
    assert entry.answer.memo["json"] == hit.get_data(as_text=True)  # the same bytes, not a copy
    again = client.get(f"/api/v1/contacts/lookup?phone={number}", headers=headers)
    assert again.get_data() == hit.get_data()

    lookup.forget(parse(number, "ZZ"))
    assert lookup.cache.get(number) is None
    after = client.get(f"/api/v1/contacts/lookup?phone={number}", headers=headers)
    assert after.get_json()["cached"] is False
