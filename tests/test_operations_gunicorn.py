"""Operations under real gunicorn: metrics summed over workers, JSON logs without secrets, and a
graceful SIGTERM. Each test starts its own server on a free port, in its own temp dir."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from devtools.gunicorn import Gunicorn
from devtools.processes import ROOT, clean_env, free_port
from devtools.waiting import wait_until

from .conftest import API_KEY, CC_AGENT_KEY, CRM_KEY, SECRETS, WEBHOOK_SECRET
from .fakeserver import Answer, FakeServer

pytestmark = pytest.mark.slow

CONFIG = str(ROOT / "gunicorn.conf.py")


@contextlib.contextmanager
def serve(tmp_path: Path, env: dict, *args: str):
    """``gunicorn app:app *args`` on a free port, from ``tmp_path`` (no config file unless given).
    The server is SIGKILLed at the end unless the test stopped it (``terminate()``)."""
    port = free_port()
    full_env = {k: v for k, v in clean_env().items() if not k.startswith("PROMETHEUS")}
    full_env.update(
        TMPDIR=str(tmp_path),  # the metrics directory lands here
        CTI_API_KEYS=API_KEY,
        CTI_WEBHOOK_SECRET=WEBHOOK_SECRET,
        CTI_DATABASE=str(tmp_path / "cti.sqlite3"),
        CTI_CALL_RATE="1000/minute",
        **env,
    )
    server = Gunicorn(
        full_env,
        workers=None,
        threads=None,
        log=tmp_path / f"gunicorn-{port}.log",
        cwd=tmp_path,
        extra_args=args,
        port=port,
    )
    try:
        server.wait_ready(timeout=20, statuses=(200,))
        yield server
    finally:
        if server.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.process.pid, signal.SIGKILL)
        server.stop(timeout=10)


def get(url, *, method="GET", body=None, headers=None, timeout=10):
    """(status, headers, text); (0, {}, error) when nothing answered."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, dict(answer.headers), answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()
    except OSError as error:
        return 0, {}, repr(error)


def place_call(base: str, n: int):
    return get(
        base + "/api/v1/calls",
        method="POST",
        body={"to": f"072 123 45{n:02d}", "agent": f"60{n:02d}"},
        headers={"X-API-Key": API_KEY},
    )


def sample(text: str, name: str, **labels) -> float | None:
    """The value of one sample of the Prometheus text (labels in any order)."""
    for line in text.splitlines():
        match = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        if found == {k: str(v) for k, v in labels.items()}:
            return float(match.group(3))
    return None


def originate_answer(delay: float):
    def answer(seen):
        return Answer(
            200, {"success": True, "uuid": f"uuid-{seen.query.get('extension')}"}, delay=delay
        )

    return answer


def worker_pids(tmp_path: Path, master: int) -> set[int]:
    """The pids that wrote counters into this server's metrics directory."""
    files = tmp_path.glob(f"cti-metrics-*/{master}-*/counter_*.db")
    return {int(f.stem.split("_")[1]) for f in files} - {master}


