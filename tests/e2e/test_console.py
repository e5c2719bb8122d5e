"""The supervisor console (/console) in real headless Chromium against real gunicorn: the board
follows the PBX's pushes live, a missed call becomes a callback on screen, a failed call log is
retried from its row, the charts are given the day's numbers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from devtools.processes import free_port
from devtools.waiting import wait_until
from middleware.upstreams.sandbox_crm import REFUSED_NUMBER

from ..conftest import API_KEY, TOKEN_SECRET, WEBHOOK_SECRET
from ..fakeserver import Answer, FakeServer
from ..gunicorn_runner import gunicorn, stream_server, streaming_server
from ..pbx_webhooks import post_webhook
from .test_agent_workspace import serious_violations

# e.g. docs/img/console.png, from where pytest starts (the tests run in a temporary directory)
SCREENSHOT = (
    os.environ.get("E2E_CONSOLE_SCREENSHOT")
    and Path(os.environ["E2E_CONSOLE_SCREENSHOT"]).resolve()
)
CAPE_FRUIT = "+27317654321"  # a sandbox CRM contact
SECOND = 1000  # Playwright timeouts are in milliseconds
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def server_env():
    return {"CTI_TOKEN_SECRET": TOKEN_SECRET, "CTI_JOURNAL_SETTLE_SECONDS": "0"}


def call(base: str, method: str, path: str, body=None, key: str = API_KEY):
    request = urllib.request.Request(
        base + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json", "X-API-Key": key},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)


def supervisor_token(base: str, name: str = "Thandi") -> str:
    return call(base, "POST", "/api/v1/supervisors/token", {"name": name})["token"]


def leg(event: str, call_id: str, number: str, agent: str, **fields) -> dict:
    return {
        "event": event,
        "id": f"{call_id}-leg",
        "call_id": call_id,
        "type": "inbound",
        "cid_num": number.lstrip("+"),
        "dst_num": "27215550000",
        "dst_user_id": agent,
        "ts": int(time.time()),
        **fields,
    }


def push(base: str, event: dict) -> None:
    assert post_webhook(base, event) == 202


def whole_call(base, call_id, number, agent, talk_seconds):
    """A call rung, answered (when it was) and ended, as the PBX pushes it."""
    push(base, leg("call:ring", call_id, number, agent))
    if talk_seconds:
        push(base, leg("call:answer", call_id, number, agent))
    ms = talk_seconds * 1000
    push(base, leg("call:end", call_id, number, agent, durationms=ms + 5000, billms=ms))


def open_console(browser, base: str, token: str):
    page = browser.new_page(viewport={"width": 1360, "height": 1000})
    problems = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "response",
        lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None,
    )
    page.on(
        "console",
        lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.goto(f"{base}/console#token={token}")
    page.wait_for_selector("#floor:not([hidden])", timeout=5 * SECOND)
    page.wait_for_selector("#stream-state:text('Live')", timeout=5 * SECOND)
    return page, problems


def tile(page, extension: str):
    return page.locator(f'#tiles .tile[data-extension="{extension}"]')


def test_board_follows_a_call_from_ring_to_talk_to_free_within_a_second_each(server, browser):
    page, problems = open_console(browser, server, supervisor_token(server))
    assert "#token" not in page.url  # the credential is wiped from the address bar
    assert page.inner_text("#who-name") == "Signed in as Thandi"

    started = time.monotonic()
    push(server, leg("call:ring", "e2e-board-1", "+27721234567", "6000"))
    page.wait_for_selector('.tile[data-extension="6000"].ringing', timeout=SECOND)
    ringing = time.monotonic() - started
    assert tile(page, "6000").locator(".call-number").inner_text() == "+27721234567"
    assert tile(page, "6000").locator(".call-direction").inner_text() == "↙ inbound"
    assert tile(page, "6000").locator(".call-state").inner_text() == "Ringing"

    started = time.monotonic()
    push(server, leg("call:answer", "e2e-board-1", "+27721234567", "6000"))
    page.wait_for_selector('.tile[data-extension="6000"].talking', timeout=SECOND)
    talking = time.monotonic() - started
    since = tile(page, "6000").locator(".call-since")
    first = since.inner_text()
    page.wait_for_function(
        "([el, first]) => el.textContent !== first", arg=[since.element_handle(), first]
    )  # the duration ticks

    started = time.monotonic()
    push(
        server,
        leg("call:end", "e2e-board-1", "+27721234567", "6000", durationms=9000, billms=4000),
    )
    page.wait_for_selector(
        '.tile[data-extension="6000"]:not(.ringing):not(.talking)', timeout=SECOND
    )
    free = time.monotonic() - started
    assert tile(page, "6000").locator(".call-state").inner_text() == "No call"
    assert max(ringing, talking, free) < 1.0, (ringing, talking, free)
    page.wait_for_function(
        """() => document.querySelector('.tile[data-extension="6000"] .today-calls')
                 .textContent === '1'""",
        timeout=10 * SECOND,
    )  # today's counts follow once the call is logged
    assert problems == []


def test_a_missed_call_becomes_a_callback_on_screen_and_assigned_it_is_on_the_agents_page(
    server, browser
):
    push(server, leg("call:ring", "e2e-seen", "+27721234567", "6001"))  # 6001 on the board
    page, problems = open_console(browser, server, supervisor_token(server))
    page.wait_for_selector('.tile[data-extension="6001"]')
    agent_token = call(server, "POST", "/api/v1/agents/6001/token")["token"]
    agent = browser.new_page()
    agent.goto(f"{server}/agent#agent=6001&token={agent_token}")
    agent.wait_for_selector("#status.online", timeout=5 * SECOND)

    whole_call(server, "e2e-missed-1", CAPE_FRUIT, "6002", talk_seconds=0)

    row = page.locator("#callbacks-table tbody tr", has_text=CAPE_FRUIT)
    row.wait_for(timeout=15 * SECOND)  # logged, then the console's next poll: no reload
    assert "once" in row.inner_text()
    offered = agent.locator(f'.callback[data-status="open"]:has-text("{CAPE_FRUIT}")')
    offered.wait_for(timeout=5 * SECOND)  # open: any agent may take it

    row.locator("select").select_option("6001")
    row.locator("button", has_text="Assign").click()
    page.wait_for_selector("#callbacks-result.ok", timeout=5 * SECOND)
    page.wait_for_selector(f'#callbacks-table tr.assigned:has-text("{CAPE_FRUIT}")')
    assert row.locator("select").input_value() == "6001"
    yours = agent.locator(f'.callback[data-status="assigned"]:has-text("{CAPE_FRUIT}")')
    yours.wait_for(timeout=5 * SECOND)  # live on the agent's page, from its stream
    assert "yours" in yours.locator(".callback-owner").inner_text()
    mine = call(server, "GET", "/api/v1/callbacks?agent=6001", key=agent_token)["callbacks"]
    assert [(c["number"], c["status"], c["agent"]) for c in mine] == [
        (CAPE_FRUIT, "assigned", "6001")
    ]

    row.locator("button", has_text="Dismiss").click()
    row.wait_for(state="detached", timeout=5 * SECOND)
    yours.wait_for(state="detached", timeout=5 * SECOND)
    assert problems == []


def test_failed_call_logs_retried_from_their_rows_reach_the_crm_once_it_takes_them(
    tmp_path, browser
):
    """The CRM refuses call logs (422), then is fixed: Retry sends one row's log again and the row
    leaves the failed list; "Retry all failed" sends the rest."""
    refusing = threading.Event()
    refusing.set()

    def crm(seen):
        if seen.path == "/calls/log" and refusing.is_set():
            return Answer(422, {"status": False, "error": "Account 3008821 is locked"})
        if seen.path == "/calls/log":
            return Answer(200, {"status": True})
        return Answer(200, {"status": False})  # lookups: an unknown caller

    settings = {
        "CTI_TOKEN_SECRET": TOKEN_SECRET,
        "CTI_JOURNAL_SETTLE_SECONDS": "0",
        "CTI_CRM": "switchtransact",
        "CTI_CRM_API_KEY": "crm-key-e2e-console",
    }
    with (
        FakeServer(crm) as fake,
        streaming_server(tmp_path, {**settings, "CTI_CRM_URL": fake.url}) as base,
    ):
        for n, number in enumerate(("+27721234567", "+27829876543", "+27821112222")):
            whole_call(base, f"e2e-refused-{n}", number, "6000", talk_seconds=60)
        page, problems = open_console(browser, base, supervisor_token(base))
        refresh_until(page, "#failed-table tbody tr:nth-child(3)", "#refresh-journal")
        row = page.locator("#failed-table tbody tr", has_text="+27721234567")
        assert row.locator("td").nth(3).inner_text() == "1"  # tried once: a 422 is not retried
        assert "Account 3008821 is locked" in row.locator(".error-text").inner_text()
        assert page.inner_text("#failed-count") == "3"

        refusing.clear()  # the CRM is fixed
        row.locator("button", has_text="Retry").click()
        row.wait_for(state="detached", timeout=10 * SECOND)
        assert page.inner_text("#journal-result") == "1 call log sent again."
        page.wait_for_selector("#failed-count:text('2')", timeout=10 * SECOND)

        page.click("#retry-all")
        page.wait_for_selector("#journal-result:text('2 call logs sent again.')")
        page.wait_for_selector("#failed-empty:not([hidden])", timeout=10 * SECOND)
        assert page.is_disabled("#retry-all")
        wait_until(  # each was put back to pending; the deliverer sends it
            lambda: journal_statuses(base) == ["delivered"] * 3,
            10,
            lambda: f"every entry delivered: {journal_statuses(base)}",
            interval=0.1,
        )
        assert problems == []


def journal_statuses(base: str) -> list[str]:
    return [entry["status"] for entry in call(base, "GET", "/api/v1/journal")["entries"]]


def refresh_until(page, selector: str, button: str, seconds: float = 15) -> None:
    """Click ``button`` until ``selector`` shows (what arrives by a background delivery)."""

    def shown() -> bool:
        if page.locator(selector).count():
            return True
        page.click(button)
        page.wait_for_timeout(300)
        return False

    wait_until(shown, seconds, f"no {selector} after {seconds} s", interval=0)


def test_charts_are_given_the_days_numbers(server, browser):
    whole_call(server, "e2e-report-1", "+27721234567", "6000", talk_seconds=120)
    whole_call(server, "e2e-report-2", CAPE_FRUIT, "6001", talk_seconds=0)
    page, problems = open_console(browser, server, supervisor_token(server))
    report = call(server, "GET", "/api/v1/reports/calls?by=hour")
    assert report["totals"]["calls"] == 2

    page.click("#range-form button[type=submit]")
    page.wait_for_function(
        "() => Chart.getChart('chart-hour').data.datasets[0].data.reduce((a, b) => a + b, 0) === 2"
    )
    hour = page.evaluate(
        "() => Chart.getChart('chart-hour').data.datasets.map((d) => [d.label, d.data])"
    )
    assert hour == [
        ["Calls", [row["calls"] for row in report["rows"]]],
        ["Missed", [row["missed"] for row in report["rows"]]],
    ]
    day = page.evaluate(
        "() => Chart.getChart('chart-day').data.datasets.map((d) => [d.label, d.data.at(-1)])"
    )
    assert day == [["Calls", 2], ["Answered", 1], ["Missed", 1]]
    agent = page.evaluate(
        "() => { const c = Chart.getChart('chart-agent'); return [c.data.labels, c.data.datasets[0].data]; }"
    )
    assert agent == [["6000", "6001"], [2, 0]]
    assert problems == []


def test_the_sandbox_floor_shows_on_the_console(server, browser, tmp_path):
    """What `make run` shows: the floor seeded through the API, plus a call ringing and one
    talking; the screenshot of docs/console.md when E2E_CONSOLE_SCREENSHOT is set."""
    env = {
        **os.environ,
        "CTI_API_KEYS": API_KEY,
        "CTI_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "CTI_DATABASE": str(tmp_path / "cti.sqlite3"),
    }
    seeded = subprocess.run(
        [sys.executable, "-m", "flask", "--app", str(ROOT / "app.py"), "sandbox", "floor"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert seeded.returncode == 0, seeded.stderr
    push(server, leg("call:ring", "e2e-floor-ringing", "+27821112222", "6001"))
    push(server, leg("call:ring", "e2e-floor-talking", "+27721234567", "6000"))
    push(server, leg("call:answer", "e2e-floor-talking", "+27721234567", "6000"))
    page, problems = open_console(browser, server, supervisor_token(server))

    statuses = page.evaluate(
        "() => [...document.querySelectorAll('#tiles .tile')].map((t) => [t.dataset.extension,"
        " t.querySelector('.tile-status').textContent, t.querySelector('.call-state').textContent])"
    )
    assert statuses == [
        ["6000", "Available", "Talking"],
        ["6001", "Available", "Ringing"],
        ["6002", "Paused", "No call"],
        ["6003", "Offline", "No call"],
    ]
    page.locator("#callbacks-table tbody tr", has_text=CAPE_FRUIT).wait_for(timeout=15 * SECOND)
    failed = page.locator("#failed-table tbody tr", has_text=REFUSED_NUMBER)
    failed.wait_for(timeout=25 * SECOND)  # delivered by the server, then the next poll
    page.wait_for_function(
        "() => Chart.getChart('chart-hour').data.datasets[0].data.some((n) => n > 0)"
    )
    assert problems == []
    if SCREENSHOT:
        page.wait_for_timeout(500)  # the charts' short animation
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOT, full_page=True)


def test_the_board_streams_from_the_stream_server_as_under_make_run(tmp_path, browser):
    """make run's topology: gunicorn serves the page and the API, the stream server (another
    origin, CTI_STREAM_URL) the board's stream; the page never opens a stream on gunicorn."""
    web_port = free_port()
    env = {
        "CTI_API_KEYS": API_KEY,
        "CTI_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "CTI_TOKEN_SECRET": TOKEN_SECRET,
        "CTI_DATABASE": str(tmp_path / "cti.sqlite3"),
        "CTI_STREAM_ORIGINS": f"http://127.0.0.1:{web_port}",
    }
    with stream_server(env, tmp_path) as streams:
        env["CTI_STREAM_URL"] = streams.base
        with gunicorn(env, workers=2, threads=8, cwd=tmp_path, port=web_port) as base:
            page, problems = open_console(browser, base, supervisor_token(base))
            started = time.monotonic()
            push(base, leg("call:ring", "e2e-streams-1", "+27721234567", "6000"))
            page.wait_for_selector('.tile[data-extension="6000"].ringing', timeout=SECOND)
            assert time.monotonic() - started < 1.0
            assert problems == []
        web_log = (tmp_path / f"gunicorn-{web_port}.log").read_text()
        assert "/events" not in web_log


