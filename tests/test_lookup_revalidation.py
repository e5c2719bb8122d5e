"""A caller the cache knows never waits on the CRM: an expired found contact younger than
``CTI_CACHE_REVALIDATE_TTL`` answers at once, marked stale, while one background lookup (one per
number, across workers and hosts with Redis) refreshes it."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from devtools.waiting import wait_until

from .conftest import API_KEY, CRM_KEY
from .fakeserver import Answer, FakeServer
from .gunicorn_runner import gunicorn

JAMES = {"id": "c-1", "firstname": "James", "lastname": "May", "mobilephone": "0721234567"}
JIM = {**JAMES, "firstname": "Jim"}


class Crm:
    """A fake SwitchTransact whose answer the test changes; counts the lookups it received."""

    def __init__(self):
        self.answer = Answer(200, {"status": True, "contact": JAMES})

    def __call__(self, seen):
        return self.answer


def crm_env(url, **extra):
    return {
        "CTI_API_KEYS": API_KEY,
        "CTI_CRM": "switchtransact",
        "CTI_CRM_URL": url,
        "CTI_CRM_API_KEY": CRM_KEY,
        "CTI_CACHE_TTL": "1",
        **extra,
    }


def lookup(client, phone="0721234567"):
    answer = client.get(
        "/api/v1/contacts/lookup", query_string={"phone": phone}, headers={"X-API-Key": API_KEY}
    )
    return answer.status_code, answer.get_json()


def test_an_expired_contact_answers_at_once_while_one_refresh_runs(make_app):
    crm = Crm()
    with FakeServer(crm) as server:
        client = make_app(**crm_env(server.url)).test_client()
        assert lookup(client)[1]["stale"] is False
        time.sleep(1.5)  # expired; the CRM now takes 2 s and knows the caller as Jim
        crm.answer = Answer(200, {"status": True, "contact": JIM}, delay=2)

        started = time.monotonic()
        status, body = lookup(client)
        elapsed = time.monotonic() - started
        again = [lookup(client)[1] for _ in range(5)]  # while the refresh runs

        wait_until(lambda: lookup(client)[1]["stale"] is False, 5, "a fresh answer", interval=0.02)
        status_after, after = lookup(client)
        refreshes = server.count("/calls/record") - 1

    assert status == 200
    assert elapsed < 0.05 * 4  # 50 ms on an idle machine; headroom for a loaded runner
    assert body["cached"] is True and body["stale"] is True
    assert body["contact"]["name"] == "James May"
    assert all(b["stale"] is True and b["contact"]["name"] == "James May" for b in again)
    assert refreshes == 1
    assert status_after == 200
    assert after["contact"]["name"] == "Jim May"
    assert after["stale"] is False


def test_a_failed_refresh_keeps_the_old_contact(make_app):
    crm = Crm()
    with FakeServer(crm) as server:
        client = make_app(**crm_env(server.url)).test_client()
        lookup(client)
        time.sleep(1.2)
        crm.answer = Answer(500, {"status": False, "error": "database down"})
        first = lookup(client)[1]
        wait_until(lambda: server.count("/calls/record") == 2, 5, "2 lookups", interval=0.02)
        time.sleep(0.1)
        second = lookup(client)[1]  # the failure landed: still the old contact, a new refresh
        wait_until(lambda: server.count("/calls/record") == 3, 5, "3 lookups", interval=0.02)

    assert first["contact"]["name"] == second["contact"]["name"] == "James May"
    assert first["stale"] is second["stale"] is True


def test_past_the_revalidate_ttl_a_lookup_waits_for_the_crm(make_app):
    crm = Crm()
    with FakeServer(crm) as server:
        env = crm_env(server.url, CTI_CACHE_REVALIDATE_TTL="1.2")
        client = make_app(**env).test_client()
        lookup(client)
        time.sleep(1.4)
        crm.answer = Answer(200, {"status": True, "contact": JIM})
        status, body = lookup(client)

    assert status == 200
    assert body["stale"] is False and body["cached"] is False
    assert body["contact"]["name"] == "Jim May"


def test_a_not_found_is_not_revalidated(make_app):
    crm = Crm()
    crm.answer = Answer(200, {"status": False})
    with FakeServer(crm) as server:
        env = crm_env(server.url, CTI_CACHE_NEGATIVE_TTL="0.3")
        client = make_app(**env).test_client()
        assert lookup(client)[1]["found"] is False
        time.sleep(0.4)
        crm.answer = Answer(200, {"status": True, "contact": JAMES})
        status, body = lookup(client)

    assert body["found"] is True and body["stale"] is False


def get(base, phone="0721234567"):
    request = urllib.request.Request(
        f"{base}/api/v1/contacts/lookup?phone={phone}", headers={"X-API-Key": API_KEY}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


@pytest.mark.slow
def test_concurrent_revalidations_over_two_workers_with_redis_make_one_refresh(tmp_path, redis_url):
    crm = Crm()
    with FakeServer(crm) as server:
        env = crm_env(
            server.url,
            CTI_REDIS_URL=redis_url,
            CTI_CACHE_LOCAL_TTL="0.5",
            CTI_DATABASE=str(tmp_path / "cti.sqlite3"),
        )
        with gunicorn(env, workers=2, threads=8, cwd=tmp_path) as base:
            assert get(base)["stale"] is False
            time.sleep(1.5)
            crm.answer = Answer(200, {"status": True, "contact": JIM}, delay=1)
            barrier = threading.Barrier(20)

            def one(_):
                barrier.wait()
                return get(base)

            with ThreadPoolExecutor(20) as pool:
                answers = list(pool.map(one, range(20)))
            wait_until(
                lambda: get(base)["contact"]["name"] == "Jim May",
                5,
                "Jim May's name",
                interval=0.02,
            )
            refreshes = server.count("/calls/record") - 1

    assert all(a["stale"] is True and a["contact"]["name"] == "James May" for a in answers)
    assert refreshes == 1
