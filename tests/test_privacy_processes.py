"""Contract section 4, privacy, across processes: an erasure served by one gunicorn worker (or
host), a contact created or the erase command is forgotten by every other before it answers, and an entry erased while its
delivery is under way in a real deliverer is never sent."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from devtools.processes import ROOT, clean_env
from devtools.waiting import wait_until

from .conftest import API_KEY, WEBHOOK_SECRET
from .fakeserver import Answer, FakeServer
from .gunicorn_runner import gunicorn
from .journal_fakes import served_env
from .privacy_checks import JAMES_NUMBER, NOMSA_NUMBER
from .redis_server import RedisServer, redis_available

pytestmark = pytest.mark.slow

KEY = {"X-API-Key": API_KEY}
JAMES = {"id": "c-1", "firstname": "James", "lastname": "May", "mobilephone": JAMES_NUMBER}
KEEP_ALIVE = ("--keep-alive", "60")  # a session's connection stays with its worker


class Crm:
    """The CRM: knows James, takes every call log; ``slow_lookups`` delays James's lookups."""

    def __init__(self, slow_lookups: float = 0.0):
        self.slow_lookups = slow_lookups

    def __call__(self, seen):
        if seen.path == "/calls/record":
            if seen.query.get("phone") in (JAMES_NUMBER, "0721234567"):
                return Answer(200, {"status": True, "contact": JAMES}, delay=self.slow_lookups)
            return Answer(200, {"status": False})
        if seen.path == "/calls/log":
            return Answer(200, {"status": True})
        return Answer(404, {"status": False, "error": "no such path"})


