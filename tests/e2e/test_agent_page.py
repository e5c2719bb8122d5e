"""The /agent page in real headless Chromium: live screen pops and the dial box."""

from __future__ import annotations

import os
import time
from pathlib import Path

from ..conftest import API_KEY
from .conftest import ring

SCREENSHOT = os.environ.get("E2E_SCREENSHOT")  # e.g. docs/agent-page.png


def sign_in(page, base, extension="6000"):
    page.goto(base + "/agent")
    page.fill("#extension", extension)
    page.fill("#api-key", API_KEY)
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_selector("#status.online", timeout=5000)


def test_agent_page_shows_the_pop_within_a_second_of_the_ring(server, browser):
    page = browser.new_page()
    sign_in(page, server)

    started = time.monotonic()
    assert ring(server, "e2e-call-1") == 202
    page.wait_for_selector("#pops .pop", timeout=1000)
    elapsed = time.monotonic() - started

    pop = page.locator("#pops .pop").first
    assert pop.locator(".pop-name").inner_text() == "James May"
    assert pop.locator(".pop-company").inner_text() == "My Company name"
    assert pop.locator(".pop-phone").inner_text() == "+27721234567"
    assert pop.get_attribute("data-call-id") == "e2e-call-1"
    assert "/pop?" in pop.locator(".open-crm").get_attribute("href")
    assert elapsed < 1.0
    if SCREENSHOT:  # with a journal row too: a sandbox call rings, ends and is logged
        page.fill("#dial-number", "082 555 0101")
        page.click("#dial-form button")
        page.wait_for_timeout(4500)
        page.click("#refresh-calls")
        page.wait_for_selector("#calls tbody tr")
        page.set_viewport_size({"width": 1100, "height": 1000})
        page.wait_for_timeout(300)
        Path(SCREENSHOT).parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOT, full_page=True)


def test_unknown_caller_pop_offers_to_create_the_contact(server, browser):
    page = browser.new_page()
    sign_in(page, server)

    ring(server, "e2e-call-2", number="0829876543")
    page.wait_for_selector("#pops .pop.unknown", timeout=2000)
    # what the number tells by itself (number_info)
    assert page.locator("#pops .pop.unknown .pop-company").inner_text() == (
        "Mobile, South Africa, Vodacom"
    )
    form = page.locator("#pops .pop.unknown .create-contact")
    form.locator("input[name=first_name]").fill("Nomsa")
    form.locator("input[name=last_name]").fill("Dlamini")
    form.locator("button").click()

    page.wait_for_selector("#pops .create-result.ok", timeout=3000)
    assert "Nomsa" in form.locator(".create-result").inner_text()


def test_dial_box_places_a_sandbox_call_and_the_call_pops(server, browser):
    page = browser.new_page()
    sign_in(page, server)

    page.fill("#dial-number", "072 123 4567")
    page.click("#dial-form button")

    page.wait_for_selector("#dial-result.ok", timeout=3000)
    assert "Calling +27721234567" in page.inner_text("#dial-result")
    page.wait_for_selector("#pops .pop", timeout=3000)  # the sandbox plays the call's ring
    assert page.locator("#pops .pop .pop-name").first.inner_text() == "James May"


def test_wrong_key_is_refused_at_sign_in(server, browser):
    page = browser.new_page()
    page.goto(server + "/agent")
    page.fill("#extension", "6000")
    page.fill("#api-key", "not-the-key")
    page.click("#sign-in-form button[type=submit]")

    page.wait_for_selector("#sign-in-error:not([hidden])", timeout=3000)
    assert page.locator("#desk").is_hidden()
