"""Legs of one call landing on several gunicorn workers and hosts at once, and processes killed
between two legs: every call is logged once, with the right agent and type, and only once its
legs have ended."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from devtools.waiting import wait_until

from .conftest import API_KEY, WEBHOOK_SECRET
from .fakeserver import FakeServer
from .gunicorn_runner import gunicorn
from .journal_fakes import LoggingCrm, served_env
from .redis_server import RedisServer, redis_available
from .test_journal_legs import AGENTS_CSV, T0
from .test_scale_out import shared_database

pytestmark = pytest.mark.slow

CALLS = 200
LEGS = 5
HOOK = {"X-Webhook-Token": WEBHOOK_SECRET}


def number(n: int) -> str:
    return f"+2772{n:07d}"


def answered_by(n: int) -> int | None:
    """Call ``n`` is answered by its leg 1-5 (every tenth call by nobody)."""
    return None if n % 10 == 0 else 1 + n % LEGS


def call_events(n: int, legs=range(1, LEGS + 1)) -> list[dict]:
    """The ring, answer and end events of the legs of queue call ``n``; agent of leg k: 600k."""
    events = []
    for leg in legs:
        talk = 60_000 + 1000 * leg if answered_by(n) == leg else 0
        base = {
            "id": f"c{n}" if leg == 1 else f"c{n}-{leg}",
            "call_id": f"c{n}",
            "type": "queue",
            "cid_num": number(n),
            "dst_user_id": str(100 + leg),
        }
        events.append({**base, "event": "call:ring", "ts": T0})
        if talk:
            events.append({**base, "event": "call:answer", "ts": T0 + 5})
        end = T0 + 5 + talk // 1000 if talk else T0 + 20
        events.append(
            {
                **base,
                "event": "call:end",
                "ts": end,
                "durationms": (end - T0) * 1000,
                "billms": talk,
            }
        )
    return events


def check_log(n: int, log: dict) -> None:
    leg = answered_by(n)
    if leg is None:
        assert (log["CallType"], log["AgentEmail"]) == ("Missed", ""), (n, log)
        return
    assert (log["CallType"], log["AgentEmail"]) == ("Inbound", f"agent{leg}@example.com"), (n, log)
    assert log["Duration"] == f"00:01:{leg:02d}", (n, log)


def env_for(tmp_path, database: str, crm_url: str, **extra) -> dict:
    agents = tmp_path / "agents.csv"
    agents.write_text(AGENTS_CSV)
    return served_env(
        database,
        crm_url,
        CTI_AGENTS_FILE=str(agents),
        CTI_JOURNAL_SETTLE_SECONDS="1",
        **extra,
    )


def post_calls_concurrently(bases: list[str], calls: range) -> None:
    """Every event of every call, each call's events shuffled and sent at once by several
    threads, each event to a host chosen at random (and there to whichever worker accepts)."""
    rng = random.Random(17)
    local = threading.local()

    def post(item) -> None:
        base, event = item
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        answer = session.post(f"{base}/api/v1/webhooks/pbx", json=event, headers=HOOK, timeout=30)
        assert answer.status_code == 202, answer.text

    work = []
    for n in calls:
        events = call_events(n)
        rng.shuffle(events)
        work += [(rng.choice(bases), event) for event in events]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(post, work))


def logs_of(crm: LoggingCrm, expected: int, timeout: float) -> dict[str, list[dict]]:
    """The call logs ``crm`` received, once there are ``expected`` and then 1.5 s more."""
    wait_until(
        lambda: sum(map(len, crm.received().values())) >= expected,
        timeout,
        lambda: f"{expected} call logs (received {sum(map(len, crm.received().values()))})",
        interval=0.2,
    )
    time.sleep(1.5)  # a second log of some call, were one coming, would land by now
    return crm.received()


def assert_one_right_log_per_call(received: dict[str, list[dict]], calls: range) -> None:
    twice = {n: len(logs) for n, logs in received.items() if len(logs) > 1}
    assert not twice, f"calls logged more than once: {twice}"
    assert sorted(received) == sorted(number(n) for n in calls)
    for n in calls:
        check_log(n, received[number(n)][0])


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    if request.param == "sqlite":
        yield str(tmp_path / "cti.sqlite3")
    else:
        with shared_database(request, tmp_path) as url:
            if not url.startswith("postgresql"):
                pytest.skip("PostgreSQL is not installed")
            yield url


def test_two_hundred_five_leg_calls_over_two_workers_are_two_hundred_logs(tmp_path, database):
    crm = LoggingCrm()
    with (
        FakeServer(crm) as fake,
        gunicorn(env_for(tmp_path, database, fake.url), workers=2, threads=8, cwd=tmp_path) as base,
    ):
        began = time.monotonic()
        post_calls_concurrently([base], range(CALLS))
        print(f"\n{CALLS} calls of {LEGS} legs posted in {time.monotonic() - began:.1f}s")
        received = logs_of(crm, CALLS, timeout=60)

    assert_one_right_log_per_call(received, range(CALLS))


@pytest.mark.skipif(not redis_available(), reason="redis-server is not installed")
def test_two_hundred_five_leg_calls_over_two_hosts_are_two_hundred_logs(request, tmp_path):
    crm = LoggingCrm()
    redis = RedisServer().start()
    try:
        with (
            FakeServer(crm) as fake,
            shared_database(request, tmp_path) as database,
        ):
            env = env_for(tmp_path, database, fake.url, CTI_REDIS_URL=redis.url)
            with (
                gunicorn(env, workers=2, threads=8, cwd=tmp_path) as first,
                gunicorn(env, workers=2, threads=8, cwd=tmp_path) as second,
            ):
                post_calls_concurrently([first, second], range(CALLS))
                received = logs_of(crm, CALLS, timeout=60)
    finally:
        redis.close()

    assert_one_right_log_per_call(received, range(CALLS))


@contextlib.contextmanager
def killed_at_exit(server_env, tmp_path):
    """gunicorn whose master and workers are SIGKILLed (not stopped) when the block ends."""
    with gunicorn(server_env, workers=2, threads=4, cwd=tmp_path) as base:
        yield base
        master = gunicorn_master(base)
        os.killpg(master, signal.SIGKILL)
        wait_until(lambda: not requests_answer(base), 10, "the killed gunicorn to stop answering")


def gunicorn_master(base: str) -> int:
    from .test_journal_processes import gunicorn_workers

    workers = gunicorn_workers(base)
    parents = {
        int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1]) for pid in workers
    }
    (master,) = parents
    return master


def requests_answer(base: str) -> bool:
    try:
        requests.get(f"{base}/healthz", timeout=0.5)
    except requests.RequestException:
        return False
    return True


def test_sigkill_of_master_and_workers_between_legs_loses_nothing(tmp_path, database):
    """Acceptance 3: legs 1-3 ended (the 3rd answered), 4 and 5 ringing; SIGKILL; restart; the
    ends of 4 and 5: one call log, the 3rd leg's agent."""
    crm = LoggingCrm()
    n = 2  # answered by leg 3
    assert answered_by(n) == 3
    events = call_events(n)
    last_two = [
        e for e in events if e["event"] == "call:end" and e["dst_user_id"] in ("104", "105")
    ]
    before = [e for e in events if e not in last_two]
    with FakeServer(crm) as fake:
        env = env_for(tmp_path, database, fake.url)
        with killed_at_exit(env, tmp_path) as base:
            for event in before:
                answer = requests.post(
                    f"{base}/api/v1/webhooks/pbx", json=event, headers=HOOK, timeout=10
                )
                assert answer.status_code == 202
            time.sleep(2)  # past the settle window: legs 4 and 5 keep the call open
            assert crm.received() == {}
        with gunicorn(env, workers=2, threads=4, cwd=tmp_path) as base:
            for event in last_two:
                answer = requests.post(
                    f"{base}/api/v1/webhooks/pbx", json=event, headers=HOOK, timeout=10
                )
                assert answer.status_code == 202
            received = logs_of(crm, 1, timeout=20)
            journal = requests.get(
                f"{base}/api/v1/journal", headers={"X-API-Key": API_KEY}, timeout=10
            ).json()

    assert_one_right_log_per_call(received, range(n, n + 1))
    (entry,) = journal["entries"]
    assert entry["status"] == "delivered"
    assert len(entry["legs"]) == LEGS
