"""The shared store with Redis, in process: the store's semantics, the contact cache of several hosts
(two apps on one Redis), and what every endpoint does while Redis is down and once it is back."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from middleware.settings import load_settings
from middleware.store import DONE, FAILED, OWNER, PENDING, build_store
from middleware.store.redis import RedisClaims

from .conftest import CC_AGENT_KEY, CC_AGENT_URL, CRM_KEY, WEBHOOK_SECRET
from .fakeserver import Answer, FakeServer
from .journal_fakes import call_end
from .redis_server import RedisServer, redis_available

pytestmark = pytest.mark.slow  # Redis servers

REDIS_PASSWORD = "redis-pass-4e8a"  # noqa: S105 - a test credential
JAMES = {"id": "c-1", "firstname": "James", "lastname": "May", "mobilephone": "0721234567"}
FOUND = {"status": True, "contact": JAMES}
ORIGINATE = f"{CC_AGENT_URL}/api/cc_agent/originate"
needs_redis = pytest.mark.skipif(not redis_available(), reason="redis-server is not installed")


@pytest.fixture(params=["sql", "redis"])
def store(request, tmp_path):
    """Each implementation of the store's claims, rate windows and events: the SQL store's, and
    the shared store's (in Redis)."""
    env = {"CTI_DATABASE": str(tmp_path / "cti.sqlite3")}
    if request.param == "redis":
        env["CTI_REDIS_URL"] = request.getfixturevalue("redis_url")
    store = build_store(load_settings(env))
    assert isinstance(store.claims, RedisClaims) == (request.param == "redis")
    return store


@pytest.fixture
def outage():
    """A Redis of this test's own, with a password, that the test may stop and start again."""
    if not redis_available():
        pytest.skip("redis-server is not installed")
    server = RedisServer(password=REDIS_PASSWORD).start()
    try:
        yield server
    finally:
        server.close()


def ring(client, call_id="ring-1", number="0721234567", agent="6000"):
    body = {"event": "call:ring", "id": call_id, "call_id": call_id, "cid_num": number}
    return client.post(
        "/api/v1/webhooks/pbx",
        json={**body, "type": "inbound", "dst_num": agent},
        headers={"X-Webhook-Token": WEBHOOK_SECRET},
    )


def lookup(client, auth, phone="0721234567"):
    return client.get("/api/v1/contacts/lookup", query_string={"phone": phone}, headers=auth)


# the store's semantics, embedded and Redis ------------------------------------------------------


def test_a_claim_is_owned_once_then_pending_then_done_until_its_ttl(store):
    first = store.claims.claim("k", lease=5, fingerprint="fp")
    second = store.claims.claim("k", lease=5, fingerprint="other")
    store.claims.complete("k", first.token, status=201, body="answer", ttl=0.3)
    done = store.claims.claim("k", lease=5)
    time.sleep(0.4)

    assert first.state == OWNER
    assert (second.state, second.token, second.fingerprint) == (PENDING, first.token, "fp")
    assert (done.state, done.status, done.body) == (DONE, 201, "answer")
    assert store.claims.peek("k") is None
    assert store.claims.claim("k", lease=5).state == OWNER


def test_a_failed_claim_is_readable_but_taken_over_at_once(store):
    first = store.claims.claim("k", lease=5)
    store.claims.fail("k", first.token, body="problem", ttl=5)
    seen = store.claims.peek("k")
    again = store.claims.claim("k", lease=5)

    assert (seen.state, seen.body) == (FAILED, "problem")
    assert again.state == OWNER and again.token != first.token


def test_a_released_or_expired_claim_is_free(store):
    released = store.claims.claim("released", lease=5)
    store.claims.release("released", released.token)
    store.claims.claim("expired", lease=0.2)
    time.sleep(0.3)

    assert store.claims.peek("released") is None
    assert store.claims.claim("expired", lease=5).state == OWNER


def test_only_the_owner_settles_its_claim(store):
    store.claims.claim("k", lease=5)
    store.claims.complete("k", "not-the-token", status=201, body="x", ttl=5)
    store.claims.release("k", "not-the-token")

    assert store.claims.peek("k").state == PENDING


def test_rate_window_refuses_beyond_the_limit_with_whole_seconds(store):
    answers = [store.claims.hit_rate("agent", limit=3, window=2) for _ in range(5)]

    assert answers[:3] == [0, 0, 0]
    assert all(wait in (1, 2) for wait in answers[3:])
    assert store.claims.hit_rate("other", limit=3, window=2) == 0


