"""``make run`` (contract section 6) prints an /agent link that signs agent 6000 in and a /console
link that signs a supervisor in to a seeded sample floor, prints no development key or secret, and
its start-up log says that tokens are signed with the development secret. Run for real: ``make
run`` on free ports, stopped once its links have been tried."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from devtools.processes import ROOT, clean_env, free_port, stop_group
from devtools.waiting import wait_until
from middleware.commands.dev import DEVELOPMENT

from .conftest import TOKEN_SECRET

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("make") is None, reason="needs make"),
]
VENV = Path(sys.executable).parent.parent  # the environment running the tests
LINK = re.compile(r"agent 6000's page: (http://\S+)/agent#agent=6000&token=(\S*)")
CONSOLE = re.compile(r"the supervisor console: (http://\S+)/console#token=(\S*)")
FLOOR = "sandbox floor: 4 agents, 6 calls today (1 missed, 1 whose log the CRM refuses)"
WARNING = "tokens are signed with the development secret; set CTI_TOKEN_SECRET in production"
DEADLINE = 60


class Output:
    """Everything a process writes, read on a thread; ``wait_for`` a pattern with a deadline."""

    def __init__(self, process: subprocess.Popen):
        self.text = ""
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(process.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            with self._changed:
                self.text += line
                self._changed.notify_all()
        with self._changed:
            self.text += "\n<end of output>"
            self._changed.notify_all()

    def wait_for(self, pattern: re.Pattern, deadline: float) -> re.Match:
        with self._changed:
            while (found := pattern.search(self.text)) is None:
                remaining = deadline - time.monotonic()
                assert remaining > 0 and "<end of output>" not in self.text, self.text[-3000:]
                self._changed.wait(remaining)
            return found

    def close(self) -> None:
        self._thread.join(timeout=10)


def start_make(args: list[str], **popen) -> tuple[subprocess.Popen, Output]:
    """``make args`` in a process group of its own (``stop_group`` ends it whole), its output and
    errors read as they come."""
    process = subprocess.Popen(
        ["make", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        **popen,
    )
    return process, Output(process)


def get(url: str, headers: dict) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as a:
            return a.status
    except urllib.error.HTTPError as error:
        return error.code


def read(url: str, headers: dict) -> dict:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as a:
        return json.load(a)


def healthy(base: str) -> bool:
    try:
        return get(base + "/healthz", {}) == 200
    except OSError:
        return False


def test_make_run_prints_a_working_agent_link_and_no_development_secret(tmp_path):
    port, stream_port = free_port(), free_port()
    env = clean_env({"CTI_DATABASE": str(tmp_path / "cti.sqlite3"), "WEB_CONCURRENCY": "1"})
    process, output = start_make(
        # ``-o``: the test's own environment is installed; make must not reinstall it
        ["-C", str(ROOT), "-o", f"{VENV}/.installed", "run", f"VENV={VENV}"]
        + [f"PORT={port}", f"STREAM_PORT={stream_port}"],
        env=env,
    )
    try:
        deadline = time.monotonic() + DEADLINE
        base, token = output.wait_for(LINK, deadline).groups()
        output.wait_for(re.compile(re.escape(WARNING)), deadline)
        assert base == f"http://127.0.0.1:{port}"
        assert token
        wait_until(
            lambda: healthy(base),
            deadline - time.monotonic(),
            f"{base} never became healthy",
            interval=0.1,
        )
        bearer = {"Authorization": f"Bearer {token}"}

        assert get(f"{base}/api/v1/agents/6000/calls", bearer) == 200
        assert get(f"{base}/api/v1/agents/6001/calls", bearer) == 403  # agent 6000's token
        assert get(f"{base}/api/v1/agents/6000/calls", {}) == 401

        console_base, supervisor = output.wait_for(CONSOLE, deadline).groups()
        assert console_base == base
        assert FLOOR in output.text
        watching = {"Authorization": f"Bearer {supervisor}"}
        assert get(f"{base}/console", {}) == 200
        assert len(read(f"{base}/api/v1/journal", watching)["entries"]) == 6  # the floor's calls
        assert get(f"{base}/api/v1/agents/6000/calls", watching) == 403  # watches, acts not
    finally:
        stop_group(process)
        output.close()
    makefile = (ROOT / "Makefile").read_text()
    for secret in DEVELOPMENT.values():
        assert secret not in output.text
        assert secret not in makefile


@pytest.mark.parametrize(
    "env,status,error",
    [
        ({"CTI_API_KEYS": ","}, 1, "no token for agent 6000: CTI_API_KEYS holds no key"),
        ({"CTI_DIALER": "nope"}, 3, "configuration error: CTI_DIALER"),
    ],
)
def test_make_runs_command_stops_with_the_error_when_no_token_can_be_issued(
    tmp_path, env, status, error
):
    port = free_port()
    settings = {"CTI_DATABASE": str(tmp_path / "cti.sqlite3"), "PORT": str(port), **env}
    done = subprocess.run(
        [sys.executable, "-m", "middleware.commands.dev"],
        env=clean_env(settings),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )

    assert done.returncode == status
    assert error in done.stderr
    assert "Serving on" not in done.stdout
    with pytest.raises(OSError):
        get(f"http://127.0.0.1:{port}/healthz", {})


def test_start_up_warns_only_while_tokens_are_signed_with_the_development_secret(make_app, caplog):
    make_app(CTI_TOKEN_SECRET=DEVELOPMENT["CTI_TOKEN_SECRET"])
    assert WARNING in caplog.messages

    caplog.clear()
    make_app(CTI_TOKEN_SECRET=TOKEN_SECRET)
    assert WARNING not in caplog.messages
