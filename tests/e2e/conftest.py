"""A real gunicorn (two gthread workers) and Debian's headless Chromium, driven by Playwright."""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from ..conftest import API_KEY
from ..gunicorn_runner import streaming_server
from ..pbx_webhooks import post_webhook, ring_event

# Playwright reports a service worker's requests only with this set (the extension's are the
# ones a failing extension test needs to show: ``extension_context``).
os.environ.setdefault("PW_EXPERIMENTAL_SERVICE_WORKER_NETWORK_EVENTS", "1")
playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
if not Path(CHROMIUM).exists():
    pytest.skip(f"no Chromium at {CHROMIUM}: run `make e2e`", allow_module_level=True)

# What this machine's closed network needs (no background calls home, no sandbox as root).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def server_env():
    """Extra settings for ``server``; a test module overrides this fixture to add its own."""
    return {}


@pytest.fixture
def server(tmp_path, server_env):
    """The middleware with the sandbox dialer and CRM."""
    with streaming_server(tmp_path, server_env) as base:
        yield base
    # what the server did, for a failing test's report (pytest shows a passing test's output none)
    log = tmp_path / f"gunicorn-{urlsplit(base).port}.log"
    print(f"--- {log.name}, its last lines:", *log.read_text().splitlines()[-60:], sep="\n")


@pytest.fixture
def playwright():
    with playwright_api.sync_playwright() as driver:
        yield driver


@pytest.fixture
def browser(playwright):
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
    )
    yield browser
    browser.close()


def ring(base: str, call_id: str, number: str = "0721234567", agent: str = "6000") -> int:
    return post_webhook(base, ring_event(call_id, agent, number))


def api(base: str, method: str, path: str, body=None, key: str = API_KEY):
    """A JSON request to the server at ``base``; its status and its decoded body."""
    request = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"X-API-Key": key, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


EXTENSION = Path(__file__).resolve().parents[2] / "extension"


def extension_granted(tmp_path: Path, origins) -> Path:
    """A copy of the extension whose manifest grants, at install, exactly ``origins``: what the
    agent grants in the options page. Chrome's permission prompt (``chrome.permissions.request``)
    cannot be answered in headless automation; for origins granted already it resolves at once,
    so the options page runs as it does for an agent."""
    copy = tmp_path / "extension"
    shutil.copytree(EXTENSION, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["host_permissions"] = [f"{origin.rstrip('/')}/*" for origin in origins]
    (copy / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return copy


def any_port(origin: str) -> str:
    """The origin's host on every port, as the options page asks for the middleware (its stream
    paths may redirect to the stream server on another port of the same host)."""
    parts = urlsplit(origin)
    return f"{parts.scheme}://{parts.hostname}"


@pytest.fixture
def extension_context(playwright, tmp_path, server, crm):
    """Chromium with the extension loaded, granted the middleware (``server``) and the test's
    ``crm`` site."""
    extension = extension_granted(tmp_path, [any_port(server), crm.url])
    context = playwright.chromium.launch_persistent_context(
        str(tmp_path / "profile"),
        executable_path=CHROMIUM,
        headless=True,
        args=[
            *CHROMIUM_ARGS,
            f"--disable-extensions-except={extension}",
            f"--load-extension={extension}",
        ],
    )
    _record(context)
    yield context
    context.close()


def _record(context) -> None:
    """Print, as they happen, the console lines of every page and of the service worker and every
    request the browser makes or fails, with the time: pytest shows them when a test fails."""
    started = time.monotonic()

    def out(*parts):
        print(f"{time.monotonic() - started:7.3f}", *parts)

    context.on("console", lambda message: out("console", message.type, message.text))
    context.on("request", lambda sent: out("request", sent.method, sent.url))
    context.on("requestfinished", lambda sent: out("finished", sent.method, sent.url))
    context.on("requestfailed", lambda sent: out("failed", sent.method, sent.url, sent.failure))
