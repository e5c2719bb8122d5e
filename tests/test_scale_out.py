"""Two hosts behind a load balancer: two gunicorn instances on different ports sharing one Redis and
one PostgreSQL database (a shared SQLite file where PostgreSQL is not installed) act as one
middleware, and survive Redis going away and coming back."""

from __future__ import annotations

import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from devtools.waiting import wait_until

from .conftest import API_KEY, CC_AGENT_KEY, CRM_KEY, WEBHOOK_SECRET
from .fakeserver import Answer, FakeServer
from .gunicorn_runner import gunicorn
from .journal_fakes import call_end
from .pg_server import _bin_dir as postgres_bin_dir
from .redis_server import RedisServer, redis_available
from .sse import SseStream

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not redis_available(), reason="redis-server is not installed"),
]

KNOWN = "+27721234567"
JAMES = {"id": "c-1", "firstname": "James", "lastname": "May", "mobilephone": "0721234567"}
HOOK = {"X-Webhook-Token": WEBHOOK_SECRET}
KEY = {"X-API-Key": API_KEY}


class FakeUpstreams:
    """One fake server for the dialer (cc_agent) and the CRM: originates, lookups (slow, so that
    concurrent ones overlap) and call logs, counted per customer number."""

    def __init__(self):
        self.lock = threading.Lock()
        self.logs: dict[str, int] = {}

    def __call__(self, seen):
        if seen.path == "/api/cc_agent/originate":
            return Answer(
                200, {"Success": True, "uuid": f"call-{seen.query['destination']}"}, delay=0.3
            )
        if seen.path == "/calls/record":
            found = seen.query.get("phone") in (KNOWN, "0721234567")
            body = {"status": True, "contact": JAMES} if found else {"status": False}
            return Answer(200, body, delay=0.3 if found else 0)
        if seen.path == "/calls/log":
            with self.lock:
                number = seen.json()["Number"]
                self.logs[number] = self.logs.get(number, 0) + 1
            return Answer(200, {"status": True})
        return Answer(404, {"status": False, "error": "no such path"})

    def delivered(self) -> dict[str, int]:
        with self.lock:
            return dict(self.logs)


@contextlib.contextmanager
def shared_database(request, tmp_path):
    """A fresh PostgreSQL database of the session's server, or a SQLite file without PostgreSQL."""
    if postgres_bin_dir() is None:
        yield str(tmp_path / "shared.sqlite3")
        return
    server = request.getfixturevalue("postgres_server")
    url = server.create_database()
    try:
        yield url
    finally:
        server.drop_database(url)


@contextlib.contextmanager
def two_hosts(tmp_path, database: str, redis_url: str, upstream_url: str):
    """Two gunicorn instances (2 workers each) on one Redis and one database."""
    env = {
        "CTI_API_KEYS": API_KEY,
        "CTI_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "CTI_DATABASE": database,
        "CTI_REDIS_URL": redis_url,
        "CTI_DIALER": "cc_agent",
        "CTI_CC_AGENT_URL": upstream_url,
        "CTI_CC_AGENT_API_KEY": CC_AGENT_KEY,
        "CTI_CRM": "switchtransact",
        "CTI_CRM_URL": upstream_url,
        "CTI_CRM_API_KEY": CRM_KEY,
        "CTI_CALL_RATE": "1000/minute",
    }
    limits = ("--graceful-timeout", "1")
    with (
        gunicorn(env, workers=2, threads=16, cwd=tmp_path, extra_args=limits) as first,
        gunicorn(env, workers=2, threads=16, cwd=tmp_path, extra_args=limits) as second,
    ):
        yield first, second


@pytest.fixture(scope="module")
def module_redis():
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def hosts(request, tmp_path_factory, module_redis):
    fake = FakeUpstreams()
    tmp_path = tmp_path_factory.mktemp("hosts")
    with (
        FakeServer(fake) as server,
        shared_database(request, tmp_path) as database,
        two_hosts(tmp_path, database, module_redis.url, server.url) as bases,
    ):
        yield bases, server, fake


def call(base, to, agent="6000"):
    answer = requests.post(
        f"{base}/api/v1/calls", json={"to": to, "agent": agent}, headers=KEY, timeout=30
    )
    return answer.status_code, answer.json()


def lookup(base, phone):
    answer = requests.get(
        f"{base}/api/v1/contacts/lookup", params={"phone": phone}, headers=KEY, timeout=30
    )
    return answer.status_code, answer.json()


def ring(base, call_id, agent="6000", number="0721234567"):
    body = {"event": "call:ring", "id": call_id, "call_id": call_id, "cid_num": number}
    return requests.post(
        f"{base}/api/v1/webhooks/pbx",
        json={**body, "type": "inbound", "dst_num": agent},
        headers=HOOK,
        timeout=10,
    ).status_code


def post_call_ends(bases, numbers) -> list[int]:
    """One ``call:end`` per number, alternately to each host; the statuses answered."""

    def post(item):
        n, number = item
        event = call_end(id=f"end-{number}", cid_num=number)
        answer = requests.post(
            f"{bases[n % 2]}/api/v1/webhooks/pbx", json=event, headers=HOOK, timeout=30
        )
        return answer.status_code

    with ThreadPoolExecutor(16) as pool:
        return list(pool.map(post, enumerate(numbers)))