def test_a_console_refused_a_stream_as_busy_says_so_and_comes_back_when_one_is_free(
    tmp_path, browser
):
    """One worker that holds one stream: a second console gets 503 `busy`, shows the board from
    its snapshot, says the server is busy, and goes live after Retry-After once the first leaves."""
    env = {
        "CTI_API_KEYS": API_KEY,
        "CTI_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "CTI_TOKEN_SECRET": TOKEN_SECRET,
        "CTI_DATABASE": str(tmp_path / "cti.sqlite3"),
        "CTI_STREAMS_PER_WORKER": "1",
    }
    with gunicorn(env, workers=1, threads=8, cwd=tmp_path) as base:
        push(base, leg("call:ring", "e2e-busy-1", "+27721234567", "6000"))
        token = supervisor_token(base)
        first, _ = open_console(browser, base, token)
        second = browser.new_page()
        second.goto(f"{base}/console#token={token}")
        second.wait_for_selector('.tile[data-extension="6000"].ringing', timeout=5 * SECOND)
        second.wait_for_selector("#stream-state:text('Server busy, retrying…')", timeout=5 * SECOND)

        first.close()
        second.wait_for_selector("#stream-state:text('Live')", timeout=25 * SECOND)
        push(base, leg("call:answer", "e2e-busy-1", "+27721234567", "6000"))
        second.wait_for_selector('.tile[data-extension="6000"].talking', timeout=SECOND)


