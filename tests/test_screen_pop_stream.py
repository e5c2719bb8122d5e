"""Screen pops: a ring on one worker reaches the agent's stream on another; Last-Event-ID resumes."""

from __future__ import annotations

import time
import urllib.request

import pytest

from .conftest import API_KEY, WEBHOOK_SECRET
from .gunicorn_runner import gunicorn, streaming_server
from .pbx_webhooks import ring
from .sse import SseStream

pytestmark = pytest.mark.slow


def open_stream(base, agent="6000", headers=None):
    return SseStream(base, f"/api/v1/agents/{agent}/events?api_key={API_KEY}", headers=headers)


@pytest.fixture
def server(tmp_path, shared_env):
    with streaming_server(tmp_path, shared_env) as base:
        yield base


def test_ring_reaches_streams_on_every_worker_within_a_second(tmp_path, shared_env):
    """Each worker takes at most 8 connections, so nine streams span both workers, and the
    webhook lands on the worker that is not full: most streams hear it from the other one."""
    env = {
        "CTI_API_KEYS": API_KEY,
        "CTI_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "CTI_DATABASE": str(tmp_path / "cti.sqlite3"),
        "CTI_STREAMS_PER_CREDENTIAL": "9",  # nine of agent 6000's streams on one key
        **shared_env,
    }
    limits = ("--graceful-timeout", "1", "--worker-connections", "8")
    with gunicorn(env, workers=2, threads=18, cwd=tmp_path, extra_args=limits) as base:
        streams = [open_stream(base) for _ in range(9)]
        workers = {stream.worker() for stream in streams}
        assert len(workers) == 2

        started = time.monotonic()
        ring(base, "cross-worker-1")
        events = [stream.next_event(timeout=2) for stream in streams]
        elapsed = time.monotonic() - started
        for stream in streams:
            stream.close()

    assert elapsed < 1.0
    for event in events:
        assert event["event"] == "screen-pop"
        assert event["data"]["call_id"] == "cross-worker-1"
        assert event["data"]["found"] is True
        assert event["data"]["contact"]["name"] == "James May"
        assert event["data"]["phone"] == "+27721234567"


def test_stream_resumed_with_last_event_id_gets_what_it_missed(server):
    first = open_stream(server)
    ring(server, "missed-0")
    seen = first.next_event(timeout=2)
    first.close()

    ring(server, "missed-1")
    ring(server, "missed-2", number="0829876543")
    resumed = open_stream(server, headers={"Last-Event-ID": seen["id"]})
    events = [resumed.next_event(timeout=2), resumed.next_event(timeout=2)]
    resumed.close()

    assert [e["data"]["call_id"] for e in events] == ["missed-1", "missed-2"]
    assert int(events[0]["id"]) > int(seen["id"])
    assert events[1]["data"]["found"] is False  # an unknown caller still pops


def test_stream_shows_only_the_agents_own_rings(server):
    mine = open_stream(server, agent="6000")
    other = open_stream(server, agent="6001")
    ring(server, "for-6001", agent="6001")

    assert mine.next_event(timeout=0.8) is None
    assert other.next_event(timeout=2)["data"]["call_id"] == "for-6001"
    mine.close()
    other.close()


def test_ring_to_pop_on_a_worker_stream_is_measured(tmp_path):
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(metrics)}
    with streaming_server(tmp_path, env) as base:
        stream = open_stream(base)
        ring(base, "measured")
        assert stream.next_event(timeout=2)["data"]["call_id"] == "measured"
        stream.close()
        with urllib.request.urlopen(base + "/metrics", timeout=5) as answer:
            text = answer.read().decode()

    assert 'cti_screen_pop_seconds_count{server="gunicorn"} 1.0' in text
    seconds = float(text.split('cti_screen_pop_seconds_sum{server="gunicorn"} ')[1].split()[0])
    assert 0 < seconds < 1.0


def test_a_last_event_id_beyond_the_log_resumes_from_its_start(server):
    """The event log numbered its events anew (Redis restarted without its data): a browser that
    comes back with the old, higher id still gets the pops rung since, not nothing until the
    numbering catches up."""
    ring(server, "after-the-restart")
    resumed = open_stream(server, headers={"Last-Event-ID": "5000"})
    event = resumed.next_event(timeout=2)
    resumed.close()

    assert event is not None and event["data"]["call_id"] == "after-the-restart"
