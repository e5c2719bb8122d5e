"""The extension in ``make run``'s topology (gunicorn on one port, the stream server on another,
the stream paths on gunicorn answering 307 there): it follows the redirect with its X-API-Key
header (the stream server checks it), shows an unknown caller's number_info, and counts the
agent's callbacks on its badge, live."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from devtools.processes import free_port
from devtools.waiting import wait_until

from ..conftest import API_KEY, WEBHOOK_SECRET
from ..fakeserver import Answer, FakeServer
from ..gunicorn_runner import StreamServerProcess, gunicorn
from .conftest import ring
from .test_agent_workspace import api, missed_call
from .test_extension import configure


@pytest.fixture
def crm():
    with FakeServer(
        lambda seen: Answer(200, "<html><body>CRM</body></html>", content_type="text/html")
    ) as site:
        yield site


@pytest.fixture
def stream_server(tmp_path):
    streams = StreamServerProcess(
        {
            "CTI_API_KEYS": API_KEY,
            "CTI_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "CTI_DATABASE": str(tmp_path / "cti.sqlite3"),
        },
        tmp_path,
    )
    try:
        streams.wait_ready()
        yield streams
    finally:
        streams.stop()


@pytest.fixture
def server(tmp_path, stream_server):
    """gunicorn with CTI_STREAM_URL: its stream paths redirect to the stream server."""
    env = {
        "CTI_API_KEYS": API_KEY,
        "CTI_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "CTI_DATABASE": str(tmp_path / "cti.sqlite3"),
        "CTI_STREAM_URL": stream_server.base,
        "CTI_JOURNAL_SETTLE_SECONDS": "0",
    }
    port = free_port()
    with gunicorn(env, workers=2, threads=32, cwd=tmp_path, port=port) as base:
        yield base


def redirected(base: str) -> str:
    request = urllib.request.Request(base + "/api/v1/agents/6000/events", method="GET")

    class Keep(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(Keep)
    try:
        opener.open(request, timeout=5)
    except urllib.error.HTTPError as answer:
        assert answer.code == 307
        return answer.headers["Location"]
    raise AssertionError("no redirect")


def worker_of(context):
    return context.service_workers[0]


def badge(context) -> str:
    return worker_of(context).evaluate("() => chrome.action.getBadgeText({})")


def test_the_extension_follows_the_redirect_shows_number_info_and_counts_callbacks(
    crm, stream_server, server, extension_context
):
    assert redirected(server).startswith(stream_server.base + "/api/v1/agents/6000/events")
    configure(extension_context, server)
    worker = worker_of(extension_context)
    wait_until(lambda: open_streams(stream_server.base) == 1, 15, "the extension opened no stream")

    with extension_context.expect_page(timeout=5000) as opened:
        ring(server, "ext-unknown", number="0829876543")
    tab = opened.value
    tab.wait_for_load_state()
    assert tab.url.startswith(server + "/pop?")  # the middleware's card: no CRM pop URL is set
    assert "Mobile, South Africa, Vodacom" in tab.inner_text("body")
    title = worker.evaluate("() => chrome.action.getTitle({})")
    assert title == "CTI screen pop: Call from +27829876543 (Mobile, South Africa, Vodacom)"
    notes = worker.evaluate("() => chrome.notifications.getAll()")
    assert list(notes) == ["pop-ext-unknown"]

    assert badge(extension_context) == ""
    missed_call(server, "ivr-ext-1", "0825550199")
    missed_call(server, "ivr-ext-2", "0114567890")
    wait_until(lambda: badge(extension_context) == "2", 15, "the badge did not count 2 callbacks")
    callbacks = api(server, "GET", "/api/v1/callbacks?status=open")[1]["callbacks"]
    first, second = (c["id"] for c in callbacks)
    assert api(server, "POST", f"/api/v1/callbacks/{first}/assign", {"agent": "6001"})[0] == 200
    wait_until(
        lambda: badge(extension_context) == "1", 15, "another agent's callback still counted"
    )
    assert api(server, "POST", f"/api/v1/callbacks/{second}/assign", {"agent": "6000"})[0] == 200
    assert api(server, "POST", "/api/v1/calls", {"to": "0114567890", "agent": "6000"})[0] == 201
    wait_until(lambda: badge(extension_context) == "", 15, "a called back callback still counted")


def open_streams(base: str) -> int:
    with urllib.request.urlopen(base + "/healthz", timeout=2) as answer:
        return json.load(answer)["streams"]
