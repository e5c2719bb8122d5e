"""Caller lookup: one cache entry per number, one CRM request per burst, answers within the budget."""

from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qsl, urlsplit

import pytest

from devtools.processes import free_port
from middleware.lookup.cache import ContactCache, Lifetimes

from .conftest import API_KEY, CRM_KEY, CRM_URL
from .contacts import JAMES, JAMES_CONTACT
from .fakeserver import Answer, FakeServer

CRM = {"CTI_CRM": "switchtransact", "CTI_CRM_URL": CRM_URL, "CTI_CRM_API_KEY": CRM_KEY}
RECORD = f"{CRM_URL}/calls/record"
# The fake CRM closes each connection, so once it stops nothing can reach it (not a pooled socket).
FOUND_THEN_CLOSE = Answer(200, {"status": True, "contact": JAMES}, headers={"Connection": "close"})
ZA_MOBILE = {"region": "ZA", "type": "mobile", "description": "South Africa", "carrier": "Vodacom"}


def query(call):
    return dict(parse_qsl(urlsplit(call.request.url).query))


def lookup(client, auth, phone, **params):
    return client.get(
        "/api/v1/contacts/lookup", query_string={"phone": phone, **params}, headers=auth
    )


def crm_app(make_app, url=CRM_URL, **env):
    return make_app(**{**CRM, "CTI_CRM_URL": url, **env})


# one number, one entry ----------------------------------------------------------------------


def test_same_number_in_four_forms_is_one_cache_entry(make_app, upstream, auth):
    upstream.get(RECORD, json={"status": True, "contact": JAMES})
    client = crm_app(make_app).test_client()

    answers = [
        lookup(client, auth, typed)
        for typed in ("072 123 4567", "0721234567", "+27 72 123 4567", "27721234567")
    ]

    assert [a.status_code for a in answers] == [200] * 4
    assert [a.get_json()["cached"] for a in answers] == [False, True, True, True]
    assert all(a.get_json()["contact"] == JAMES_CONTACT for a in answers)
    assert all(a.get_json()["phone"] == "+27721234567" for a in answers)
    (call,) = upstream.calls
    assert urlsplit(call.request.url).path == "/calls/record"
    assert query(call) == {"phone": "+27721234567"}
    assert call.request.headers["Authorization"] == f"Bearer {CRM_KEY}"


def test_lookup_answer_has_the_contract_shape(make_app, upstream, auth):
    upstream.get(RECORD, json={"status": True, "contact": JAMES})
    client = crm_app(make_app).test_client()

    response = lookup(client, auth, "0721234567")

    assert response.get_json() == {
        "found": True,
        "phone": "+27721234567",
        "contact": JAMES_CONTACT,
        "cached": False,
        "stale": False,
        "screen_pop_url": None,
        "number_info": ZA_MOBILE,
    }


def test_name_is_the_company_when_both_names_are_empty(make_app, upstream, auth):
    record = {"id": "c1", "firstname": "", "lastname": None, "company": "Acme"}
    upstream.get(RECORD, json={"status": True, "contact": record})
    client = crm_app(make_app).test_client()

    contact = lookup(client, auth, "0721234567").get_json()["contact"]

    assert contact["name"] == "Acme"
    assert contact["email"] is None and contact["entity_type"] is None


def test_phone_forms_are_tried_in_order_and_the_first_found_wins(make_app, upstream, auth):
    upstream.get(RECORD, json={"status": False})
    upstream.get(RECORD, json={"status": True, "contact": JAMES})
    client = crm_app(make_app, CTI_CRM_PHONE_FORMATS="international,national,e164").test_client()

    response = lookup(client, auth, "+27 72 123 4567")

    assert response.get_json()["found"] is True
    assert [query(c) for c in upstream.calls] == [
        {"phone": "27721234567"},
        {"phone": "0721234567"},
    ]


