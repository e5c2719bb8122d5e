"""Callbacks across processes (contract section 4: one callback per number at a time, across
workers and hosts): misses of one number logged at once by two gunicorn workers (SQLite and
PostgreSQL), and by two hosts sharing PostgreSQL and Redis, are one callback that counts them all;
what one host does to it, the other shows."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from devtools.waiting import wait_until

from .conftest import API_KEY, WEBHOOK_SECRET
from .gunicorn_runner import gunicorn
from .redis_server import RedisServer, redis_available
from .test_scale_out import shared_database

pytestmark = pytest.mark.slow

KEY = {"X-API-Key": API_KEY}
HOOK = {"X-Webhook-Token": WEBHOOK_SECRET}
SPELLINGS = ("0721234567", "+27721234567", "27721234567", "072 123 4567")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        yield str(tmp_path / "cti.sqlite3")
        return
    with shared_database(request, tmp_path) as url:
        if not url.startswith("postgresql"):
            pytest.skip("PostgreSQL is not installed")
        yield url


def served(store: str, **extra) -> dict:
    return {
        "CTI_API_KEYS": API_KEY,
        "CTI_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "CTI_DATABASE": store,
        "CTI_JOURNAL_SETTLE_SECONDS": "0.5",
        **extra,
    }


def missed_call(n: int) -> list[dict]:
    """cc_agent queue call ``n`` from the one number (in turn in each spelling), unanswered."""
    base = {
        "id": f"c{n}",
        "call_id": f"c{n}",
        "type": "queue",
        "cid_num": SPELLINGS[n % len(SPELLINGS)],
        "dst_user_id": "101",
    }
    ts = int(time.time())
    return [
        {**base, "event": "call:ring", "ts": ts},
        {**base, "event": "call:end", "ts": ts + 20, "durationms": 20_000, "billms": 0},
    ]


def post_at_once(targets: list[tuple[str, list[dict]]]) -> None:
    """Each (base URL, events) by a thread of its own, all threads released together."""
    start = threading.Barrier(len(targets))
    failures: list[str] = []

    def post(base: str, events: list[dict]) -> None:
        with requests.Session() as session:
            start.wait()
            for event in events:
                answer = session.post(f"{base}/api/v1/webhooks/pbx", json=event, headers=HOOK)
                if answer.status_code != 202:
                    failures.append(answer.text)

    threads = [threading.Thread(target=post, args=target) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures


def callbacks_missed(base: str, missed: int) -> list[dict]:
    """The callbacks once one of them counts ``missed`` misses (the deliverers settle them)."""
    found: dict = {}

    def counted() -> list[dict] | None:
        found.update(requests.get(f"{base}/api/v1/callbacks", headers=KEY, timeout=10).json())
        if any(c["missed"] >= missed for c in found["callbacks"]):
            return found["callbacks"]
        return None

    return wait_until(counted, 30, lambda: f"not {missed} misses: {found}", interval=0.1)


def deliverers_settled(base: str, logged: int, timeout: float = 30) -> None:
    """Until the journal shows ``logged`` entries delivered: every log was made and settled by
    the workers' own deliverers (which settle callbacks before they claim)."""
    page: dict = {}

    def delivered() -> bool:
        page.update(
            requests.get(
                f"{base}/api/v1/journal", params={"status": "delivered"}, headers=KEY, timeout=10
            ).json()
        )
        return len(page["entries"]) >= logged

    wait_until(delivered, timeout, lambda: f"{logged} entries delivered: {page}", interval=0.1)


@pytest.mark.parametrize("misses", [2, 12])
def test_misses_of_one_number_logged_by_two_workers_at_once_are_one_callback(
    tmp_path, store_url, misses
):
    with gunicorn(served(store_url), workers=2, threads=4, cwd=tmp_path) as base:
        post_at_once([(base, missed_call(n)) for n in range(misses)])
        deliverers_settled(base, misses)
        (callback,) = callbacks_missed(base, misses)
        log = "".join(p.read_text() for p in tmp_path.glob("gunicorn-*.log"))

    assert (callback["number"], callback["missed"], callback["status"]) == (
        "+27721234567",
        misses,
        "open",
    )
    assert "journal deliverer started" in log


@pytest.mark.skipif(not redis_available(), reason="redis-server is not installed")
def test_callbacks_are_the_same_across_two_hosts(request, tmp_path):
    redis = RedisServer().start()
    try:
        with shared_database(request, tmp_path) as database:
            env = served(database, CTI_REDIS_URL=redis.url)
            # one sync worker each: an agent's stream answers what is there and ends
            with (
                gunicorn(env, workers=2, threads=4, cwd=tmp_path) as first,
                gunicorn(env, workers=1, threads=1, cwd=tmp_path) as second,
            ):
                post_at_once(
                    [(first, missed_call(n)) for n in range(0, 8, 2)]
                    + [(second, missed_call(n)) for n in range(1, 8, 2)]
                )
                deliverers_settled(first, 8)
                (on_first,) = callbacks_missed(first, 8)
                (on_second,) = callbacks_missed(second, 8)
                assert on_first == on_second
                assert on_first["missed"] == 8

                taken = requests.post(
                    f"{first}/api/v1/callbacks/{on_first['id']}/assign",
                    json={"agent": "6001"},
                    headers=KEY,
                    timeout=10,
                )
                assert taken.status_code == 200
                again = requests.post(
                    f"{second}/api/v1/callbacks/{on_first['id']}/dismiss", headers=KEY, timeout=10
                )
                assert again.status_code == 200
                late = requests.post(
                    f"{first}/api/v1/callbacks/{on_first['id']}/dismiss", headers=KEY, timeout=10
                )
                assert late.status_code == 409
                stream = requests.get(
                    f"{second}/api/v1/agents/6001/events",
                    params={"last_event_id": 0},
                    headers=KEY,
                    timeout=10,
                )
    finally:
        redis.close()

    messages = [
        json.loads(block.split("data: ", 1)[1])
        for block in stream.text.split("\n\n")
        if "event: callback" in block
    ]
    assert [m["status"] for m in messages][-2:] == ["assigned", "done"]
    assert {m["id"] for m in messages} == {on_first["id"]}
    assert messages[-1]["done_how"] == "dismissed"
