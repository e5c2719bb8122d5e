"""The probe's burst under real gunicorn: PBX events holding a lone surrogate, among good ones sent
at the same moment, are refused alone; every good one is acknowledged and stored exactly once."""

from __future__ import annotations

import json
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from .conftest import API_KEY, WEBHOOK_SECRET
from .fakeserver import Answer, FakeServer
from .gunicorn_runner import gunicorn
from .journal_fakes import call_end, served_env

pytestmark = pytest.mark.slow

BURSTS = 3
EVENTS = 40
BAD_FIELDS = ("dst_user_id", "src_user_id", "call_id", "recording_url")  # 4 bad events a burst


def crm(seen):
    """Every caller unknown, every call log taken."""
    return Answer(200, {"status": seen.path == "/calls/log"})


def burst(number: int) -> list[tuple[dict, str | None]]:
    """``EVENTS`` call:end events, each a call of its own; every tenth holds a lone surrogate in
    one of ``BAD_FIELDS``: (event, the bad field or None)."""
    events = []
    for n in range(EVENTS):
        event = call_end(id=f"burst{number}-call{n}", cid_num=f"+2772{number}{n:06d}")
        bad = BAD_FIELDS[n // 10] if n % 10 == 5 else None
        if bad:
            event[bad] = "agent-\ud800"
        events.append((event, bad))
    return events


def stored_keys(base: str) -> Counter:
    """Every journal entry's key, read page by page through ``GET /api/v1/journal``."""
    keys: Counter = Counter()
    cursor = None
    while True:
        params = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        page = requests.get(
            f"{base}/api/v1/journal", params=params, headers={"X-API-Key": API_KEY}, timeout=10
        ).json()
        keys.update(entry["key"] for entry in page["entries"])
        cursor = page["next"]
        if cursor is None:
            return keys


def test_bad_events_in_concurrent_bursts_are_refused_alone(tmp_path, sql_database):
    sent = [item for number in range(BURSTS) for item in burst(number)]
    start = threading.Barrier(len(sent))

    def post(item):
        event, _ = item
        body = json.dumps(event).encode()  # the surrogate as the escape "\ud800": valid JSON
        start.wait(30)  # every event in flight at once: the good share group commits with the bad
        answer = requests.post(
            f"{base}/api/v1/webhooks/pbx",
            data=body,
            headers={"Content-Type": "application/json", "X-Webhook-Token": WEBHOOK_SECRET},
            timeout=30,
        )
        return answer.status_code, answer.json()

    with FakeServer(crm) as fake:
        env = served_env(sql_database, fake.url)
        with gunicorn(env, workers=2, threads=24, cwd=tmp_path) as base:
            with ThreadPoolExecutor(len(sent)) as pool:
                answers = list(pool.map(post, sent))
            keys = stored_keys(base)

    outcomes = [(bad, status, body) for (_, bad), (status, body) in zip(sent, answers, strict=True)]
    good = [event["id"] for event, bad in sent if bad is None]
    assert len(good) == BURSTS * (EVENTS - len(BAD_FIELDS))
    assert [status for bad, status, _ in outcomes if not bad] == [202] * len(good)
    refused = [
        (status, body["code"], list(body["errors"])) for bad, status, body in outcomes if bad
    ]
    assert refused == [(422, "validation_error", [field]) for field in BAD_FIELDS] * BURSTS
    assert keys == Counter(good)  # every good event stored exactly once, nothing else
