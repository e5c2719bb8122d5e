"""The /agent page in ``make run``'s topology: gunicorn serves the page and the API, the stream
server (another origin, CTI_STREAM_URL) the screen-pop stream."""

from __future__ import annotations

import json
import urllib.request

from devtools.processes import free_port

from ..conftest import API_KEY, WEBHOOK_SECRET
from ..gunicorn_runner import StreamServerProcess, gunicorn
from .conftest import ring
from .test_agent_page import sign_in


def open_streams(base: str) -> int:
    with urllib.request.urlopen(base + "/healthz", timeout=2) as answer:
        return json.load(answer)["streams"]


def test_pop_arrives_through_the_stream_server_and_the_page_says_reconnecting_without_it(
    tmp_path, browser
):
    web_port = free_port()
    web = f"http://127.0.0.1:{web_port}"
    env = {
        "CTI_API_KEYS": API_KEY,
        "CTI_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "CTI_DATABASE": str(tmp_path / "cti.sqlite3"),
        "CTI_STREAM_ORIGINS": web,
    }
    streams = StreamServerProcess(env, tmp_path)
    try:
        streams.wait_ready()
        env["CTI_STREAM_URL"] = streams.base
        with gunicorn(env, workers=2, threads=32, cwd=tmp_path, port=web_port) as base:
            page = browser.new_page()
            sign_in(page, base)
            assert open_streams(streams.base) == 1
            assert page.inner_text("#stream-state") == "Live"

            assert ring(base, "e2e-stream-server") == 202
            page.wait_for_selector("#pops .pop", timeout=2000)
            pop = page.locator("#pops .pop").first
            assert pop.get_attribute("data-call-id") == "e2e-stream-server"
            assert pop.locator(".pop-name").inner_text() == "James May"

            streams.stop()
            page.wait_for_selector("#stream-state:text('Reconnecting…')", timeout=5000)
            assert page.get_attribute("#status", "class") == "dot offline"

            page.fill("#dial-number", "072 123 4567")
            page.click("#dial-form button")
            page.wait_for_selector("#dial-result.ok", timeout=3000)
            assert "Calling +27721234567" in page.inner_text("#dial-result")
            lookup = page.evaluate(
                """async (key) => {
                    const r = await fetch('/api/v1/contacts/lookup?phone=0721234567',
                                          {headers: {'X-API-Key': key}});
                    return [r.status, (await r.json()).contact.name];
                }""",
                API_KEY,
            )
            assert lookup == [200, "James May"]
            assert page.inner_text("#stream-state") == "Reconnecting…"
        web_log = (tmp_path / f"gunicorn-{web_port}.log").read_text()
        assert "/events" not in web_log  # the page never opened a stream on gunicorn
    finally:
        streams.stop()