def test_a_rate_event_taken_back_frees_its_place_and_only_its_own(store):
    assert store.claims.hit_rate("agent", limit=2, window=60, hit="a") == 0
    assert store.claims.hit_rate("agent", limit=2, window=60, hit="b") == 0
    assert store.claims.hit_rate("agent", limit=2, window=60, hit="c") >= 1

    store.claims.take_back_rate("agent", "b")
    store.claims.take_back_rate("agent", "b")  # twice, or an unknown one: nothing more freed
    store.claims.take_back_rate("agent", "unknown")

    assert store.claims.hit_rate("agent", limit=2, window=60, hit="d") == 0
    assert store.claims.hit_rate("agent", limit=2, window=60, hit="e") >= 1


def test_events_are_numbered_in_order_and_read_per_agent(store):
    before = store.events.last_id()
    ids = [
        store.events.add("call:ring", "6000", {"call_id": "a"}),
        store.events.add("call:ring", "6001", {"call_id": "b"}),
        store.events.add("call:ring", "6000", {"call_id": "c"}),
    ]

    assert ids == sorted(ids) and ids[0] > before
    assert store.events.last_id() == ids[-1]
    mine = store.events.after(before, agent="6000")
    assert [(e.id, e.agent, e.payload) for e in mine] == [
        (ids[0], "6000", {"call_id": "a"}),
        (ids[2], "6000", {"call_id": "c"}),
    ]
    assert [e.id for e in store.events.after(ids[0])] == ids[1:]
    assert store.events.after(ids[0], agent="6000", limit=1)[0].id == ids[2]


# the contact cache of several hosts -------------------------------------------------------------


def crm_env(crm_url, redis_url, **extra):
    return {
        "CTI_CRM": "switchtransact",
        "CTI_CRM_URL": crm_url,
        "CTI_CRM_API_KEY": CRM_KEY,
        "CTI_REDIS_URL": redis_url,
        **extra,
    }


def lookups_at_once(hosts, auth, count: int) -> list:
    """``count`` lookups spread over the hosts in turn, all released at once: the answers."""
    barrier = threading.Barrier(count)

    def one(i):
        client = hosts[i % len(hosts)].test_client()
        barrier.wait()
        return lookup(client, auth)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def test_concurrent_lookups_on_two_hosts_make_one_crm_request(make_app, auth, redis_url, tmp_path):
    answer = Answer(200, FOUND, delay=0.3)
    with FakeServer(lambda seen: answer) as crm:
        hosts = [
            make_app(**crm_env(crm.url, redis_url, CTI_DATABASE=str(tmp_path / f"host{i}.db")))
            for i in range(2)
        ]
        answers = lookups_at_once(hosts, auth, 50)

        assert crm.count("/calls/record") == 1
    assert [a.status_code for a in answers] == [200] * 50
    assert {a.get_json()["contact"]["name"] for a in answers} == {"James May"}


def test_a_crm_failure_reaches_the_waiters_on_the_other_host(make_app, auth, redis_url):
    answer = Answer(200, {"status": False, "error": "database down"}, delay=0.3)
    with FakeServer(lambda seen: answer) as crm:
        hosts = [make_app(**crm_env(crm.url, redis_url)) for _ in range(2)]
        answers = lookups_at_once(hosts, auth, 10)

        assert crm.count("/calls/record") == 1
    assert {a.status_code for a in answers} == {502}


def test_a_hit_from_another_host_is_cached_and_stale_entries_are_shared(make_app, auth, redis_url):
    answers = [Answer(200, FOUND)]
    with FakeServer(lambda seen: answers[0]) as crm:
        env = crm_env(crm.url, redis_url, CTI_CACHE_TTL="1", CTI_CACHE_STALE_TTL="60")
        first, second, third = (make_app(**env).test_client() for _ in range(3))
        fetched = lookup(first, auth)
        from_other_host = lookup(second, auth)
        crm_requests = crm.count()
        answers[0] = Answer(500, {"status": False, "error": "down"})
        time.sleep(1.1)  # expired everywhere, and the CRM fails

        stale = lookup(third, auth).get_json()

    assert fetched.status_code == 200, fetched.get_json()
    assert fetched.get_json()["cached"] is False
    assert crm_requests == 1
    assert from_other_host.get_json()["cached"] is True
    assert from_other_host.get_json()["contact"]["name"] == "James May"
    assert stale["stale"] is True and stale["contact"]["name"] == "James May"


def test_a_created_contact_is_found_at_once_here_and_within_the_local_ttl_elsewhere(
    make_app, auth, redis_url
):
    known = []

    def crm(seen):
        if seen.path == "/calls/create":
            known.append(True)
            return Answer(200, {"status": True, "contact": JAMES})
        return Answer(200, FOUND if known else {"status": False})

    with FakeServer(crm) as fake:
        env = crm_env(fake.url, redis_url, CTI_CACHE_LOCAL_TTL="0.5")
        here, there = make_app(**env).test_client(), make_app(**env).test_client()
        assert lookup(here, auth).get_json()["found"] is False
        assert lookup(there, auth).get_json()["cached"] is True  # the negative entry is shared
        created = here.post(
            "/api/v1/contacts",
            json={"first_name": "James", "last_name": "May", "phone": "0721234567"},
            headers=auth,
        )
        found_here = lookup(here, auth).get_json()
        time.sleep(0.6)
        found_there = lookup(there, auth).get_json()

    assert created.status_code == 201
    assert found_here["found"] is True
    assert found_there["found"] is True