def lookup(session: requests.Session, base: str) -> dict:
    answer = session.get(
        f"{base}/api/v1/contacts/lookup", params={"phone": "072 123 4567"}, headers=KEY, timeout=10
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def worker_of(answer: requests.Response) -> str:
    """The serving process: request ids start with a random prefix made once per process."""
    return answer.headers["X-Request-ID"][:16]


def pinned_sessions(base: str, workers: int) -> dict[str, requests.Session]:
    """One kept-alive session per worker of the server at ``base``."""
    found: dict[str, requests.Session] = {}

    def reached_all() -> bool:
        session = requests.Session()
        worker = worker_of(session.get(f"{base}/healthz", timeout=10))
        if worker in found:
            session.close()
        else:
            found[worker] = session
        return len(found) >= workers

    wait_until(reached_all, 20, lambda: f"reached {len(found)} of {workers} workers", interval=0)
    for worker, session in found.items():  # each stays on its worker
        assert worker_of(session.get(f"{base}/healthz", timeout=10)) == worker
    return found


def erase(session: requests.Session, base: str) -> dict:
    answer = session.delete(
        f"{base}/api/v1/privacy/numbers/%2B27721234567", headers=KEY, timeout=10
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.mark.parametrize("database", ["sqlite", "postgresql", "redis"])
def test_every_worker_forgets_a_number_erased_by_another_before_the_erasure_answers(
    request, tmp_path, database
):
    env = {"CTI_CACHE_LOCAL_TTL": "300"}  # with Redis: only the erasure may empty the first level
    if database == "postgresql":
        env["CTI_DATABASE"] = request.getfixturevalue("postgres_url")
    if database == "redis":
        env["CTI_REDIS_URL"] = request.getfixturevalue("redis_url")
    with FakeServer(Crm()) as crm:
        settings = served_env(str(tmp_path / "cti.sqlite3"), crm.url) | env
        with gunicorn(settings, workers=2, threads=4, cwd=tmp_path, extra_args=KEEP_ALIVE) as base:
            (first, server), (second, other) = pinned_sessions(base, 2).items()
            for session in (server, other):
                lookup(session, base)
                assert lookup(session, base)["cached"] is True  # each worker holds the contact
            asked = crm.count("/calls/record")

            assert erase(server, base)["erased"]["cache"] == 1

            assert lookup(other, base)["cached"] is False  # the other worker forgot it already
            assert crm.count("/calls/record") == asked + 1  # and asked the CRM again
            again = lookup(server, base)
            assert again["found"] is True and again["phone"] == JAMES_NUMBER


class Creating(Crm):
    """A CRM that knows no one until a contact is created under James's number."""

    def __init__(self):
        super().__init__()
        self.created = False

    def __call__(self, seen):
        if seen.path == "/calls/create":
            self.created = True
            return Answer(200, {"status": True, "contact": JAMES})
        if seen.path == "/calls/record" and not self.created:
            return Answer(200, {"status": False})
        return super().__call__(seen)


def test_a_contact_created_on_one_worker_is_no_longer_unknown_on_another(tmp_path):
    with FakeServer(Creating()) as crm:
        settings = served_env(str(tmp_path / "cti.sqlite3"), crm.url)
        with gunicorn(settings, workers=2, threads=4, cwd=tmp_path, extra_args=KEEP_ALIVE) as base:
            (_, server), (_, other) = pinned_sessions(base, 2).items()
            for session in (server, other):
                lookup(session, base)
                again = lookup(session, base)  # each worker caches "unknown"
                assert (again["found"], again["cached"]) == (False, True)

            body = {"first_name": "James", "last_name": "May", "phone": "072 123 4567"}
            created = server.post(f"{base}/api/v1/contacts", json=body, headers=KEY, timeout=10)
            assert created.status_code == 201, created.text

            found = lookup(other, base)  # at once: the other worker forgot its "unknown"
            assert (found["found"], found["cached"]) == (True, False)


def test_the_erase_command_counts_and_empties_the_caches_of_the_running_workers(tmp_path):
    with FakeServer(Crm()) as crm:
        settings = served_env(str(tmp_path / "cti.sqlite3"), crm.url)
        with gunicorn(settings, workers=2, threads=4, cwd=tmp_path, extra_args=KEEP_ALIVE) as base:
            sessions = list(pinned_sessions(base, 2).values())
            for session in sessions:
                lookup(session, base)
                assert lookup(session, base)["cached"] is True
            asked = crm.count("/calls/record")

            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "flask",
                    "--app",
                    "app",
                    "privacy",
                    "erase",
                    "--phone",
                    "+27721234567",
                ],
                env=clean_env(settings),
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert done.returncode == 0, done.stderr
            assert json.loads(done.stdout.strip().splitlines()[-1])["erased"]["cache"] == 1

            for session in sessions:  # every worker forgot it before the command ended
                assert lookup(session, base)["cached"] is False
            assert crm.count("/calls/record") == asked + 2


@contextlib.contextmanager
def two_hosts(request, tmp_path: Path, crm_url: str):
    """Two gunicorn instances (one worker each) on one Redis and one database (PostgreSQL, or a
    shared SQLite file where it is not installed)."""
    if not redis_available():
        pytest.skip("redis-server is not installed")
    from .pg_server import _bin_dir

    database = (
        request.getfixturevalue("postgres_url") if _bin_dir() else str(tmp_path / "shared.sqlite3")
    )
    redis = RedisServer().start()
    settings = served_env(database, crm_url, CTI_REDIS_URL=redis.url, CTI_CACHE_LOCAL_TTL="300")
    try:
        with (
            gunicorn(settings, workers=1, threads=4, cwd=tmp_path, extra_args=KEEP_ALIVE) as one,
            gunicorn(settings, workers=1, threads=4, cwd=tmp_path, extra_args=KEEP_ALIVE) as two,
        ):
            yield one, two
    finally:
        redis.close()


def test_another_host_forgets_a_number_erased_on_one_before_the_erasure_answers(request, tmp_path):
    with FakeServer(Crm()) as crm, two_hosts(request, tmp_path, crm.url) as (one, two):
        on_one, on_two = requests.Session(), requests.Session()
        lookup(on_one, one)
        assert lookup(on_two, two)["cached"] is True  # from Redis, now in host two's first level
        assert lookup(on_two, two)["cached"] is True
        asked = crm.count("/calls/record")

        assert erase(on_one, one)["erased"]["cache"] == 1

        assert lookup(on_two, two)["cached"] is False
        assert crm.count("/calls/record") == asked + 1
        assert lookup(on_one, one)["cached"] is True  # host two's lookup filled Redis again


def ivr_push(base: str, calllogid: str, number: str) -> None:
    query = {
        "calllogid": calllogid,
        "callnumber": number,
        "date": "2025-07-05",
        "time": "10:00:00",
        "callstatus": "ANSWER",
    }
    answer = requests.get(
        f"{base}/api/v1/webhooks/ibizfone",
        params=query,
        headers={"X-Webhook-Token": WEBHOOK_SECRET},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text


def test_an_entry_erased_while_a_worker_delivers_it_is_never_sent(tmp_path):
    """The worker's deliverer claims the entry and waits on the CRM for the caller's contact;
    the erasure lands meanwhile; the deliverer finds its claim gone and sends nothing, while
    another number's entry stored after it is delivered."""
    with FakeServer(Crm(slow_lookups=1.5)) as crm:
        settings = served_env(str(tmp_path / "cti.sqlite3"), crm.url, CTI_LOOKUP_TIMEOUT="5")
        with gunicorn(settings, workers=2, threads=4, cwd=tmp_path) as base:
            ivr_push(base, "ivr-james", "0721234567")
            wait_until(lambda: crm.count("/calls/record") >= 1, 10, "the deliverer's lookup")

            assert erase(requests.Session(), base)["erased"]["journal"] == 1
            ivr_push(base, "ivr-nomsa", "0829876543")
            log = Path(tmp_path / f"gunicorn-{base.rsplit(':', 1)[1]}.log")
            wait_until(
                lambda: "is no longer ours" in log.read_text(), 10, "the deliverer to drop it"
            )
            wait_until(lambda: crm.count("/calls/log") >= 1, 10, "Nomsa's call log")

            numbers = [seen.json()["Number"] for seen in crm.seen if seen.path == "/calls/log"]
            assert numbers == [NOMSA_NUMBER]