@pytest.mark.parametrize("preload", [(), ("--preload",)], ids=["app-per-worker", "preloaded"])
def test_metrics_sum_the_counts_of_two_workers_and_keep_a_dead_workers_counts(tmp_path, preload):
    """Plain ``gunicorn app:app`` (no config file, sync workers), with or without ``--preload``
    (the master builds the app, the workers fork from it): the scrape is the same sum whichever
    worker answers, and still after a worker dies and is replaced."""
    with FakeServer(originate_answer(delay=0.3)) as pbx:
        env = {
            "CTI_DIALER": "cc_agent",
            "CTI_CC_AGENT_URL": pbx.url,
            "CTI_CC_AGENT_API_KEY": CC_AGENT_KEY,
        }
        with serve(tmp_path, env, "--workers", "2", *preload) as server:
            # Slow upstream + one-request-at-a-time sync workers + 8 at once: both take requests.
            with ThreadPoolExecutor(8) as pool:
                statuses = [a[0] for a in pool.map(lambda n: place_call(server.base, n), range(12))]
            assert statuses == [201] * 12

            def scrape():
                status, headers, text = get(server.base + "/metrics")
                assert status == 200 and headers["Content-Type"].startswith("text/plain")
                return text

            for _ in range(6):
                text = scrape()
                assert (
                    sample(text, "cti_calls_total", provider="cc_agent", outcome="initiated") == 12
                )
                assert (
                    sample(
                        text,
                        "cti_upstream_request_seconds_count",
                        upstream="cc_agent",
                        outcome="200",
                    )
                    == 12
                )
                assert (
                    sample(
                        text,
                        "cti_http_request_seconds_count",
                        method="POST",
                        route="/api/v1/calls",
                        status="201",
                    )
                    == 12
                )
                for result in ("hit", "miss", "stale", "error"):
                    assert sample(text, "cti_lookups_total", result=result) is not None
                for status in ("pending", "delivered", "failed"):
                    assert sample(text, "cti_journal_entries", status=status) is not None

            victim = min(worker_pids(tmp_path, server.process.pid))
            os.kill(victim, signal.SIGKILL)

            def replaced() -> bool:
                if len(worker_pids(tmp_path, server.process.pid) - {victim}) >= 2:
                    return True
                scrape()
                return False

            wait_until(replaced, 15, "gunicorn did not replace the killed worker", interval=0.1)
            assert (
                sample(scrape(), "cti_calls_total", provider="cc_agent", outcome="initiated") == 12
            )
            assert server.terminate() == 0


def test_metrics_directory_is_fresh_for_each_server_start(tmp_path):
    with serve(tmp_path, {}, "--workers", "2") as server:
        assert place_call(server.base, 1)[0] == 201
        assert (
            sample(
                get(server.base + "/metrics")[2],
                "cti_calls_total",
                provider="sandbox",
                outcome="initiated",
            )
            == 1
        )
        first = server.process.pid
        assert server.terminate() == 0
    with serve(tmp_path, {}, "--workers", "2") as server:
        text = get(server.base + "/metrics")[2]
        assert sample(text, "cti_calls_total", provider="sandbox", outcome="initiated") is None
        assert not list(tmp_path.glob(f"cti-metrics-*/{first}-*")), (
            "the dead server's directory stayed"
        )
        server.terminate()


def test_logs_are_json_lines_without_any_secret_with_keys_in_header_and_query_and_a_failing_upstream(
    tmp_path,
):
    def leaky(seen):  # a failing upstream that echoes our credentials back
        return Answer(500, {"success": False, "msg": f"bad request {seen.query} {seen.headers}"})

    with FakeServer(leaky) as upstream:
        env = {
            "CTI_DIALER": "cc_agent",
            "CTI_CC_AGENT_URL": upstream.url,
            "CTI_CC_AGENT_API_KEY": CC_AGENT_KEY,
            "CTI_CRM": "switchtransact",
            "CTI_CRM_URL": upstream.url,
            "CTI_CRM_API_KEY": CRM_KEY,
        }
        with serve(tmp_path, env, "--config", CONFIG, "--workers", "2") as server:
            header = {"X-API-Key": API_KEY}
            answers = [
                place_call(server.base, 1),
                get(f"{server.base}/click-to-call?to=0721234502&agent=6002&api_key={API_KEY}"),
                get(
                    server.base + "/api/v1/contacts/lookup?phone=0721234567",
                    headers={"Authorization": f"Bearer {API_KEY}", "X-Request-ID": "trace-42"},
                ),
                get(f"{server.base}/api/v1/contacts/lookup?phone=0721234567&api_key={API_KEY}"),
                get(f"{server.base}/api/v1/calls?api_key=wrong-{API_KEY}", method="POST", body={}),
                get(server.base + "/api/v1/webhooks/pbx", method="POST", body={}, headers=header),
            ]
            assert [a[0] for a in answers[:4]] == [502, 502, 502, 502]
            assert answers[2][1]["X-Request-ID"] == "trace-42"
            assert re.fullmatch(r"[0-9a-f]{32}", answers[0][1]["X-Request-ID"])
            for _, _, body in answers:
                assert not [s for s in SECRETS if s in body]
            assert server.terminate() == 0
    text = server.log_path.read_text()
    assert not [s for s in SECRETS if s in text]
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]  # every line is JSON
    requests = [line for line in lines if line["logger"] == "middleware.request"]
    assert len(requests) >= len(answers)
    traced = [r for r in requests if r.get("request_id") == "trace-42"]
    assert traced and traced[0]["route"] == "/api/v1/contacts/lookup" and traced[0]["status"] == 502
    assert {"method", "route", "status", "duration_ms"} <= set(requests[0])
    upstream_lines = [line for line in lines if line.get("upstream") == "cc_agent"]
    assert upstream_lines and upstream_lines[0]["operation"] == "originate"
    assert upstream_lines[0]["status"] == "500" and "duration_ms" in upstream_lines[0]


