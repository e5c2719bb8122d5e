"""Cross-worker promises of click-to-call, against a real gunicorn and a real fake upstream, with
the embedded store and with Redis (``shared_env``)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from .conftest import API_KEY, CC_AGENT_KEY
from .fakeserver import Answer, FakeServer
from .gunicorn_runner import gunicorn

pytestmark = pytest.mark.slow


def post(base, body, headers=None):
    request = urllib.request.Request(
        base + "/api/v1/calls",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "X-API-Key": API_KEY, **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, dict(answer.headers), json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def settings(fake, tmp_path, **extra):
    return {
        "CTI_API_KEYS": API_KEY,
        "CTI_DIALER": "cc_agent",
        "CTI_CC_AGENT_URL": fake.url,
        "CTI_CC_AGENT_API_KEY": CC_AGENT_KEY,
        "CTI_DATABASE": str(tmp_path / "cti.sqlite3"),
        **extra,
    }


@pytest.mark.parametrize("close", [False, True], ids=["keep-alive", "connection-close"])
def test_twenty_concurrent_identical_clicks_on_four_workers_place_one_call(
    tmp_path, shared_env, close
):
    answer = Answer(200, {"Success": True, "uuid": "one-and-only"}, delay=0.3)
    with (
        FakeServer(lambda seen: answer, close=close) as fake,
        gunicorn(settings(fake, tmp_path, **shared_env), workers=4, cwd=tmp_path) as base,
    ):
        spellings = ["072 123 4567", "+27 72 123 4567", "0027721234567", "27721234567"]
        with ThreadPoolExecutor(max_workers=20) as pool:
            results = list(
                pool.map(lambda i: post(base, {"to": spellings[i % 4], "agent": "6000"}), range(20))
            )

    assert fake.count("/api/cc_agent/originate") == 1
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [200] * 19 + [201]
    assert {body["call_id"] for _, _, body in results} == {"one-and-only"}
    assert all(h.get("Idempotent-Replayed") == "true" for s, h, _ in results if s == 200)


def test_rate_limit_holds_across_workers(tmp_path, shared_env):
    answer = Answer(200, {"Success": True, "uuid": "u"}, delay=0.05)
    with FakeServer(lambda seen: answer) as fake:
        env = settings(fake, tmp_path, CTI_CALL_RATE="5/minute", **shared_env)
        with gunicorn(env, workers=4, cwd=tmp_path) as base:
            with ThreadPoolExecutor(max_workers=12) as pool:
                results = list(
                    pool.map(
                        lambda i: post(base, {"to": f"07212345{i:02d}", "agent": "6000"}), range(12)
                    )
                )

    assert fake.count() == 5
    assert sorted(status for status, _, _ in results) == [201] * 5 + [429] * 7
    assert all(int(h["Retry-After"]) >= 1 for s, h, _ in results if s == 429)
