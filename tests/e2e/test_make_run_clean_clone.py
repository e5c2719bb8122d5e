"""``make run`` from a clean clone (issue 26, acceptance 1; contract section 6: "on a fresh machine
with Python 3.11+, installs what is needed and serves"): the committed tree cloned into a temporary
directory, with no virtual environment, ``make run`` on free ports builds its own ``.venv``, serves,
and prints the ``/agent`` and ``/console`` links (issue 24). Opened in Chromium, the first is agent
6000's page signed in (no sign-in form, its extension shown, its screen-pop stream connected on the
stream server), the second the supervisor console signed in (no sign-in form, the seeded floor's
four agents on the board, its board stream live); then ``make run`` stops, both servers with it,
within a deadline.

Slow (a whole install from the machine's package index), so it is part of ``make e2e``, not of
``make test``. Nothing of this checkout's ``.venv`` is copied or linked, and nothing of the test's
environment reaches the clone's ``make``: no ``PYTHONPATH``, no ``VIRTUAL_ENV``, no ``MAKEFLAGS``.
``tests/test_make_run.py`` runs ``make run`` in place and checks its token over HTTP; its helpers
are reused here.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from devtools.processes import ROOT, free_port, stop_group
from devtools.waiting import wait_until

from ..test_make_run import CONSOLE, FLOOR, LINK, get, healthy, start_make

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("make") is None, reason="needs make"),
    pytest.mark.skipif(shutil.which("git") is None, reason="needs git"),
]
INSTALL_DEADLINE = 900  # a fresh venv and every dependency, on a shared 2-core machine
STOP_DEADLINE = 30
SERVING = re.compile(r"Serving on (http://\S+) with the sandbox dialer and the sandbox CRM\.")


def committed_tree(destination) -> str:
    """A clone of this checkout's committed state (its HEAD) in ``destination``; the commit."""
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True
    )
    if head.returncode != 0:
        pytest.skip("the checkout is not a git repository")
    commit = head.stdout.strip()
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(destination)], check=True)
    subprocess.run(["git", "-C", str(destination), "checkout", "--quiet", commit], check=True)
    return commit


def outside_environment() -> dict:
    """This environment without what would make the clone's ``make`` use this checkout: its
    settings (``CTI_*``), its import path, its virtual environment, an outer make's flags."""
    venv_bin = str(ROOT / ".venv" / "bin")
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("CTI_")
        and name not in ("PYTHONPATH", "VIRTUAL_ENV", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")
    }
    env["PATH"] = os.pathsep.join(
        part for part in env.get("PATH", "").split(os.pathsep) if part != venv_bin
    )
    env["WEB_CONCURRENCY"] = "1"  # one gunicorn worker is enough here, on a shared machine
    return env


def test_make_run_from_a_clean_clone_serves_the_signed_in_agent_page(tmp_path, browser):
    clone = tmp_path / "clone"
    committed_tree(clone)
    assert not (clone / ".venv").exists()
    port, stream_port = free_port(), free_port()
    process, output = start_make(
        ["run", "HOST=127.0.0.1", f"PORT={port}", f"STREAM_PORT={stream_port}"],
        cwd=clone,
        env=outside_environment(),
    )
    try:
        deadline = time.monotonic() + INSTALL_DEADLINE
        base, token = output.wait_for(LINK, deadline).groups()
        assert output.wait_for(SERVING, deadline).group(1) == base == f"http://127.0.0.1:{port}"
        stream_base = f"http://127.0.0.1:{stream_port}"
        assert f"the stream server on {stream_base}" in output.text
        wait_until(lambda: healthy(base), 60, f"{base} never became healthy", interval=0.1)
        wait_until(
            lambda: healthy(stream_base), 60, f"{stream_base} never became healthy", interval=0.1
        )
        # the clone's own environment serves: gunicorn and the stream server from clone/.venv
        assert (clone / ".venv" / ".installed").exists()
        servers = [
            c for c in group_commands(process.pid) if "gunicorn" in c or "stream_server" in c
        ]
        assert servers and all(c.startswith(f"{clone}/.venv/bin/") for c in servers), servers

        page = browser.new_page()
        page.goto(f"{base}/agent#agent=6000&token={token}")
        page.wait_for_selector("#status.online", timeout=10_000)  # the stream, on :STREAM_PORT
        assert page.locator("#who").is_visible()
        assert page.locator("#ext-label").inner_text() == "6000"
        assert not page.locator("#sign-in-form").is_visible()
        assert page.locator("#desk").is_visible()
        assert token not in page.url  # the page took the token out of its address

        console_base, supervisor = output.wait_for(CONSOLE, deadline).groups()
        assert console_base == base
        assert FLOOR in output.text
        console = browser.new_page()
        console.goto(f"{base}/console#token={supervisor}")
        console.wait_for_selector("#floor:not([hidden])", timeout=10_000)
        console.wait_for_selector("#stream-state:text('Live')", timeout=10_000)  # the board's
        assert not console.locator("#sign-in-form").is_visible()
        assert console.locator("#who-name").inner_text().startswith("Signed in as ")
        tiles = console.locator("#tiles .tile")
        extensions = {tiles.nth(n).get_attribute("data-extension") for n in range(tiles.count())}
        assert extensions == {"6000", "6001", "6002", "6003"}  # the seeded floor
        assert supervisor not in console.url
    finally:
        stopped = time.monotonic()
        stop_group(process, timeout=STOP_DEADLINE)
        ended = group_ended(process.pid, stopped + STOP_DEADLINE)
        output.close()
    assert ended, f"make run's processes outlived {STOP_DEADLINE} s\n{output.text[-3000:]}"
    for served in (base, stream_base):  # both servers went with it
        with pytest.raises(OSError):
            get(served + "/healthz", {})


def group_commands(group: int) -> list[str]:
    """The command lines of the processes of ``group`` now."""
    commands = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and os.getpgid(int(entry.name)) == group:
                commands.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:  # ended meanwhile
            continue
    return commands


def group_ended(group: int, deadline: float) -> bool:
    """Whether every process of ``group`` has ended by ``deadline``; SIGKILL to what is left
    then, so nothing outlives the test."""
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)
    return False