def test_email_lookup_is_case_insensitive_and_cached(make_app, upstream, auth):
    upstream.get(RECORD, json={"status": True, "contact": JAMES})
    client = crm_app(make_app).test_client()

    first = client.get("/api/v1/contacts/lookup?email=James@May.com", headers=auth)
    second = client.get("/api/v1/contacts/lookup?email=james@may.com", headers=auth)

    assert first.get_json()["contact"] == JAMES_CONTACT
    assert first.get_json()["phone"] == "+27721234567"
    assert second.get_json()["cached"] is True
    (call,) = upstream.calls
    assert query(call) == {"email": "james@may.com"}


def test_other_auth_header_carries_the_bare_key(make_app, upstream, auth):
    upstream.get(RECORD, json={"status": False})
    client = crm_app(make_app, CTI_CRM_AUTH_HEADER="X-Api-Key").test_client()

    lookup(client, auth, "0721234567")

    headers = upstream.calls[0].request.headers
    assert headers["X-Api-Key"] == CRM_KEY
    assert "Authorization" not in headers


def test_cache_keeps_at_most_cache_size_entries(make_app, upstream, auth):
    upstream.get(RECORD, json={"status": True, "contact": JAMES})
    client = crm_app(make_app, CTI_CACHE_SIZE="2", CTI_CRM_PHONE_FORMATS="e164").test_client()

    for phone in ("0721234567", "0821112222", "0831234567", "0721234567"):
        lookup(client, auth, phone)

    assert len(upstream.calls) == 4


# input -----------------------------------------------------------------------------------------


def test_lookup_needs_a_key(client):
    assert client.get("/api/v1/contacts/lookup?phone=0721234567").status_code == 401


def test_lookup_accepts_the_key_as_query_parameter(make_app, upstream):
    upstream.get(RECORD, json={"status": False})
    client = crm_app(make_app).test_client()
    response = client.get(f"/api/v1/contacts/lookup?phone=0721234567&api_key={API_KEY}")

    assert response.status_code == 200


@pytest.mark.parametrize(
    "params, code",
    [
        ({"phone": "not a number"}, "invalid_number"),
        ({"phone": "123"}, "invalid_number"),
        ({}, "validation_error"),
        ({"phone": "0721234567", "email": "a@b.example"}, "validation_error"),
        ({"email": "nobody"}, "validation_error"),
        ({"phone": "0721234567", "format": "xml"}, "validation_error"),
    ],
)
def test_malformed_lookup_is_422(client, auth, params, code):
    response = client.get("/api/v1/contacts/lookup", query_string=params, headers=auth)

    assert response.status_code == 422
    assert response.get_json()["code"] == code


def test_a_query_is_judged_the_same_each_time_it_comes(make_app, upstream, auth):
    """Valid query strings are loaded once and remembered; refusals and long ones are not."""
    upstream.get(RECORD, json={"status": True, "contact": JAMES})
    client = crm_app(make_app).test_client()
    for _ in range(2):
        assert lookup(client, auth, "0721234567").status_code == 200
        refused = lookup(client, auth, "not a number")
        assert refused.status_code == 422 and refused.get_json()["code"] == "invalid_number"
        long = lookup(client, auth, "0721234567", format="json" + " " * 600)
        assert long.status_code == 422 and long.get_json()["code"] == "validation_error"
        padded = client.get(
            "/api/v1/contacts/lookup?phone=0721234567&" + "&".join(["x=1"] * 200), headers=auth
        )
        assert padded.status_code == 422  # an unknown parameter, however long the query
    assert len(upstream.calls) == 1


# failures ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("http_status", [200, 400, 500])
def test_status_false_with_error_is_a_failure_whatever_the_http_status(
    make_app, upstream, auth, http_status
):
    upstream.get(RECORD, json={"status": False, "error": "Database gone"}, status=http_status)
    client = crm_app(make_app).test_client()

    response = lookup(client, auth, "0721234567")

    assert response.status_code == 502
    body = response.get_json()
    assert body["code"] == "upstream_error"
    assert "Database gone" in body["detail"]


def test_not_authorized_answer_is_upstream_auth(make_app, upstream, auth):
    error = "Not authorized to make this API call. Requesting Read on General."
    upstream.get(RECORD, json={"status": False, "error": error})
    client = crm_app(make_app).test_client()

    response = lookup(client, auth, "0721234567")

    assert response.status_code == 502
    assert response.get_json()["code"] == "upstream_auth"


