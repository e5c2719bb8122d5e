"""``flask --app app store backup PATH`` (contract section 6): a consistent copy of the live SQLite
store, taken while gunicorn ingests, that ``CTI_DATABASE=PATH`` serves as it is; a backup killed
mid-copy leaves the live store and PATH as they were; PostgreSQL is pointed to ``pg_dump``."""

from __future__ import annotations

import fcntl
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from devtools.processes import ROOT, clean_env
from devtools.waiting import wait_until
from middleware import create_app
from middleware.store import FinishedEntry
from middleware.store.sql import SqlStore

from .conftest import API_KEY, PG_PASSWORD, WEBHOOK_SECRET
from .gunicorn_runner import gunicorn
from .journal_fakes import call_end, served_env

pytestmark = pytest.mark.slow  # gunicorn and the store command as processes

FLASK = str(Path(sys.executable).with_name("flask"))
CRM_REFUSES = "http://127.0.0.1:9"  # entries stay pending: the copy holds them as they were


def store_command(env: dict, *args: str, **options) -> subprocess.Popen:
    """``flask --app app store ARGS`` with ``env`` as its settings."""
    return subprocess.Popen(
        [FLASK, "--app", "app", "store", *args],
        env=clean_env(env),
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        **options,
    )


def run_store_command(env: dict, *args: str) -> tuple[int, str, str]:
    process = store_command(env, *args, stdout=subprocess.PIPE)
    out, err = process.communicate(timeout=120)
    return process.returncode, out, err


def journal_keys(database: str) -> set[str]:
    """Every journal key, listed through the API of an app serving ``database``."""
    app = create_app(
        {"CTI_API_KEYS": API_KEY, "CTI_WEBHOOK_SECRET": WEBHOOK_SECRET, "CTI_DATABASE": database}
    )
    app.config["TESTING"] = True
    client, found, cursor = app.test_client(), set(), None
    while True:
        query = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        answer = client.get("/api/v1/journal", query_string=query, headers={"X-API-Key": API_KEY})
        assert answer.status_code == 200, answer.get_json()
        found |= {entry["key"] for entry in answer.get_json()["entries"]}
        cursor = answer.get_json()["next"]
        if cursor is None:
            app.extensions["cti"].store.close()
            return found


def test_a_backup_taken_while_gunicorn_ingests_holds_every_acknowledged_entry(tmp_path):
    live, copy = str(tmp_path / "live.sqlite3"), tmp_path / "backups" / "copy.sqlite3"
    copy.parent.mkdir()
    env = served_env(live, CRM_REFUSES)
    acknowledged: list[tuple[float, str]] = []  # (when the 202 came, the call's key)
    stop = threading.Event()

    def pbx(worker: int, base: str) -> None:
        session = requests.Session()
        n = 0
        while not stop.is_set():
            key = f"call-{worker}-{n}"
            answer = session.post(
                f"{base}/api/v1/webhooks/pbx",
                json=call_end(id=key),
                headers={"X-Webhook-Token": WEBHOOK_SECRET},
                timeout=10,
            )
            if answer.status_code == 202:
                acknowledged.append((time.monotonic(), key))
            n += 1

    with gunicorn(env, workers=2, threads=4, cwd=tmp_path) as base:
        senders = [threading.Thread(target=pbx, args=(w, base)) for w in range(3)]
        for sender in senders:
            sender.start()
        try:
            wait_until(lambda: len(acknowledged) >= 60, 60, "60 webhooks acknowledged")
            started = time.monotonic()
            code, out, err = run_store_command(env, "backup", str(copy))
            during = len(acknowledged)
            wait_until(  # the service went on ingesting
                lambda: len(acknowledged) >= during + 20, 60, "20 more webhooks after the backup"
            )
        finally:
            stop.set()
            for sender in senders:
                sender.join(15)

    assert code == 0, err
    before = {key for at, key in acknowledged if at < started}
    assert len(before) >= 60
    copied = journal_keys(str(copy))  # an app serves the copy as it is
    assert before <= copied
    assert copied <= {key for _, key in acknowledged}
    assert f"backed up the store to {copy}" in out
    assert f"{copy.stat().st_size:,} bytes" in out
    assert f"{len(copied)} journal entries (pending {len(copied)})" in out
    assert journal_keys(live) == {key for _, key in acknowledged}
    assert not list(copy.parent.glob("*.partial"))


def _full_pipe() -> tuple[int, int]:
    """A pipe whose buffer is full: the first write to it blocks until it is read."""
    read, write = os.pipe()
    fcntl.fcntl(write, fcntl.F_SETPIPE_SZ, 4096)
    flags = fcntl.fcntl(write, fcntl.F_GETFL)
    fcntl.fcntl(write, fcntl.F_SETFL, flags | os.O_NONBLOCK)
    try:
        while True:
            os.write(write, b"x" * 512)
    except BlockingIOError:
        pass
    fcntl.fcntl(write, fcntl.F_SETFL, flags)
    return read, write


def _blocked_writing(pid: int) -> bool:
    """Whether process ``pid`` sleeps in a write to a full pipe (its first progress line)."""
    return Path(f"/proc/{pid}/wchan").read_text().endswith("pipe_write")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_backup_killed_mid_copy_leaves_the_live_store_and_the_previous_copy(tmp_path):
    live, copy = str(tmp_path / "live.sqlite3"), tmp_path / "copy.sqlite3"
    env = {"CTI_DATABASE": live}
    store = SqlStore(live)
    now = time.time()
    # large enough to take several steps of the copy (about 20 MB)
    store.retention.add_finished(
        FinishedEntry("pbx", f"old-{n}", "delivered", {"Notes": "x" * 3000}, now, now)
        for n in range(5000)
    )
    code, _, err = run_store_command(env, "backup", str(copy))
    assert code == 0, err
    previous = _digest(copy)
    store.journal.add("ibizfone", "newer", {"CallType": "Inbound"})

    # Its first progress line (after the first step of the copy) blocks on a full pipe: the
    # backup is stopped mid-copy, then killed there.
    read, write = _full_pipe()
    backup = store_command(env, "backup", str(copy), stdout=write)
    os.close(write)
    try:
        wait_until(
            lambda: _blocked_writing(backup.pid),
            60,
            "the backup never reported progress",
            interval=0.01,
        )
        (partial,) = tmp_path.glob(".copy.sqlite3.*.partial")
        assert 0 < partial.stat().st_size
        os.kill(backup.pid, signal.SIGKILL)
        backup.wait(10)
    finally:
        backup.kill()
        backup.communicate()
        os.close(read)

    assert _digest(copy) == previous  # the previous complete copy, untouched
    assert "newer" not in journal_keys(str(copy)) and len(journal_keys(str(copy))) == 5000
    # the live store is whole and takes writes
    store.journal.add("ibizfone", "after-the-kill", {"CallType": "Inbound"})
    assert store.retention.counts()["journal"] == 5002
    store.close()
    code, out, err = run_store_command(env, "backup", str(copy))  # and the next backup works
    assert code == 0, err
    assert "5002 journal entries" in out


def test_a_backup_of_postgresql_exits_non_zero_and_names_pg_dump(tmp_path, postgres_url):
    copy = tmp_path / "copy.sqlite3"

    code, out, err = run_store_command({"CTI_DATABASE": postgres_url}, "backup", str(copy))

    assert code != 0
    assert "pg_dump" in err
    assert PG_PASSWORD not in out + err
    assert not copy.exists()
