"""The board with real processes: the same on every gunicorn worker and on two hosts sharing
PostgreSQL and Redis, and its stream (``event: board``) on gunicorn alone and on the stream server."""

from __future__ import annotations

import contextlib
import json
import time

import pytest
import requests

from .conftest import API_KEY, LOOKUP_KEY, TOKEN_SECRET, WEBHOOK_SECRET
from .gunicorn_runner import gunicorn, stream_server
from .journal_fakes import AGENTS_CSV
from .pg_server import _bin_dir as postgres_bin_dir
from .redis_server import redis_available
from .sse import RawStream, SseStream
from .test_credentials_table import token

pytestmark = pytest.mark.slow

HOOK = {"X-Webhook-Token": WEBHOOK_SECRET}
KEY = {"X-API-Key": API_KEY}
SUPERVISOR = {"Authorization": f"Bearer {token('Thandi', scope='supervisor')}"}
ZEROS = {"calls": 0, "answered": 0, "missed": 0, "talk_seconds": 0}
BOOT = 60  # seconds a request may wait for a worker still starting on a busy machine
AYANDA = {"extension": "6001", "name": "Ayanda Dlamini", "call": None, "today": ZEROS}


def settings(tmp_path, **more) -> dict:
    agents = tmp_path / "agents.csv"
    agents.write_text(AGENTS_CSV)
    return {
        "CTI_API_KEYS": API_KEY,
        "CTI_LOOKUP_KEYS": LOOKUP_KEY,
        "CTI_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "CTI_TOKEN_SECRET": TOKEN_SECRET,
        "CTI_DATABASE": str(tmp_path / "cti.sqlite3"),
        "CTI_AGENTS_FILE": str(agents),
        "CTI_JOURNAL_SETTLE_SECONDS": "0",
        **more,
    }


def push(base: str, event: dict) -> None:
    answer = requests.post(f"{base}/api/v1/webhooks/pbx", json=event, headers=HOOK, timeout=BOOT)
    assert answer.status_code == 202, answer.text


def ring_6001(ts: int, event="call:ring", **more) -> dict:
    return {
        "event": event,
        "id": "leg-1",
        "call_id": "call-1",
        "type": "inbound",
        "cid_num": "0721234567",
        "dst_user_id": 101,
        "ts": ts,
        **more,
    }


def board(base: str, headers=KEY) -> list[dict]:
    answer = requests.get(f"{base}/api/v1/board", headers=headers, timeout=BOOT)
    assert answer.status_code == 200, answer.text
    return answer.json()["agents"]