def test_no_serious_or_critical_accessibility_violation(server, browser):
    """axe-core over the sign-in form, then over the signed-in console with every part filled."""
    context = browser.new_context(bypass_csp=True)  # axe is injected as an inline script
    page = context.new_page()
    page.goto(server + "/console")
    assert serious_violations(page) == []

    push(server, leg("call:ring", "e2e-axe-1", "+27721234567", "6000"))
    whole_call(server, "e2e-axe-2", CAPE_FRUIT, "6001", talk_seconds=0)
    whole_call(server, "e2e-axe-3", REFUSED_NUMBER, "6001", talk_seconds=30)
    push(server, leg("call:ring", "e2e-axe-4", "+27821112222", "6002"))
    push(server, leg("call:answer", "e2e-axe-4", "+27821112222", "6002"))
    for extension, status in (("6003", "paused"), ("6004", "offline"), ("6005", "available")):
        call(server, "PUT", f"/api/v1/agents/{extension}/status", {"status": status})
    page = context.new_page()  # the same address with a fragment would not load the page again
    page.goto(f"{server}/console#token={supervisor_token(server)}")
    page.wait_for_selector('.tile[data-extension="6000"].ringing', timeout=5 * SECOND)
    page.locator("#callbacks-table tbody tr").first.wait_for(timeout=15 * SECOND)
    refresh_until(page, "#failed-table tbody tr", "#refresh-journal")
    for details in page.locator(".chart details").all():
        details.locator("summary").click()  # the charts' tables too
    assert serious_violations(page) == []
    context.close()


def test_an_agent_token_is_refused_in_words(server, browser):
    agent_token = call(server, "POST", "/api/v1/agents/6000/token")["token"]
    page = browser.new_page()
    page.goto(f"{server}/console#token={agent_token}")

    page.wait_for_selector("#sign-in-error:not([hidden])", timeout=5 * SECOND)
    assert "needs a supervisor token" in page.inner_text("#sign-in-error")
    assert page.locator("#floor").is_hidden()

    page.fill("#api-key", "not-a-key")
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_selector("#sign-in-error:has-text('was not accepted')", timeout=5 * SECOND)
