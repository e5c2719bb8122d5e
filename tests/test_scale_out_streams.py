"""Two hosts on one PostgreSQL and one Redis: streams on host B's stream server, rings on host A."""

from __future__ import annotations

import statistics
import time

import pytest

from .conftest import API_KEY, WEBHOOK_SECRET
from .gunicorn_runner import gunicorn, stream_server
from .sse import RawStream
from .test_scale_out import module_redis, shared_database  # noqa: F401 - fixtures
from .test_stream_server import ring

pytestmark = pytest.mark.slow

AGENTS = 50


def test_every_ring_on_host_a_pops_on_host_b_stream_server(request, tmp_path, module_redis):  # noqa: F811
    with shared_database(request, tmp_path) as database:
        env = {
            "CTI_API_KEYS": API_KEY,
            "CTI_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "CTI_DATABASE": database,
            "CTI_REDIS_URL": module_redis.url,
        }
        limits = ("--graceful-timeout", "1")
        with (
            gunicorn(env, workers=2, threads=16, cwd=tmp_path, extra_args=limits) as host_a,
            stream_server(env, tmp_path) as host_b,
        ):
            streams = {
                f"8{i:03d}": RawStream(
                    host_b.base, f"/api/v1/agents/8{i:03d}/events?api_key={API_KEY}"
                )
                for i in range(AGENTS)
            }
            assert {s.status for s in streams.values()} == {200}
            # The first pop warms host B's connections to PostgreSQL and its caller cache.
            warm = RawStream(host_b.base, f"/api/v1/agents/7999/events?api_key={API_KEY}")
            ring(host_a, "warm-up", agent="7999")
            assert warm.next_event(timeout=10)["data"]["call_id"] == "warm-up"
            warm.close()
            latencies, calls = [], {}
            for agent, stream in streams.items():
                started = time.monotonic()
                ring(host_a, f"two-hosts-{agent}", agent=agent)
                event = stream.next_event(timeout=5)
                latencies.append(time.monotonic() - started)
                calls[agent] = event["data"]["call_id"] if event else None
            for stream in streams.values():
                stream.close()

    print(
        f"\n{AGENTS} rings on host A, pops on host B: p50 "
        f"{statistics.median(latencies) * 1000:.0f} ms, "
        f"p99 {statistics.quantiles(latencies, n=100)[98] * 1000:.0f} ms"
    )
    assert calls == {agent: f"two-hosts-{agent}" for agent in streams}
