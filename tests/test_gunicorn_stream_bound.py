"""``gunicorn app:app`` alone: streams never take the threads other requests need, and a request
that waited too long for a thread places no call. Real gunicorn, no config file."""

from __future__ import annotations

import json
import statistics
import threading
import time
import urllib.error
import urllib.request

import pytest

from devtools.processes import ROOT
from devtools.waiting import wait_until
from middleware.auth import Credentials

from .conftest import API_KEY, CC_AGENT_KEY, CRM_KEY, TOKEN_SECRET, WEBHOOK_SECRET
from .fakeserver import Answer, FakeServer
from .gunicorn_runner import gunicorn, host_env, stream_server
from .sse import RawStream, opened

pytestmark = pytest.mark.slow


def send(base, path, *, body=None, headers=None, timeout=10):
    """(status, headers, seconds) of one request; ``body`` is sent as JSON."""
    request = urllib.request.Request(
        base + path,
        data=None if body is None else json.dumps(body).encode(),
        method="GET" if body is None else "POST",
        headers={"Content-Type": "application/json", "X-API-Key": API_KEY, **(headers or {})},
    )
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            answer.read()
            return answer.status, dict(answer.headers), time.perf_counter() - started
    except urllib.error.HTTPError as error:
        error.read()
        return error.code, dict(error.headers), time.perf_counter() - started


def p99(seconds: list[float]) -> float:
    return statistics.quantiles(seconds, n=100)[98] * 1000 if len(seconds) > 1 else seconds[0]


def test_three_hundred_streams_on_two_workers_leave_every_other_request_answered(tmp_path):
    env = {
        "CTI_API_KEYS": API_KEY,
        "CTI_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "CTI_DATABASE": str(tmp_path / "cti.sqlite3"),
        "CTI_CALL_RATE": "1000/minute",
    }
    with gunicorn(env, workers=2, threads=32, cwd=tmp_path) as base:
        streams = [
            RawStream(base, f"/api/v1/agents/{7000 + i}/events?api_key={API_KEY}")
            for i in range(300)
        ]
        served = [s for s in streams if s.status == 200]
        busy = [s for s in streams if s.status == 503]

        lookups, calls, hooks = [], [], []
        for _ in range(40):
            status, _, seconds = send(base, "/api/v1/contacts/lookup?phone=0721234567")
            assert status == 200
            lookups.append(seconds)
        for i in range(10):
            status, _, seconds = send(
                base, "/api/v1/calls", body={"to": "0721234567", "agent": str(6100 + i)}
            )
            assert status == 201
            calls.append(seconds)
        for i in range(20):
            event = {
                "event": "call:ring",
                "id": f"r{i}",
                "cid_num": "0721234567",
                "dst_num": "6000",
            }
            status, _, seconds = send(
                base,
                "/api/v1/webhooks/pbx",
                body=event,
                headers={"X-Webhook-Token": WEBHOOK_SECRET},
            )
            assert status == 202
            hooks.append(seconds)
        status, _, _ = send(base, "/healthz")
        assert status == 200
        refusal = json.loads(busy[0].body())
        for stream in streams:
            stream.close()

    print(
        f"\n300 streams: {len(served)} served, {len(busy)} busy; p99 lookup {p99(lookups):.1f} ms, "
        f"click-to-call {p99(calls):.1f} ms, webhook {p99(hooks):.1f} ms"
    )
    # Each worker holds at most CTI_STREAMS_PER_WORKER (16) of its 32 threads with streams.
    assert 16 <= len(served) <= 32
    assert len(served) + len(busy) == 300
    assert all(s.headers["retry-after"] == "5" for s in busy)
    assert all(s.headers["content-type"] == "application/problem+json" for s in busy)
    assert refusal["code"] == "busy"
    assert refusal["status"] == 503
    assert refusal["retry"] == 5000


@pytest.mark.parametrize("conf", ["command line", "gunicorn.conf.py"])
def test_streams_leave_half_of_few_threads_to_every_other_request(tmp_path, conf):
    """``--threads 4`` with the default CTI_STREAMS_PER_WORKER (16): four streams once took every
    thread of the worker and nothing else was answered. Each worker now holds at most half its
    threads with streams, whether gunicorn's command line or ``gunicorn.conf.py`` (here with
    ``GUNICORN_THREADS`` 64 overridden by ``--threads 4``) says how many it has."""
    env = {
        "CTI_API_KEYS": API_KEY,
        "CTI_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "CTI_DATABASE": str(tmp_path / "cti.sqlite3"),
    }
    extra = ()
    if conf == "gunicorn.conf.py":
        extra = ("--config", str(ROOT / "gunicorn.conf.py"))
        env["GUNICORN_CPU_AFFINITY"] = "off"
    with gunicorn(env, workers=1, threads=4, cwd=tmp_path, extra_args=extra) as base:
        streams = [
            RawStream(base, f"/api/v1/agents/{7000 + i}/events?api_key={API_KEY}", timeout=5)
            for i in range(4)
        ]
        statuses = [s.status for s in streams]
        answers = [send(base, "/api/v1/contacts/lookup?phone=0721234567")[0] for _ in range(5)]
        health = send(base, "/healthz")[0]
        for stream in streams:
            stream.close()

    assert statuses == [200, 200, 503, 503]
    assert answers == [200] * 5
    assert health == 200


