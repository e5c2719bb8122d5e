"""The stream server: screen pops without a thread per stream, from rings any gunicorn worker took."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from devtools.waiting import wait_until

from .conftest import API_KEY
from .gunicorn_runner import host_env, stream_server, streaming_server
from .pbx_webhooks import ring
from .sse import RawStream, SseStream

pytestmark = pytest.mark.slow

PAGE_ORIGIN = "http://agents.example.test"


def events_path(agent="6000", key=API_KEY):
    return f"/api/v1/agents/{agent}/events?api_key={key}"


@pytest.fixture
def servers(tmp_path, shared_env):
    """gunicorn (two workers) and the stream server on one store and, as ``make run`` runs them,
    one metrics directory of their own."""
    env = host_env(tmp_path, CTI_STREAM_ORIGINS=PAGE_ORIGIN, **shared_env)
    with streaming_server(tmp_path, env) as web, stream_server(env, tmp_path) as streams:
        yield web, streams


def test_ring_taken_by_gunicorn_pops_on_the_stream_server_within_a_second(servers):
    web, streams = servers
    mine = SseStream(streams.base, events_path("6000"))
    other = SseStream(streams.base, events_path("6001"))
    assert mine.status == 200
    assert "stream-server" in mine.comments.get(timeout=5)

    started = time.monotonic()
    ring(web, "via-stream-server")
    event = mine.next_event(timeout=2)
    elapsed = time.monotonic() - started

    assert event["event"] == "screen-pop"
    assert event["data"]["call_id"] == "via-stream-server"
    assert event["data"]["contact"]["name"] == "James May"
    assert event["data"]["phone"] == "+27721234567"
    assert elapsed < 1.0
    assert other.next_event(timeout=0.5) is None  # another agent's stream hears nothing
    mine.close()
    other.close()
    for base in (streams.base, web):  # either server's /metrics sums both
        with urllib.request.urlopen(base + "/metrics", timeout=5) as answer:
            text = answer.read().decode()
        assert 'cti_screen_pop_seconds_count{server="stream-server"} 1.0' in text


def test_stream_server_resumes_with_last_event_id(servers):
    web, streams = servers
    first = SseStream(streams.base, events_path())
    first.comments.get(timeout=5)  # the opening block: the stream has fixed where it starts
    ring(web, "missed-0")
    seen = first.next_event(timeout=5)
    first.close()

    ring(web, "missed-1")
    ring(web, "missed-2", number="0829876543")
    resumed = SseStream(streams.base, events_path(), headers={"Last-Event-ID": seen["id"]})
    events = [resumed.next_event(timeout=5), resumed.next_event(timeout=5)]
    resumed.close()

    assert [e["data"]["call_id"] for e in events] == ["missed-1", "missed-2"]
    assert events[1]["data"]["found"] is False


def test_stream_server_resumes_a_last_event_id_beyond_the_log_from_its_start(servers):
    web, streams = servers  # the log numbered anew (Redis restarted): the old id is above it
    ring(web, "after-the-restart")
    resumed = SseStream(streams.base, events_path(), headers={"Last-Event-ID": "5000"})
    event = resumed.next_event(timeout=5)
    resumed.close()

    assert event is not None and event["data"]["call_id"] == "after-the-restart"


def test_stream_server_refuses_a_wrong_key_and_an_event_id_beyond_64_bits(servers):
    _, streams = servers
    wrong = RawStream(streams.base, events_path(key="not-the-key"))
    huge_query = RawStream(streams.base, events_path() + "&last_event_id=" + "9" * 30)
    huge_header = RawStream(streams.base, events_path(), headers={"Last-Event-ID": str(2**64)})

    assert wrong.status == 401
    assert json.loads(wrong.body())["code"] == "unauthorized"
    for answer in (huge_query, huge_header):
        assert answer.status == 422
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert json.loads(answer.body())["errors"]["last_event_id"]


def test_stream_server_lets_only_the_listed_page_origins_read_the_stream(servers):
    _, streams = servers
    listed = RawStream(streams.base, events_path(), headers={"Origin": PAGE_ORIGIN})
    other = RawStream(streams.base, events_path(), headers={"Origin": "http://evil.test"})

    assert listed.status == other.status == 200
    assert listed.headers["access-control-allow-origin"] == PAGE_ORIGIN
    assert "access-control-allow-origin" not in other.headers
    listed.close()
    other.close()


def test_stream_server_holds_three_hundred_streams_on_a_handful_of_threads(servers):
    """Every stream of 300 distinct agents is served at once; each ring reaches its own agent."""
    web, streams = servers
    opened = [RawStream(streams.base, events_path(f"7{i:03d}")) for i in range(300)]
    assert [s.status for s in opened] == [200] * 300
    wait_until(
        lambda: json.load(urllib.request.urlopen(streams.base + "/healthz"))["streams"] >= 300,
        5,
        "the stream server to count 300 open streams",
    )
    threads = streams.threads()

    for i in (0, 150, 299):
        ring(web, f"crowd-{i}", agent=f"7{i:03d}")
    events = {i: opened[i].next_event(timeout=2) for i in (0, 150, 299)}
    for stream in opened:
        stream.close()

    assert threads <= 12  # the loop, the store-read pool, the lookup warmers: not one per stream
    assert {i: e["data"]["call_id"] for i, e in events.items()} == {
        0: "crowd-0",
        150: "crowd-150",
        299: "crowd-299",
    }