def delivered_of(fake, numbers) -> dict[str, int]:
    """How many call logs ``fake`` received of each of ``numbers``, once it has them all."""
    wait_until(
        lambda: set(numbers) <= set(fake.delivered()),
        60,
        lambda: f"call logs of {len(set(numbers) - set(fake.delivered()))} numbers undelivered",
        interval=0.2,
    )
    return {n: c for n, c in fake.delivered().items() if n in set(numbers)}


# acceptance: two hosts act as one ---------------------------------------------------------------


def test_twenty_identical_clicks_split_between_two_hosts_place_one_call(hosts):
    bases, server, _ = hosts
    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda i: call(bases[i % 2], "072 123 4500"), range(20)))

    originates = [s for s in server.seen if s.path == "/api/cc_agent/originate"]
    assert [s.query["destination"] for s in originates].count("27721234500") == 1
    assert sorted(status for status, _ in results) == [200] * 19 + [201]
    assert {body["call_id"] for _, body in results} == {"call-27721234500"}


def test_fifty_lookups_of_one_uncached_number_split_between_two_hosts_make_one_crm_request(
    hosts,
):
    bases, server, _ = hosts
    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(lambda i: lookup(bases[i % 2], "072 123 4567"), range(50)))

    assert server.count("/calls/record") == 1
    assert [status for status, _ in results] == [200] * 50
    assert {body["contact"]["name"] for _, body in results} == {"James May"}


def test_a_ring_on_one_host_reaches_a_stream_on_the_other_within_a_second(hosts):
    bases, _, _ = hosts
    stream = SseStream(bases[1], f"/api/v1/agents/6100/events?api_key={API_KEY}")
    try:
        stream.worker()  # the stream is open and past its start
        started = time.monotonic()
        assert ring(bases[0], "across-hosts", agent="6100") == 202
        event = stream.next_event(timeout=2)
        elapsed = time.monotonic() - started
    finally:
        stream.close()

    assert event["data"]["call_id"] == "across-hosts"
    assert elapsed < 1.0


def test_a_thousand_webhooks_split_between_two_hosts_are_each_delivered_once(hosts):
    bases, _, fake = hosts
    numbers = [f"+2782{n:07d}" for n in range(1000)]

    statuses = post_call_ends(bases, numbers)
    delivered = delivered_of(fake, numbers)

    assert statuses == [202] * 1000
    assert set(delivered) == set(numbers)
    assert set(delivered.values()) == {1}


# acceptance: Redis goes away mid-run and comes back ---------------------------------------------


def test_redis_stopped_mid_run_then_restarted_degrades_without_500_and_recovers(request, tmp_path):
    redis = RedisServer().start()
    fake = FakeUpstreams()
    try:
        with (
            FakeServer(fake) as server,
            shared_database(request, tmp_path) as database,
            two_hosts(tmp_path, database, redis.url, server.url) as bases,
        ):
            before = [f"+2783{n:07d}" for n in range(100)]
            during = [f"+2784{n:07d}" for n in range(100)]
            assert post_call_ends(bases, before) == [202] * 100

            redis.stop()
            down = {
                "ready": [requests.get(f"{b}/readyz", timeout=10) for b in bases],
                "calls": [call(bases[i % 2], "072 123 4501") for i in range(6)],
                "lookups": [lookup(b, "0721234567") for b in bases],
                "rings": [ring(b, f"while-down-{i}") for i, b in enumerate(bases)],
                "ends": post_call_ends(bases, during),
            }
            originates_while_down = server.count("/api/cc_agent/originate")

            redis.start()  # the same port; neither host is restarted
            ready = [requests.get(f"{b}/readyz", timeout=10).status_code for b in bases]
            with ThreadPoolExecutor(10) as pool:
                calls = list(pool.map(lambda i: call(bases[i % 2], "072 123 4502"), range(10)))
            stream = SseStream(bases[1], f"/api/v1/agents/6200/events?api_key={API_KEY}")
            try:
                stream.worker()
                assert ring(bases[0], "after-restart", agent="6200") == 202
                event = stream.next_event(timeout=2)
            finally:
                stream.close()
            delivered = delivered_of(fake, before + during)
    finally:
        redis.close()

    for answer in down["ready"]:
        assert answer.status_code == 503 and "redis" in answer.json()["detail"]
    assert {status for status, _ in down["calls"]} == {503}
    assert all(body["code"] == "upstream_unavailable" for _, body in down["calls"])
    assert originates_while_down == 0  # refused rather than risk a double call
    assert [status for status, _ in down["lookups"]] == [200, 200]
    assert all(body["contact"]["name"] == "James May" for _, body in down["lookups"])
    assert down["rings"] == [503, 503]  # the PBX sends them again
    assert down["ends"] == [202] * 100  # the journal lives in the database

    assert ready == [200, 200]
    assert sorted(status for status, _ in calls) == [200] * 9 + [201]
    assert event["data"]["call_id"] == "after-restart"
    assert set(delivered) == set(before + during) and set(delivered.values()) == {1}
