"""The /agent page's status and queues in real headless Chromium against a real gunicorn (sandbox
provider): the status is the board's, kept current live by the agent's stream whoever changes it
(a PBX push to the webhook, a status set elsewhere), and the queues the provider lists can be
joined; what the provider cannot list (501) is not offered."""

from __future__ import annotations

import json
import time

from ..pbx_webhooks import post_webhook
from .test_agent_page import sign_in
from .test_agent_workspace import api

NOT_RELOADED = "() => window.sameDocument === true"


def pushed(server: str, page, event: dict, shows: str) -> float:
    """Posts a cc_agent push and waits for the pill to show ``shows``; the seconds it took."""
    started = time.monotonic()
    assert post_webhook(server, event) == 202
    page.wait_for_selector(f"#agent-status.{shows}", timeout=1000)
    return time.monotonic() - started


def test_a_pbx_status_push_shows_within_a_second_without_a_reload(server, browser):
    page = browser.new_page()
    sign_in(page, server)
    page.evaluate("() => { window.sameDocument = true; }")
    assert page.inner_text("#agent-status") == "Status not set"

    took = [
        pushed(server, page, {"event": "agent:status", "user_id": 6000, "pause_id": 4}, "paused"),
        pushed(
            server, page, {"event": "agent:status", "user_id": 6000, "pause_id": 0}, "available"
        ),
        pushed(server, page, {"event": "agent:checkout", "user_id": 6000}, "offline"),
        pushed(server, page, {"event": "agent:checkin", "user_id": 6000}, "available"),
    ]

    assert all(seconds < 1.0 for seconds in took), took
    assert page.inner_text("#agent-status") == "Available"
    assert page.inner_text("#agent-status-since") == "just now"
    assert page.get_attribute("#agent-state [data-status=available]", "aria-pressed") == "true"
    assert page.get_attribute("#agent-state [data-status=offline]", "aria-pressed") == "false"
    assert page.evaluate(NOT_RELOADED)


def test_a_status_set_elsewhere_shows_live_and_another_agents_does_not(server, browser):
    page = browser.new_page()
    sign_in(page, server)
    page.evaluate("() => { window.sameDocument = true; }")

    assert api(server, "PUT", "/api/v1/agents/6001/status", {"status": "paused"})[0] == 200
    assert api(server, "PUT", "/api/v1/agents/6000/status", {"status": "offline"})[0] == 200
    page.wait_for_selector("#agent-status.offline", timeout=1000)

    assert page.inner_text("#agent-status") == "Offline"  # never 6001's paused
    assert page.evaluate(NOT_RELOADED)


def test_the_queues_the_provider_lists_are_offered_and_joined(server, browser):
    page = browser.new_page()
    sign_in(page, server)
    page.wait_for_selector("#queues[data-offered=yes] #queue-list input", timeout=3000)
    assert page.locator("#queue-list label").all_inner_texts() == ["Sales", "Support", "Billing"]

    page.get_by_label("Support").check()
    page.get_by_label("Billing").check()
    with page.expect_request(lambda r: r.method == "PUT" and r.url.endswith("/queues")) as sent:
        page.get_by_role("button", name="Save queues").click()
    page.wait_for_selector("#queues-result.ok", timeout=3000)

    assert json.loads(sent.value.post_data) == {"queue_ids": [2, 3]}
    assert page.inner_text("#queues-result") == "You are in Support, Billing."


def test_queues_are_not_offered_where_the_provider_lists_none(server, browser):
    page = browser.new_page()
    asked = []

    def unsupported(route):
        asked.append(route.request.url)
        route.fulfill(
            status=501,
            headers={"Content-Type": "application/problem+json"},
            body='{"code": "unsupported", "status": 501, "detail": "no queues"}',
        )

    page.route("**/api/v1/agents/6000/queues", unsupported)
    sign_in(page, server)
    page.wait_for_selector("#queues[data-offered=no]", state="attached", timeout=3000)

    assert len(asked) == 1
    assert page.locator("#queues").is_hidden()
    assert page.locator("#queue-list input").count() == 0