def iso(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def next_board_event(stream: SseStream, timeout: float = 5) -> dict:
    event = stream.next_event(timeout=timeout)
    assert event is not None, "no event: board within the deadline"
    assert event["event"] == "board"
    return event["data"]


@contextlib.contextmanager
def streams_on_two_workers(base: str, headers: dict):
    """Nine board streams: a worker takes at most 8 connections (``--worker-connections 8``), so
    they span both workers; the other requests land on the worker that is not full (which may
    still be starting on a busy machine: a long deadline)."""
    streams = []
    try:
        for _ in range(9):
            streams.append(SseStream(base, "/api/v1/board/events", headers, timeout=BOOT))
        assert [stream.status for stream in streams] == [200] * 9
        assert len({stream.worker() for stream in streams}) == 2
        yield streams
    finally:
        for stream in streams:
            stream.close()


def test_the_board_and_its_stream_are_the_same_on_every_gunicorn_worker(tmp_path, shared_env):
    env = settings(tmp_path, CTI_STREAMS_PER_CREDENTIAL="9", **shared_env)  # nine of one token
    limits = ("--graceful-timeout", "1", "--worker-connections", "8")
    with (
        gunicorn(env, workers=2, threads=18, cwd=tmp_path, extra_args=limits) as base,
        streams_on_two_workers(base, SUPERVISOR) as streams,
    ):
        push(base, {"event": "agent:status", "user_id": 101, "pause_id": 5})
        paused = [next_board_event(stream) for stream in streams]
        start = int(time.time()) - 3
        push(base, ring_6001(start))
        ringing = [next_board_event(stream) for stream in streams]
        boards = [board(base) for _ in range(12)]

    assert paused == [{**AYANDA, "status": "paused"}] * 9
    call = {
        "call_id": "call-1",
        "direction": "inbound",
        "number": "+27721234567",
        "state": "ringing",
        "since": iso(start),
    }
    # the ring's journal entry names 6001 already: one call today, missed while it rings
    today = {"calls": 1, "answered": 0, "missed": 1, "talk_seconds": 0}
    assert ringing == [{**AYANDA, "status": "paused", "call": call, "today": today}] * 9
    assert all(b == boards[0] for b in boards)
    assert boards[0][0] == ringing[0]


def test_the_stream_server_sends_board_changes_to_supervisors_only(tmp_path, shared_env):
    env = settings(tmp_path, CTI_STREAMS_PER_CREDENTIAL="2", **shared_env)
    with (
        gunicorn(
            env, workers=2, threads=4, cwd=tmp_path, extra_args=("--graceful-timeout", "1")
        ) as base,
        stream_server(env, tmp_path) as streams,
    ):
        refused = {
            kind: RawStream(streams.base, "/api/v1/board/events", headers)
            for kind, headers in {
                "agent": {"Authorization": f"Bearer {token('6001')}"},
                "lookup": {"X-API-Key": LOOKUP_KEY},
                "none": {},
            }.items()
        }
        supervisor = SseStream(streams.base, "/api/v1/board/events", SUPERVISOR)
        # one supervisor holds CTI_STREAMS_PER_CREDENTIAL (2 here) board streams on a host
        second = RawStream(streams.base, "/api/v1/board/events", SUPERVISOR)
        third = RawStream(streams.base, "/api/v1/board/events", SUPERVISOR)
        full = SseStream(streams.base, f"/api/v1/board/events?api_key={API_KEY}")
        try:
            bound = (second.status, third.status, json.loads(third.body())["code"])
            assert "stream-server" in supervisor.comments.get(timeout=5)
            full.comments.get(timeout=5)
            push(base, {"event": "agent:checkin", "user_id": 102})
            first = full.next_event(timeout=5)
            checked_in = [first["data"], next_board_event(supervisor)]
            push(base, {"event": "agent:status", "user_id": 102, "pause_id": 0})  # no change
            push(base, {"event": "agent:checkout", "user_id": 102})
            checked_out = next_board_event(supervisor)
            resumed = SseStream(  # the key's second stream: within its bound
                streams.base,
                f"/api/v1/board/events?api_key={API_KEY}",
                {"Last-Event-ID": first["id"]},
            )
            replayed = next_board_event(resumed)  # the checkout: the status unchanged sent none
            resumed.close()
        finally:
            for stream in (supervisor, second, third, full, *refused.values()):
                stream.close()

    pieter = {"extension": "6002", "name": "Pieter Botha", "call": None, "today": ZEROS}
    assert bound == (200, 503, "busy")
    assert checked_in == [{**pieter, "status": "available"}] * 2
    assert checked_out == {**pieter, "status": "offline"}
    assert replayed == {**pieter, "status": "offline"}
    assert {kind: s.status for kind, s in refused.items()} == {
        "agent": 403,
        "lookup": 403,
        "none": 401,
    }


@pytest.mark.skipif(not redis_available(), reason="redis-server is not installed")
@pytest.mark.skipif(postgres_bin_dir() is None, reason="PostgreSQL is not installed")
def test_two_hosts_on_postgresql_and_redis_show_one_board(tmp_path, postgres_url, redis_url):
    env = settings(tmp_path, CTI_DATABASE=postgres_url, CTI_REDIS_URL=redis_url)
    limits = ("--graceful-timeout", "1")
    with (
        gunicorn(env, workers=2, threads=4, cwd=tmp_path, extra_args=limits) as first,
        gunicorn(env, workers=2, threads=4, cwd=tmp_path, extra_args=limits) as second,
    ):
        start = int(time.time()) - 40
        push(first, ring_6001(start))
        push(second, ring_6001(start + 5, event="call:answer"))
        status = requests.put(
            f"{second}/api/v1/agents/6002/status",
            json={"status": "paused"},
            headers=KEY,
            timeout=10,
        )
        talking = (board(first), board(second, SUPERVISOR))
        push(second, ring_6001(start + 35, event="call:end", durationms=35000, billms=30000))
        ended = (board(second), board(first, SUPERVISOR))

    assert status.status_code == 200
    assert talking[0] == talking[1]
    assert talking[0][0]["call"] == {
        "call_id": "call-1",
        "direction": "inbound",
        "number": "+27721234567",
        "state": "talking",
        "since": iso(start + 5),
    }
    assert talking[0][1]["status"] == "paused"
    assert ended[0] == ended[1]
    assert ended[0][0] == {
        **AYANDA,
        "status": "unknown",
        "today": {"calls": 1, "answered": 1, "missed": 0, "talk_seconds": 30},
    }