def test_crm_refusing_connections_is_503_for_a_caller_never_seen(make_app, auth):
    client = crm_app(make_app, f"http://127.0.0.1:{free_port()}").test_client()

    response = lookup(client, auth, "0721234567")

    assert response.status_code == 503
    assert response.get_json()["code"] == "upstream_unavailable"


def test_silent_crm_is_504_within_the_lookup_budget(make_app, auth):
    with FakeServer(lambda seen: Answer(hang=True)) as crm:
        client = crm_app(make_app, crm.url, CTI_LOOKUP_TIMEOUT="0.5").test_client()
        started = time.monotonic()
        response = lookup(client, auth, "0721234567")
        elapsed = time.monotonic() - started

    assert response.status_code == 504
    assert response.get_json()["code"] == "upstream_timeout"
    assert elapsed < 0.5 + 0.3


def _header_dripper():
    """A server that sends its status line and headers one byte every 0.5 s."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    stop = threading.Event()
    body = b'{"status": true, "contact": {"id": "1", "firstname": "Slow"}}'
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)

    def serve(conn):
        with conn:
            conn.recv(65536)
            for byte in answer:
                if stop.is_set():
                    return
                conn.sendall(bytes([byte]))
                time.sleep(0.5)

    def accept():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return server, stop


@pytest.mark.parametrize("where", ["headers", "body"])
def test_dripping_crm_answers_within_the_lookup_budget(make_app, auth, where):
    if where == "headers":
        server, stop = _header_dripper()
        url = f"http://127.0.0.1:{server.getsockname()[1]}"
        context = None
    else:
        context = FakeServer(lambda seen: Answer(200, {"status": True, "contact": JAMES}, drip=0.5))
        url = context.__enter__().url
    try:
        client = crm_app(make_app, url, CTI_LOOKUP_TIMEOUT="1").test_client()
        started = time.monotonic()
        response = lookup(client, auth, "0721234567")
        elapsed = time.monotonic() - started
    finally:
        if context is not None:
            context.__exit__(None, None, None)
        else:
            stop.set()
            server.close()

    assert response.status_code == 504
    assert elapsed < 1 + 0.5


# single flight ----------------------------------------------------------------------------------


def test_concurrent_lookups_of_one_uncached_number_make_one_crm_request(make_app, auth, shared_env):
    answer = Answer(200, {"status": True, "contact": JAMES}, delay=0.5)
    with FakeServer(lambda seen: answer) as crm:
        app = crm_app(make_app, crm.url, **shared_env)
        barrier = threading.Barrier(50)

        def one(_):
            client = app.test_client()
            barrier.wait()
            return lookup(client, auth, "072 123 4567")

        with ThreadPoolExecutor(50) as pool:
            answers = list(pool.map(one, range(50)))

        assert crm.count("/calls/record") == 1
    assert [a.status_code for a in answers] == [200] * 50
    assert all(a.get_json()["contact"] == JAMES_CONTACT for a in answers)


def test_a_lookup_after_the_budget_does_not_join_the_stuck_crm_request(make_app, auth):
    """The first CRM request hangs: its caller answers 504 at the lookup budget. A later lookup
    asks the CRM again instead of waiting on that request (which may run to the upstream
    timeout), and answers what the CRM, now recovered, says."""
    requests = []
    lock = threading.Lock()

    def handler(seen):
        with lock:
            requests.append(seen)
            first = len(requests) == 1
        return Answer(hang=True) if first else Answer(200, {"status": True, "contact": JAMES})

    with FakeServer(handler) as crm:
        client = crm_app(
            make_app, crm.url, CTI_LOOKUP_TIMEOUT="0.3", CTI_UPSTREAM_TIMEOUT="2"
        ).test_client()
        stuck = lookup(client, auth, "0721234567")
        time.sleep(0.05)  # clear of the budget: a caller this close may still join the flight
        started = time.monotonic()
        later = lookup(client, auth, "0721234567")
        elapsed = time.monotonic() - started
        again = lookup(client, auth, "0721234567")

        assert crm.count("/calls/record") == 2

    assert stuck.status_code == 504
    assert later.status_code == 200
    assert later.get_json()["contact"] == JAMES_CONTACT
    assert later.get_json()["cached"] is False
    assert elapsed < 0.3 + 0.2
    assert again.get_json()["cached"] is True


def test_a_late_crm_answer_still_fills_the_cache_when_a_newer_lookup_is_in_flight(make_app, auth):
    """The first CRM request answers after the budget, while the second (a newer lookup's) hangs:
    the late answer is still cached, and the next lookup finds it."""
    requests = []
    lock = threading.Lock()

    def handler(seen):
        with lock:
            requests.append(seen)
            first = len(requests) == 1
        if first:
            return Answer(200, {"status": True, "contact": JAMES}, delay=0.8)
        return Answer(hang=True)

    with FakeServer(handler) as crm:
        client = crm_app(
            make_app, crm.url, CTI_LOOKUP_TIMEOUT="0.3", CTI_UPSTREAM_TIMEOUT="2"
        ).test_client()
        first = lookup(client, auth, "0721234567")
        time.sleep(0.05)  # clear of the budget: a caller this close may still join the flight
        second = lookup(client, auth, "0721234567")
        time.sleep(0.8)  # the first request has answered; the second still hangs
        third = lookup(client, auth, "0721234567")

        assert crm.count("/calls/record") == 2

    assert [first.status_code, second.status_code, third.status_code] == [504, 504, 200]
    assert third.get_json()["cached"] is True
    assert third.get_json()["contact"] == JAMES_CONTACT


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _flights(clock):
    return ContactCache(Lifetimes(ttl=60, negative_ttl=10, stale_ttl=600), size=8, clock=clock)


KEY = "+27721234567"
OLDER = {"id": "older"}
NEWER = {"id": "newer"}


def test_a_flight_is_joined_only_while_younger_than_the_wait_allowed():
    clock = Clock()
    cache = _flights(clock)
    old, leads_old = cache.take_off(KEY, join_within=2)
    clock.now += 1.9
    joined, leads_joined = cache.take_off(KEY, join_within=2)
    clock.now += 0.1
    new, leads_new = cache.take_off(KEY, join_within=2)
    same, leads_same = cache.take_off(KEY, join_within=2)

    assert (leads_old, leads_joined, leads_new, leads_same) == (True, False, True, False)
    assert joined is old
    assert new is not old and same is new
    assert cache.take_off(KEY) == (new, False)  # no limit given: always joined


def test_an_overtaken_flight_landing_keeps_the_newer_flight_to_join():
    clock = Clock()
    cache = _flights(clock)
    old, _ = cache.take_off(KEY, join_within=2)
    clock.now += 3
    new, _ = cache.take_off(KEY, join_within=2)

    cache.land(KEY, old, None, TimeoutError())
    assert cache.take_off(KEY, join_within=2) == (new, False)
    cache.land(KEY, new, NEWER)

    assert cache.get(KEY).contact == NEWER
    later, leads = cache.take_off(KEY, join_within=2)
    assert leads and later is not new


def test_an_overtaken_flight_landing_first_fills_the_cache():
    clock = Clock()
    cache = _flights(clock)
    old, _ = cache.take_off(KEY, join_within=2)
    clock.now += 3
    new, _ = cache.take_off(KEY, join_within=2)

    cache.land(KEY, old, OLDER)
    assert cache.get(KEY).contact == OLDER
    assert cache.take_off(KEY, join_within=2) == (new, False)
    cache.land(KEY, new, NEWER)

    assert cache.get(KEY).contact == NEWER


def test_an_overtaken_flight_landing_last_does_not_overwrite_the_newer_answer():
    clock = Clock()
    cache = _flights(clock)
    old, _ = cache.take_off(KEY, join_within=2)
    clock.now += 3
    new, _ = cache.take_off(KEY, join_within=2)

    cache.land(KEY, new, NEWER)
    cache.land(KEY, old, OLDER)

    assert cache.get(KEY).contact == NEWER
    assert old.contact == OLDER  # its own waiters still get its answer


@pytest.mark.parametrize("how", ["forget", "drop"])
def test_forgetting_a_key_discards_its_overtaken_flight_too(how):
    clock = Clock()
    cache = _flights(clock)
    old, _ = cache.take_off(KEY, join_within=2)
    clock.now += 3
    new, _ = cache.take_off(KEY, join_within=2)

    if how == "forget":
        cache.forget(KEY)
    else:
        cache.drop(lambda key, entry: key == KEY)
    cache.land(KEY, old, OLDER)
    cache.land(KEY, new, NEWER)

    assert cache.get(KEY) is None


# stale-if-error and negative caching ------------------------------------------------------------


def test_cached_caller_comes_back_stale_when_the_crm_is_down_after_the_ttl(make_app, auth):
    with FakeServer(lambda seen: FOUND_THEN_CLOSE) as crm:
        app = crm_app(
            make_app,
            crm.url,
            CTI_CACHE_TTL="0.2",
            CTI_CACHE_STALE_TTL="60",
            CTI_CACHE_REVALIDATE_TTL="0",  # stale because the CRM failed, not revalidating
        )
        client = app.test_client()
        assert lookup(client, auth, "0721234567").get_json()["stale"] is False
    time.sleep(0.3)  # the entry expired and the CRM no longer listens

    started = time.monotonic()
    response = lookup(client, auth, "0721234567")
    elapsed = time.monotonic() - started

    body = response.get_json()
    assert response.status_code == 200
    assert body["stale"] is True and body["cached"] is True
    assert body["contact"] == JAMES_CONTACT
    assert elapsed < 0.05 * 4  # 50 ms on an idle machine; headroom for a loaded test runner


def test_stale_answer_comes_within_the_budget_when_the_crm_drips(make_app, auth):
    answers = [Answer(200, {"status": True, "contact": JAMES})]

    def handler(seen):
        return answers[0]

    with FakeServer(handler) as crm:
        client = crm_app(
            make_app,
            crm.url,
            CTI_CACHE_TTL="0.1",
            CTI_LOOKUP_TIMEOUT="1",
            CTI_CACHE_REVALIDATE_TTL="0",
        ).test_client()
        lookup(client, auth, "0721234567")
        time.sleep(0.2)
        answers[0] = Answer(200, {"status": True, "contact": JAMES}, drip=0.5)
        started = time.monotonic()
        response = lookup(client, auth, "0721234567")
        elapsed = time.monotonic() - started

    assert response.get_json()["stale"] is True
    assert elapsed < 1 + 0.5


def test_expired_entry_older_than_the_stale_ttl_is_not_served(make_app, auth):
    with FakeServer(lambda seen: FOUND_THEN_CLOSE) as crm:
        client = crm_app(
            make_app, crm.url, CTI_CACHE_TTL="0.1", CTI_CACHE_STALE_TTL="0.2"
        ).test_client()
        lookup(client, auth, "0721234567")
    time.sleep(0.3)

    assert lookup(client, auth, "0721234567").status_code == 503


def test_not_found_is_cached_for_the_negative_ttl(make_app, upstream, auth):
    upstream.get(RECORD, json={"status": False})
    client = crm_app(make_app, CTI_CACHE_NEGATIVE_TTL="0.3").test_client()

    first = lookup(client, auth, "0721234567")
    second = lookup(client, auth, "072 123 4567")
    calls_while_remembered = len(upstream.calls)
    time.sleep(0.4)
    lookup(client, auth, "0721234567")

    assert first.get_json() == {
        "found": False,
        "phone": "+27721234567",
        "contact": None,
        "cached": False,
        "stale": False,
        "screen_pop_url": None,
        "number_info": ZA_MOBILE,
    }
    assert second.get_json()["cached"] is True
    assert calls_while_remembered == 2  # e164, then national: one series
    assert len(upstream.calls) == 4


def test_creating_the_contact_makes_the_next_lookup_find_it_at_once(make_app, upstream, auth):
    upstream.get(RECORD, json={"status": False})
    upstream.get(RECORD, json={"status": False})
    upstream.post(
        f"{CRM_URL}/calls/create",
        json={"firstname": "James", "lastname": "May", "phone": "+27721234567"},
    )
    upstream.get(RECORD, json={"status": True, "contact": JAMES})
    client = crm_app(make_app).test_client()
    assert lookup(client, auth, "0721234567").get_json()["found"] is False
    remembered = lookup(client, auth, "0721234567").get_json()  # a hit: its answer is kept
    assert remembered["found"] is False and remembered["cached"] is True

    created = client.post(
        "/api/v1/contacts",
        json={"first_name": "James", "last_name": "May", "phone": "072 123 4567"},
        headers=auth,
    )
    found = lookup(client, auth, "0721234567")

    assert created.status_code == 201
    contact = created.get_json()["contact"]
    assert contact["name"] == "James May"
    assert contact["mobile_phone"] == "+27721234567"
    create_call = upstream.calls[2]
    assert urlsplit(create_call.request.url).path == "/calls/create"
    assert create_call.request.headers["Authorization"] == f"Bearer {CRM_KEY}"
    assert json.loads(create_call.request.body) == {
        "firstname": "James",
        "lastname": "May",
        "phone": "+27721234567",
    }
    assert found.get_json()["found"] is True
    assert found.get_json()["cached"] is False


def test_create_contact_validates_its_body(client, auth):
    response = client.post("/api/v1/contacts", json={"first_name": "A", "phone": "1"}, headers=auth)

    assert response.status_code == 422


def test_create_contact_failure_is_upstream_error(make_app, upstream, auth):
    upstream.post(f"{CRM_URL}/calls/create", json={"status": False, "error": "Duplicate"})
    client = crm_app(make_app).test_client()

    response = client.post(
        "/api/v1/contacts",
        json={"first_name": "A", "last_name": "B", "phone": "0721234567"},
        headers=auth,
    )

    assert response.status_code == 502
    assert "Duplicate" in response.get_json()["detail"]
    assert len(upstream.calls) == 1


# numbers the CRM wrote ---------------------------------------------------------------------------

# International digits without their "+", a ZA number without its trunk 0, and no number at all.
PLUSLESS = {
    **JAMES,
    "mobilephone": "12025550123",
    "businessphone": " 442079460000 ",
    "businessphone2": "721234567",
}
PLUSLESS_NUMBERS = {
    "mobile_phone": "+12025550123",
    "business_phone": "+442079460000",
    "business_phone2": "+27721234567",
}


def _phones(contact):
    return {name: contact[name] for name in PLUSLESS_NUMBERS}


def test_crm_numbers_written_without_their_plus_come_back_e164_from_lookup(
    make_app, upstream, auth
):
    upstream.get(RECORD, json={"status": True, "contact": PLUSLESS})
    client = crm_app(make_app).test_client()

    response = lookup(client, auth, "0721234567")

    assert _phones(response.get_json()["contact"]) == PLUSLESS_NUMBERS


def test_crm_numbers_written_without_their_plus_come_back_e164_from_search(
    make_app, upstream, auth
):
    upstream.get(f"{CRM_URL}/calls/autocomplete", json=[PLUSLESS])
    client = crm_app(make_app).test_client()

    (contact,) = client.get("/api/v1/contacts/search?term=may", headers=auth).get_json()["results"]

    assert _phones(contact) == PLUSLESS_NUMBERS


def test_crm_numbers_that_parse_in_neither_way_stay_as_written_trimmed(make_app, upstream, auth):
    record = {**JAMES, "mobilephone": " 12345 ", "businessphone": "+12345", "businessphone2": "n/a"}
    upstream.get(f"{CRM_URL}/calls/autocomplete", json=[record])
    client = crm_app(make_app).test_client()

    (contact,) = client.get("/api/v1/contacts/search?term=may", headers=auth).get_json()["results"]

    assert contact["mobile_phone"] == "12345"
    assert contact["business_phone"] == "+12345"
    assert contact["business_phone2"] == "n/a"


@pytest.mark.parametrize(
    "phone, written",
    [
        ("+12025550123", "12025550123"),
        # New Caledonia: its international digits are also a valid ZA mobile number (+27 68...),
        # so only the number as given tells what was written.
        ("+687751234", "687751234"),
        ("0721234567", "0721234567"),
    ],
)
@pytest.mark.parametrize("echoed", [False, True])
def test_created_contact_shows_the_e164_given_whatever_form_the_crm_got(
    make_app, upstream, auth, phone, written, echoed
):
    created = {"id": "c9", "firstname": "A", "lastname": "B"}
    if echoed:  # the CRM answers the record with the number as it stored it
        created["mobilephone"] = written
    upstream.post(f"{CRM_URL}/calls/create", json={"status": True, "contact": created})
    client = crm_app(
        make_app, CTI_CRM_PHONE_FORMATS="national,international,e164", CTI_ALLOWED_COUNTRIES="*"
    ).test_client()

    response = client.post(
        "/api/v1/contacts",
        json={"first_name": "A", "last_name": "B", "phone": phone},
        headers=auth,
    )

    (call,) = upstream.calls
    assert json.loads(call.request.body) == {"firstname": "A", "lastname": "B", "phone": written}
    assert response.status_code == 201
    expected = "+27721234567" if phone.startswith("0") else phone
    assert response.get_json()["contact"]["mobile_phone"] == expected


# plain text for PBXs -----------------------------------------------------------------------------


def test_text_form_is_the_display_name_or_204(make_app, upstream, auth):
    upstream.get(RECORD, json={"status": True, "contact": JAMES})
    client = crm_app(make_app).test_client()

    by_accept = lookup(client, {**auth, "Accept": "text/plain"}, "0721234567")
    by_format = lookup(client, auth, "0721234567", format="text")

    for response in (by_accept, by_format):
        assert response.status_code == 200
        assert response.mimetype == "text/plain"
        assert response.get_data(as_text=True) == "James May (My Company name)"


def test_text_form_is_204_for_an_unknown_caller(make_app, upstream, auth):
    upstream.get(RECORD, json={"status": False})
    client = crm_app(make_app).test_client()

    response = lookup(client, auth, "0721234567", format="text")

    assert response.status_code == 204
    assert response.data == b""


def test_text_form_is_at_most_40_characters(make_app, upstream, auth):
    record = {**JAMES, "company": "The Very Long Name Of A Holding Company Ltd"}
    upstream.get(RECORD, json={"status": True, "contact": record})
    client = crm_app(make_app).test_client()

    text = lookup(client, auth, "0721234567", format="text").get_data(as_text=True)

    assert len(text) <= 40
    assert text.startswith("James May (The Very Long")


# search ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["object", "list"])
def test_search_accepts_one_contact_or_a_list(make_app, upstream, auth, shape):
    answer = {"status": True, "contact": JAMES if shape == "object" else [JAMES, JAMES]}
    upstream.get(f"{CRM_URL}/calls/autocomplete", json=answer)
    client = crm_app(make_app).test_client()

    response = client.get("/api/v1/contacts/search?term=may", headers=auth)

    assert response.status_code == 200
    expected = 1 if shape == "object" else 2
    assert response.get_json() == {"results": [JAMES_CONTACT] * expected}
    assert query(upstream.calls[0]) == {"term": "may"}


def test_search_with_nothing_found_is_an_empty_list(make_app, upstream, auth):
    upstream.get(f"{CRM_URL}/calls/autocomplete", json={"status": False})
    client = crm_app(make_app).test_client()

    response = client.get("/api/v1/contacts/search?term=zz", headers=auth)

    assert response.get_json() == {"results": []}


@pytest.mark.parametrize("answer", ["str", 12, True, 1.5, "", None])
def test_search_answered_with_a_bare_json_value_is_an_upstream_error(
    make_app, upstream, auth, answer
):
    upstream.get(f"{CRM_URL}/calls/autocomplete", json=answer)
    client = crm_app(make_app).test_client()

    response = client.get("/api/v1/contacts/search?term=may", headers=auth)

    assert response.status_code == 502
    assert response.content_type == "application/problem+json"
    assert response.get_json()["code"] == "upstream_error"


def test_search_needs_a_term(client, auth):
    assert client.get("/api/v1/contacts/search", headers=auth).status_code == 422


# screen pop --------------------------------------------------------------------------------------

POP = {
    "CTI_POP_CONTACT_URL": "https://crm.example/r/{entity_type}/{id}?n={phone}&c={customer_number}",
    "CTI_POP_UNKNOWN_URL": "https://crm.example/new?phone={phone}",
}


def test_pop_redirects_to_the_contact_url_with_encoded_values(make_app, upstream, auth):
    record = {**JAMES, "id": "a b&c", "customer_number": "30/08"}
    upstream.get(RECORD, json={"status": True, "contact": record})
    client = crm_app(make_app, **POP).test_client()

    response = client.get("/pop?phone=072 123 4567", headers=auth)

    assert response.status_code == 302
    assert response.headers["Location"] == (
        "https://crm.example/r/Account/a%20b%26c?n=%2B27721234567&c=30%2F08"
    )
    assert (
        lookup(client, auth, "0721234567").get_json()["screen_pop_url"]
        == (response.headers["Location"])
    )


def test_pop_redirects_an_unknown_caller_to_the_unknown_url(make_app, upstream, auth):
    upstream.get(RECORD, json={"status": False})
    client = crm_app(make_app, **POP).test_client()

    response = client.get("/pop?phone=0721234567", headers=auth)

    assert response.status_code == 302
    assert response.headers["Location"] == "https://crm.example/new?phone=%2B27721234567"


def test_pop_takes_the_key_as_query_parameter(make_app, upstream):
    upstream.get(RECORD, json={"status": False})
    client = crm_app(make_app, **POP).test_client()

    assert client.get("/pop?phone=0721234567").status_code == 401
    assert client.get(f"/pop?phone=0721234567&api_key={API_KEY}").status_code == 302


def test_pop_without_templates_shows_a_contact_card(make_app, upstream, auth):
    upstream.get(RECORD, json={"status": True, "contact": JAMES})
    client = crm_app(make_app).test_client()

    response = client.get("/pop?phone=0721234567", headers=auth)

    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    for shown in ("James May", "My Company name", "+27 72 123 4567", "Account"):
        assert shown in page


def test_pop_card_escapes_crm_text(make_app, upstream, auth):
    record = {**JAMES, "company": "<script>alert(1)</script>"}
    upstream.get(RECORD, json={"status": True, "contact": record})
    client = crm_app(make_app).test_client()

    page = client.get("/pop?phone=0721234567", headers=auth).get_data(as_text=True)

    assert "<script>alert" not in page
    assert "&lt;script&gt;" in page


# the sandbox CRM --------------------------------------------------------------------------------


def test_sandbox_crm_contacts_are_shared_through_the_store(make_app, auth):
    first = make_app().test_client()
    second = make_app().test_client()  # another "worker" on the same store

    assert lookup(first, auth, "0721234567").get_json()["contact"]["name"] == "James May"
    created = first.post(
        "/api/v1/contacts",
        json={"first_name": "Ann", "last_name": "Lee", "phone": "083 123 4567"},
        headers=auth,
    )

    assert created.status_code == 201
    assert lookup(second, auth, "0831234567").get_json()["contact"]["name"] == "Ann Lee"
    search = second.get("/api/v1/contacts/search?term=lee", headers=auth).get_json()
    assert [c["name"] for c in search["results"]] == ["Ann Lee"]


def test_a_contact_created_while_the_shared_store_is_down_is_still_a_201(make_app, upstream, auth):
    """The CRM created it: a 503 would have the agent create it again. Redis (the shared cache and
    the erasure log) unreachable only leaves other hosts' "not found" to expire."""
    upstream.post(
        f"{CRM_URL}/calls/create",
        json={"firstname": "James", "lastname": "May", "phone": "+27721234567"},
    )
    down = f"redis://127.0.0.1:{free_port()}/0"
    client = crm_app(make_app, CTI_REDIS_URL=down).test_client()

    created = client.post(
        "/api/v1/contacts",
        json={"first_name": "James", "last_name": "May", "phone": "072 123 4567"},
        headers=auth,
    )

    assert created.status_code == 201, created.get_json()
    assert created.get_json()["contact"]["mobile_phone"] == "+27721234567"
    assert len(upstream.calls) == 1
