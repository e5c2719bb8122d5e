"""The agent's status with real processes: a PBX push taken by any gunicorn worker reaches the
agent's own stream (``event: status``) on every worker and on the stream server, and ``GET
/api/v1/agents/{extension}/status`` answers the same on every worker."""

from __future__ import annotations

import time

import pytest
import requests

from .gunicorn_runner import gunicorn, stream_server
from .sse import SseStream
from .test_board_processes import AYANDA, BOOT, push, settings
from .test_credentials_table import token

pytestmark = pytest.mark.slow

AGENT_6001 = {"Authorization": f"Bearer {token('6001')}"}
AGENT_6002 = {"Authorization": f"Bearer {token('6002')}"}


def next_status(stream: SseStream, timeout: float = 5) -> dict:
    event = stream.next_event(timeout=timeout)
    assert event is not None, "no event: status within the deadline"
    assert event["event"] == "status"
    return event["data"]


def status(base: str, headers=AGENT_6001) -> dict:
    answer = requests.get(f"{base}/api/v1/agents/6001/status", headers=headers, timeout=BOOT)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_pbx_push_reaches_the_agents_streams_on_every_gunicorn_worker(tmp_path, shared_env):
    env = settings(tmp_path, CTI_STREAMS_PER_CREDENTIAL="9", **shared_env)
    limits = ("--graceful-timeout", "1", "--worker-connections", "8")
    streams = []
    with gunicorn(env, workers=2, threads=18, cwd=tmp_path, extra_args=limits) as base:
        try:
            # a worker takes at most 8 connections: nine streams span both workers
            for _ in range(9):
                streams.append(SseStream(base, "/api/v1/agents/6001/events", AGENT_6001, BOOT))
            assert [stream.status for stream in streams] == [200] * 9
            assert len({stream.worker() for stream in streams}) == 2
            push(base, {"event": "agent:status", "user_id": 101, "pause_id": 5})
            paused = [next_status(stream) for stream in streams]
            push(base, {"event": "agent:status", "user_id": 101, "pause_id": 0})
            available = [next_status(stream) for stream in streams]
            reads = [status(base) for _ in range(12)]
        finally:
            for stream in streams:
                stream.close()

    assert paused == [{**AYANDA, "status": "paused"}] * 9
    assert available == [{**AYANDA, "status": "available"}] * 9
    assert reads == [{**AYANDA, "status": "available"}] * 12


def test_the_stream_server_sends_the_agent_its_own_status_changes(tmp_path, shared_env):
    env = settings(tmp_path, **shared_env)
    with (
        gunicorn(
            env, workers=2, threads=4, cwd=tmp_path, extra_args=("--graceful-timeout", "1")
        ) as base,
        stream_server(env, tmp_path) as streams,
    ):
        mine = SseStream(streams.base, "/api/v1/agents/6001/events", AGENT_6001)
        theirs = SseStream(streams.base, "/api/v1/agents/6002/events", AGENT_6002)
        try:
            assert "stream-server" in mine.comments.get(timeout=5)
            assert "stream-server" in theirs.comments.get(timeout=5)
            pushed = time.monotonic()
            push(base, {"event": "agent:checkin", "user_id": 101})
            checked_in = next_status(mine)
            within = time.monotonic() - pushed
            put = requests.put(
                f"{base}/api/v1/agents/6001/status",
                json={"status": "offline"},
                headers=AGENT_6001,
                timeout=BOOT,
            )
            set_offline = next_status(mine)
            push(base, {"event": "agent:checkout", "user_id": 102})
            other = next_status(theirs)  # 6002's first message: none of 6001's reached it
        finally:
            mine.close()
            theirs.close()

    assert checked_in == {**AYANDA, "status": "available"}
    assert within < 2
    assert put.status_code == 200
    assert set_offline == {**AYANDA, "status": "offline"}
    assert (other["extension"], other["status"]) == ("6002", "offline")
