"""The journal with real processes: gunicorn workers killed mid-stream, and concurrent writers."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from devtools.waiting import wait_until
from middleware.store.sql import SqlStore

from .conftest import WEBHOOK_SECRET
from .fakeserver import FakeServer
from .gunicorn_runner import gunicorn
from .journal_fakes import LoggingCrm, call_end, served_env

pytestmark = pytest.mark.slow

WEBHOOKS = 500
KILL_AFTER = 200


def gunicorn_workers(base_url: str) -> list[int]:
    """The worker pids of the gunicorn serving ``base_url`` (children of its master)."""
    bind = base_url.removeprefix("http://").encode()
    found: dict[int, int] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if bind not in (proc / "cmdline").read_bytes():
                continue
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        found[int(proc.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return [pid for pid, parent in found.items() if parent in found]


def journal_env(database: str, crm_url: str) -> dict:
    """Served with the CRM at ``crm_url``, short upstream deadlines."""
    return served_env(
        database,
        crm_url,
        CTI_UPSTREAM_TIMEOUT="1",
        CTI_LOOKUP_TIMEOUT="0.5",  # claims last 4.25 s: a dead worker's are retaken soon
    )


def pbx_sends(session: requests.Session, base: str, event: dict) -> bool:
    """The PBX posts ``event`` once: whether it was acknowledged (202). After a failure (no
    answer, or another status) it waits 50 ms before it may send again."""
    try:
        answer = session.post(
            f"{base}/api/v1/webhooks/pbx",
            json=event,
            headers={"X-Webhook-Token": WEBHOOK_SECRET},
            timeout=5,
        )
    except requests.RequestException:
        answer = None
    if answer is not None and answer.status_code == 202:
        return True
    time.sleep(0.05)
    return False


def test_killed_workers_lose_no_acknowledged_webhook(tmp_path, sql_database):
    crm = LoggingCrm()
    with FakeServer(crm) as fake:
        fake.httpd.RequestHandlerClass.disable_nagle_algorithm = True  # no 40 ms delayed-ACK stalls
        env = journal_env(sql_database, fake.url)
        with gunicorn(env, workers=3, cwd=tmp_path) as base:
            acknowledged: set[str] = set()
            lock = threading.Lock()
            killed = threading.Event()

            def post(n: int) -> None:
                number = f"+2772{n:07d}"
                event = call_end(id=f"call-{n}", cid_num=number)
                session = requests.Session()
                for _ in range(100):  # the PBX sends again until it gets an answer
                    if pbx_sends(session, base, event):
                        with lock:
                            acknowledged.add(number)
                            if len(acknowledged) == KILL_AFTER and not killed.is_set():
                                killed.set()
                                workers = gunicorn_workers(base)
                                for pid in workers:
                                    os.kill(pid, signal.SIGKILL)
                                print(f"\nSIGKILLed {len(workers)} workers midway")
                        return

            began = time.monotonic()
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(post, range(WEBHOOKS)))
            assert killed.is_set()
            print(
                f"posted in {time.monotonic() - began:.1f}s; delivered so far {len(crm.delivered())}"
            )

            def all_delivered() -> bool:
                requests.get(f"{base}/healthz", timeout=2)  # a respawned worker starts delivering
                return acknowledged <= set(crm.delivered())

            wait_until(
                all_delivered,
                30,
                lambda: (
                    f"{len(acknowledged - set(crm.delivered()))} acknowledged webhooks undelivered"
                ),
                interval=0.2,
            )

        delivered = crm.delivered()
        twice = sum(1 for count in delivered.values() if count > 1)
        print(
            f"acknowledged {len(acknowledged)}, delivered {len(delivered)}, delivered twice {twice}"
        )
        assert len(acknowledged) == WEBHOOKS
        assert acknowledged <= set(delivered)
        assert twice <= 3  # at most the one delivery each killed worker had in flight


def gunicorn_processes(base_url: str) -> list[int]:
    """The master and worker pids of the gunicorn serving ``base_url``."""
    bind = base_url.removeprefix("http://").encode()
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and bind in (proc / "cmdline").read_bytes():
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def test_killed_master_and_workers_with_a_closing_crm_lose_and_double_nothing(
    tmp_path, sql_database
):
    """A CRM that closes every connection after its answer (HTTP/1.1 ``Connection: close``):
    every log it received was answered, so none is sent twice, but for the deliveries in flight
    at the moment gunicorn (master and workers) is SIGKILLed; a new gunicorn on the same store
    delivers the rest."""
    crm = LoggingCrm()
    with FakeServer(crm, close=True) as fake:
        env = journal_env(sql_database, fake.url)
        acknowledged: set[str] = set()
        lock = threading.Lock()
        killed = threading.Event()
        target: list[str] = []

        def post(n: int) -> None:
            number = f"+2773{n:07d}"
            event = call_end(id=f"call-{n}", cid_num=number)
            session = requests.Session()
            wait_until(  # the PBX sends again until it gets an answer
                lambda: pbx_sends(session, target[-1], event),
                60,
                f"an answer to the webhook of {number}",
                interval=0,
            )
            with lock:
                acknowledged.add(number)
                if len(acknowledged) == KILL_AFTER and not killed.is_set():
                    for pid in gunicorn_processes(target[-1]):
                        os.kill(pid, signal.SIGKILL)
                    killed.set()

        with ThreadPoolExecutor(8) as pool:
            with gunicorn(env, workers=2, cwd=tmp_path) as first:
                target.append(first)
                posting = [pool.submit(post, n) for n in range(WEBHOOKS)]
                assert killed.wait(60)
            delivered_at_kill = len(crm.delivered())
            with gunicorn(env, workers=2, cwd=tmp_path) as second:
                target.append(second)
                for future in posting:
                    future.result()
                wait_until(
                    lambda: acknowledged <= set(crm.delivered()),
                    60,
                    lambda: f"{len(acknowledged - set(crm.delivered()))} acknowledged undelivered",
                    interval=0.2,
                )

        delivered = crm.delivered()
        twice = sum(1 for count in delivered.values() if count > 1)
        print(
            f"\nSIGKILLed master and workers after {KILL_AFTER} acknowledged "
            f"({delivered_at_kill} logs delivered then); acknowledged {len(acknowledged)}, "
            f"delivered {len(delivered)}, delivered twice {twice}"
        )
        assert len(acknowledged) == WEBHOOKS
        assert acknowledged <= set(delivered)
        assert twice <= 2  # at most the one delivery each killed worker had in flight


def _write_entries(path: str, writer: int, count: int, start) -> list[str]:
    store = SqlStore(path)
    errors = []
    start.wait()
    for n in range(count):
        try:
            store.journal.add("pbx", f"w{writer}-{n}", {"CallType": "Inbound", "n": n})
        except Exception as exc:  # noqa: BLE001 - every failure is the finding
            errors.append(f"{type(exc).__name__}: {exc}")
    return errors


def test_four_processes_writing_at_once_store_every_entry(sql_database):
    path = sql_database
    SqlStore(path)
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        start = manager.Event()
        with context.Pool(4) as pool:
            results = [
                pool.apply_async(_write_entries, (path, writer, 500, start)) for writer in range(4)
            ]
            time.sleep(0.5)  # every process is up and waiting
            start.set()
            errors = [e for result in results for e in result.get(timeout=60)]

    assert errors == []
    counts = SqlStore(path).journal.counts()
    assert counts == {"pending": 2000, "delivered": 0, "failed": 0}