# Redis down, and back ---------------------------------------------------------------------------


def outage_app(make_app, server, crm_url, **extra):
    return make_app(
        CTI_DIALER="cc_agent",
        CTI_CC_AGENT_URL=CC_AGENT_URL,
        CTI_CC_AGENT_API_KEY=CC_AGENT_KEY,
        CTI_REDIS_URL=server.url,
        CTI_CRM="switchtransact",
        CTI_CRM_URL=crm_url,
        CTI_CRM_API_KEY=CRM_KEY,
        **extra,
    )


def test_while_redis_is_down_nothing_answers_500_and_each_endpoint_degrades_as_promised(
    make_app, auth, upstream, outage, caplog
):
    upstream.get(ORIGINATE, json={"Success": True, "uuid": "call-1"})
    with FakeServer(lambda seen: Answer(200, FOUND)) as crm:
        upstream.add_passthru(crm.url)
        client = outage_app(make_app, outage, crm.url).test_client()
        outage.stop()

        ready = client.get("/readyz")
        call = client.post(
            "/api/v1/calls", json={"to": "0721234567", "agent": "6000"}, headers=auth
        )
        keyed = client.post(
            "/api/v1/calls",
            json={"to": "0721234568", "agent": "6000"},
            headers={**auth, "Idempotency-Key": "k-1"},
        )
        rung = ring(client)
        ended = client.post(
            "/api/v1/webhooks/pbx", json=call_end(), headers={"X-Webhook-Token": WEBHOOK_SECRET}
        )
        looked_up = lookup(client, auth)
        crm_requests = crm.count("/calls/record")

    assert ready.status_code == 503
    assert "redis" in ready.get_json()["detail"]
    assert (call.status_code, call.get_json()["code"]) == (503, "upstream_unavailable")
    assert "shared store" in call.get_json()["detail"] and "redis" in call.get_json()["detail"]
    assert keyed.status_code == 503
    assert not [c for c in upstream.calls if c.request.url.startswith(ORIGINATE)]
    assert rung.status_code == 503  # the PBX sends the ring again
    assert ended.status_code == 202  # the journal lives in the database
    assert looked_up.status_code == 200 and looked_up.get_json()["found"] is True
    assert crm_requests == 1
    for response in (ready, call, keyed, rung, looked_up):
        assert REDIS_PASSWORD not in response.get_data(as_text=True)
    assert REDIS_PASSWORD not in caplog.text


def test_everything_works_again_when_redis_comes_back_without_a_restart(
    make_app, auth, upstream, outage
):
    upstream.get(ORIGINATE, json={"Success": True, "uuid": "call-1"})
    with FakeServer(lambda seen: Answer(200, FOUND)) as crm:
        upstream.add_passthru(crm.url)
        client = outage_app(make_app, outage, crm.url).test_client()
        assert lookup(client, auth).status_code == 200  # pooled connections now exist
        outage.stop()
        assert client.get("/readyz").status_code == 503
        outage.start()

        ready = client.get("/readyz")
        call = client.post(
            "/api/v1/calls", json={"to": "0721234567", "agent": "6000"}, headers=auth
        )
        again = client.post(
            "/api/v1/calls", json={"to": "072 123 4567", "agent": "6000"}, headers=auth
        )
        rung = ring(client)
        looked_up = lookup(client, auth, "0829876543")

    assert ready.status_code == 200
    assert (call.status_code, again.status_code) == (201, 200)  # dedupe is back in Redis
    assert rung.status_code == 202
    assert looked_up.status_code == 200


def test_erasure_followers_say_how_far_they_came_and_silent_ones_go(store):
    erasures = store.erasures
    now = time.time()
    erasures.report_follower("host:1", 0, 0, stale_before=now - 3600)
    erasures.report_follower("host:2", 0, 0, stale_before=now - 3600)
    first = erasures.add_erasure("+27*******4567")
    erasures.report_follower("host:1", first, 2, stale_before=now - 3600)

    found = {f.id: (f.seen, f.dropped) for f in erasures.followers(since=now - 60)}
    assert found == {"host:1": (first, 2), "host:2": (0, 0)}
    assert erasures.followers(since=time.time() + 60) == []  # none reported since then

    erasures.leave("host:2")
    erasures.report_follower("host:3", first, 0, stale_before=time.time() + 1)  # all else stale
    assert [f.id for f in erasures.followers(since=0)] == ["host:3"]
