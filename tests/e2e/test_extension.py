"""The Manifest V3 extension, loaded into real Chromium: it opens the screen pop in a tab and
turns tel: links into click-to-call requests."""

from __future__ import annotations

import pytest

from ..conftest import API_KEY
from ..fakeserver import Answer, FakeServer
from .conftest import ring


@pytest.fixture
def crm():
    """A stand-in CRM web site: a contact page target and a page with a tel: link."""
    page = '<html><body><h1>Account</h1><a id="tel" href="tel:+27%2072%20123%204567">Call James</a></body></html>'
    with FakeServer(lambda seen: Answer(200, page, content_type="text/html")) as site:
        yield site


def configure(context, base, extension="6000", *, key=API_KEY, origins=()):
    worker = (
        context.service_workers[0]
        if context.service_workers
        else context.wait_for_event("serviceworker", timeout=10000)
    )
    extension_id = worker.url.split("/")[2]
    options = context.new_page()
    options.goto(f"chrome-extension://{extension_id}/options.html")
    # the saved values are read asynchronously: fill the form once they are in, not before
    options.wait_for_selector("#options[data-ready]")
    options.fill("#url", base)
    options.fill("#key", key)
    options.fill("#extension", extension)
    options.fill("#origins", "\n".join(origins))
    options.click("button[type=submit]")
    options.wait_for_selector("#saved:has-text('Saved')")
    return options


@pytest.fixture
def server_env(crm):
    """Screen pops go to the stand-in CRM's contact page."""
    return {"CTI_POP_CONTACT_URL": crm.url + "/contacts/{id}?type={entity_type}&phone={phone}"}


def test_extension_opens_the_screen_pop_tab_on_ring(crm, server, extension_context):
    # The service worker reads the callbacks once its stream has answered, and the stream
    # answers from the event log's newest event on: a ring sent after that request pops
    # (Playwright reports a service worker's requests with the setting conftest.py makes).
    with extension_context.expect_event("request", lambda sent: "/api/v1/callbacks" in sent.url):
        configure(extension_context, server)

    with extension_context.expect_page(timeout=5000) as opened:
        ring(server, "ext-call-1")
    tab = opened.value
    tab.wait_for_load_state()

    assert tab.url.startswith(crm.url + "/contacts/2916509f-f188-42d8-ab0e-a27bcb20d70d?")
    assert "type=Account" in tab.url
    assert "phone=%2B27721234567" in tab.url
    assert any(seen.path.startswith("/contacts/") for seen in crm.seen)


def test_extension_turns_tel_links_into_click_to_call(crm, server, extension_context):
    configure(extension_context, server, origins=[crm.url])
    page = extension_context.new_page()
    page.goto(crm.url + "/account/1")
    page.once("dialog", lambda dialog: dialog.accept())  # the agent confirms the number

    page.click("#tel")

    toast = page.wait_for_selector(".cti-toast", timeout=5000)
    assert "Calling +27721234567" in toast.inner_text()