def test_sigterm_with_twenty_requests_in_flight_answers_each_of_them(tmp_path):
    with FakeServer(originate_answer(delay=1.5)) as pbx:
        env = {
            "CTI_DIALER": "cc_agent",
            "CTI_CC_AGENT_URL": pbx.url,
            "CTI_CC_AGENT_API_KEY": CC_AGENT_KEY,
        }
        with serve(tmp_path, env, "--config", CONFIG, "--workers", "2") as server:
            with ThreadPoolExecutor(20) as pool:
                calls = [pool.submit(place_call, server.base, n) for n in range(20)]
                wait_until(
                    lambda: pbx.count("/api/cc_agent/originate") >= 20,
                    10,
                    lambda: f"only {pbx.count()} in flight",
                    interval=0.02,
                )
                server.process.send_signal(signal.SIGTERM)
                answers = [call.result(timeout=20) for call in calls]
            assert [a[0] for a in answers] == [201] * 20, [a for a in answers if a[0] != 201][:2]
            assert sorted(json.loads(a[2])["call_id"] for a in answers) == sorted(
                f"uuid-60{n:02d}" for n in range(20)
            )
            assert server.process.wait(timeout=20) == 0


def children(master: int) -> set[int]:
    """The pids whose parent is ``master`` (a gunicorn master's workers)."""
    found = set()
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, ValueError):
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                found.add(int(entry.name))
    return found


def cpus_of_workers(server, count: int, pinned: bool) -> dict[int, frozenset]:
    """pid -> the CPUs each of the master's ``count`` workers may run on, once there are that
    many (and, ``pinned``, each has been held to one CPU: a worker just forked has not yet)."""
    master = server.process.pid

    def booted() -> bool:
        with contextlib.suppress(OSError):  # a worker gone meanwhile: look again
            cpus = {pid: frozenset(os.sched_getaffinity(pid)) for pid in children(master)}
            if len(cpus) == count and (not pinned or all(len(c) == 1 for c in cpus.values())):
                found.update(cpus)
                return True
        return False

    found: dict[int, frozenset] = {}
    wait_until(booted, 15, f"gunicorn did not run {count} workers", interval=0.1)
    return dict(found)


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no CPU affinity here")
def test_the_config_holds_each_worker_to_a_cpu_of_its_own_and_a_respawned_one_to_the_freed_cpu(
    tmp_path,
):
    """``GUNICORN_CPU_AFFINITY=on`` (``auto`` does the same when the workers are as many as the
    CPUs): each worker on one CPU, the two on different ones when there are two; a worker killed
    and respawned takes the CPU it left. ``off``, or ``auto`` with more workers than CPUs: the
    workers run anywhere, as without the config."""
    allowed = frozenset(os.sched_getaffinity(0))
    with serve(tmp_path, {"GUNICORN_CPU_AFFINITY": "on"}, "-c", CONFIG, "--workers", "2") as server:
        cpus = cpus_of_workers(server, 2, pinned=True)
        assert all(held <= allowed for held in cpus.values()), cpus
        assert len(set(cpus.values())) == min(2, len(allowed)), cpus
        victim = min(cpus)
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: victim not in children(server.process.pid), 15, "the worker lived")
        respawned = cpus_of_workers(server, 2, pinned=True)
        assert sorted(respawned.values(), key=sorted) == sorted(cpus.values(), key=sorted)
    many = str(len(allowed) + 1)
    for setting, workers in (("off", "2"), ("auto", many)):
        with serve(
            tmp_path, {"GUNICORN_CPU_AFFINITY": setting}, "-c", CONFIG, "--workers", workers
        ) as server:
            cpus = cpus_of_workers(server, int(workers), pinned=False)
            assert set(cpus.values()) == {allowed}, (setting, cpus)