def test_a_worker_without_threads_answers_a_stream_and_ends_it(tmp_path):
    """gunicorn's default sync worker: the stream sends what is there and ends; the browser comes
    back after ``retry`` with the ``id`` it was given, and gets the ring it missed meanwhile."""
    env = {
        "CTI_API_KEYS": API_KEY,
        "CTI_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "CTI_DATABASE": str(tmp_path / "cti.sqlite3"),
    }
    with gunicorn(env, workers=1, threads=1, cwd=tmp_path, extra_args=("-k", "sync")) as base:
        path = f"/api/v1/agents/6000/events?api_key={API_KEY}"
        with urllib.request.urlopen(base + path, timeout=5) as first:
            opening = first.read().decode()  # ends at once: no thread is held
        given = next(line for line in opening.splitlines() if line.startswith("id:"))[3:].strip()
        event = {
            "event": "call:ring",
            "id": "sync-ring",
            "cid_num": "0721234567",
            "dst_num": "6000",
        }
        status, _, _ = send(
            base, "/api/v1/webhooks/pbx", body=event, headers={"X-Webhook-Token": WEBHOOK_SECRET}
        )
        assert status == 202
        request = urllib.request.Request(base + path, headers={"Last-Event-ID": given})
        with urllib.request.urlopen(request, timeout=5) as second:
            text = second.read().decode()

    assert "retry: 2000" in opening
    assert "event: screen-pop" in text
    assert '"call_id":"sync-ring"' in text


def test_click_to_call_that_waited_past_the_upstream_timeout_is_refused_and_never_dialed(tmp_path):
    """Both threads of the one worker are held by lookups of a slow CRM; a click-to-call that the
    proxy took meanwhile (``X-Request-Start``) waits ~2 s for a thread, past the 1 s budget."""

    def upstream(seen):
        if seen.path == "/calls/record":
            return Answer(200, {"status": False}, delay=2.0)
        return Answer(200, {"Success": True, "uuid": "placed"})

    with FakeServer(upstream) as fake:
        env = {
            "CTI_API_KEYS": API_KEY,
            "CTI_DATABASE": str(tmp_path / "cti.sqlite3"),
            "CTI_DIALER": "cc_agent",
            "CTI_CC_AGENT_URL": fake.url,
            "CTI_CC_AGENT_API_KEY": CC_AGENT_KEY,
            "CTI_CRM": "switchtransact",
            "CTI_CRM_URL": fake.url,
            "CTI_CRM_API_KEY": CRM_KEY,
            "CTI_UPSTREAM_TIMEOUT": "1",
            "CTI_LOOKUP_TIMEOUT": "3",
        }
        with gunicorn(env, workers=1, threads=2, cwd=tmp_path) as base:
            holders = [
                threading.Thread(
                    target=send, args=(base, f"/api/v1/contacts/lookup?phone=082555010{i}")
                )
                for i in range(2)
            ]
            for holder in holders:
                holder.start()
            while fake.count("/calls/record") < 2:
                time.sleep(0.01)
            stamp = {"X-Request-Start": f"t={time.time():.3f}"}
            status, headers, waited = send(
                base, "/api/v1/calls", body={"to": "0721234567", "agent": "6000"}, headers=stamp
            )
            for holder in holders:
                holder.join()
            refused_dials = fake.count("/api/cc_agent/originate")
            # The same click once a thread is free at once: placed (the refusal remembered nothing).
            fresh = {"X-Request-Start": f"t={time.time():.3f}"}
            placed, _, _ = send(
                base, "/api/v1/calls", body={"to": "0721234567", "agent": "6000"}, headers=fresh
            )

    assert waited > 1.0
    assert status == 503
    assert headers["Retry-After"] == "1"
    assert refused_dials == 0
    assert placed == 201
    assert fake.count("/api/cc_agent/originate") == 1


def test_one_token_holds_eight_streams_across_the_processes_of_a_host(tmp_path):
    """``CTI_STREAMS_PER_CREDENTIAL`` (8) holds for the host, as ``make run`` runs it: gunicorn's
    workers and the stream server share one directory, and the token's streams are counted
    together wherever they are served; the ninth is refused on either server."""
    env = host_env(tmp_path, CTI_TOKEN_SECRET=TOKEN_SECRET)
    issue = Credentials((API_KEY,), token_secret=TOKEN_SECRET).issue
    path = f"/api/v1/agents/6000/events?api_key={issue('6000')[0]}"
    with (
        gunicorn(env, workers=2, threads=16, cwd=tmp_path) as web,
        stream_server(env, tmp_path) as streams,
    ):
        held = [RawStream(base, path) for base in (web, streams.base) for _ in range(4)]
        assert [s.status for s in held] == [200] * 8
        refused = [RawStream(base, path) for base in (web, web, streams.base)]
        assert [s.status for s in refused] == [503] * 3
        problems = [json.loads(s.body()) for s in refused]
        assert {p["code"] for p in problems} == {"busy"}
        assert all("CTI_STREAMS_PER_CREDENTIAL" in p["detail"] for p in problems)
        assert all(int(s.headers["retry-after"]) >= 1 for s in refused)
        other = RawStream(web, f"/api/v1/agents/6001/events?api_key={issue('6001')[0]}")
        assert other.status == 200

        held.pop(0).close()  # one of gunicorn's
        # A worker notices a gone client when it next writes: at the heartbeat, within 5 s.
        again = wait_until(
            lambda: opened(streams.base, path),
            10,
            "the closed stream's slot given back",
            interval=0,
        )
        for stream in (*held, *refused, other, again):
            stream.close()
