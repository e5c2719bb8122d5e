"""Agent tokens in real Chromium: the /agent page signed in with a token acts as its one agent, and
the extension dials only on the agent's own confirmed click on the CRM's site."""

from __future__ import annotations

import pytest

from devtools.waiting import wait_until

from ..conftest import DIALER_ENV, TELEPHONY_TOKEN, TOKEN_SECRET
from ..fakeserver import Answer, FakeServer
from .conftest import api
from .test_extension import configure

# A page's script clicking the tel: link, whose default (the number handed to the desktop's tel:
# handler) the page cancels itself. The extension's listener, on the document in the capture phase,
# sees the click first and untouched. Left to the browser, the launch raced the test: Chromium lets
# a launch without a user gesture through unless another launch came after the last input event
# in any tab, and once one went through the page dropped the agent's next click (its mouse events
# acknowledged at once, no click): how the test failed now and then, and in 2 runs of 3 when a key
# was pressed before the script's click.
SCRIPT_CLICK = """() => {
  const link = document.querySelector('#tel');
  link.addEventListener('click', (event) => event.preventDefault(), { once: true });
  link.click();
}"""
TEL_PAGE = '<html><body><h1>Account</h1><a id="tel" href="tel:+27%2072%20123%204567">Call James</a></body></html>'


def issue(base: str, agent: str) -> str:
    status, body = api(base, "POST", f"/api/v1/agents/{agent}/token")
    assert status == 201
    return body["token"]


@pytest.fixture
def dialer():
    """cc_agent's originate, counted: what the extension's clicks place."""
    with FakeServer(
        lambda seen: Answer(200, {"success": True, "uuid": f"u-{len(seen.path)}"})
    ) as pbx:
        yield pbx


@pytest.fixture
def crm():
    with FakeServer(lambda seen: Answer(200, TEL_PAGE, content_type="text/html")) as site:
        yield site


@pytest.fixture
def elsewhere():
    """Another origin (another port) serving the same page with a tel: link."""
    with FakeServer(lambda seen: Answer(200, TEL_PAGE, content_type="text/html")) as site:
        yield site


def telephony_answer(seen) -> Answer:
    if "/getcalls/" in seen.path:
        call = {"CallId": "c-77", "PhoneNumber": "0721234567", "CustomerName": "James May"}
        return Answer(200, {"Success": True, "Data": [call]})
    if "/resultcodes/" in seen.path:
        return Answer(200, {"Success": True, "Data": [{"Code": "SALE", "Description": "Sale"}]})
    return Answer(200, {"Success": True, "Data": {}})


@pytest.fixture
def telephony():
    """telephony's agent remote control: one call in progress for agent 6000."""
    with FakeServer(telephony_answer) as fake:
        yield fake


@pytest.fixture
def server_env(request):
    env = {"CTI_TOKEN_SECRET": TOKEN_SECRET}
    if "telephony" in request.fixturenames:
        fake = request.getfixturevalue("telephony")
        env.update(
            {
                "CTI_AGENT_PROVIDER": "telephony",
                "CTI_TELEPHONY_URL": fake.url,
                "CTI_TELEPHONY_TOKEN": TELEPHONY_TOKEN,
            }
        )
    if "dialer" in request.fixturenames:
        env.update(DIALER_ENV["cc_agent"], CTI_CC_AGENT_URL=request.getfixturevalue("dialer").url)
    return env


def test_the_page_signed_in_with_a_token_calls_for_its_agent_and_gets_its_pop(server, browser):
    token = issue(server, "6000")
    page = browser.new_page()

    page.goto(f"{server}/agent#agent=6000&token={token}")  # the link `make run` prints
    page.wait_for_selector("#status.online", timeout=5000)

    assert token not in page.url  # the fragment is wiped from the address bar
    assert page.inner_text("#ext-label") == "6000"
    page.fill("#dial-number", "072 123 4567")
    page.click("#dial-form button")
    page.wait_for_selector("#dial-result.ok", timeout=3000)
    assert "Calling +27721234567" in page.inner_text("#dial-result")
    page.wait_for_selector("#pops .pop", timeout=3000)  # the sandbox rings agent 6000
    assert page.locator("#pops .pop .pop-name").first.inner_text() == "James May"
    # The sandbox offers status and call control: the page shows them.
    page.click("#agent-state [data-status=paused]")
    page.wait_for_selector("#agent-state-result.ok", timeout=3000)
    assert page.inner_text("#agent-state-result") == "You are paused."
    assert page.locator("#active-calls").is_visible()


def test_a_token_of_another_agent_cannot_open_the_stream_and_the_page_says_why(server, browser):
    token = issue(server, "6001")
    page = browser.new_page()
    page.goto(server + "/agent")
    page.fill("#extension", "6000")
    page.fill("#api-key", token)
    page.click("#sign-in-form button[type=submit]")

    page.wait_for_selector("#sign-in-error:not([hidden])", timeout=5000)
    assert "acts as agent 6001 only" in page.inner_text("#sign-in-error")
    assert page.locator("#desk").is_hidden()
    status = page.evaluate(
        "(token) => fetch('/api/v1/agents/6000/events', {headers: {'X-API-Key': token}})"
        ".then((r) => r.status)",
        token,
    )
    assert status == 403


def test_the_page_controls_its_calls_and_hides_what_the_provider_lacks(telephony, server, browser):
    token = issue(server, "6000")
    page = browser.new_page()
    page.goto(f"{server}/agent#agent=6000&token={token}")
    page.wait_for_selector("#active-list .active-call", timeout=5000)

    call = page.locator("#active-list .active-call").first
    assert call.locator(".active-number").inner_text() == "+27721234567"
    call.locator("[data-action=hold]").click()
    page.wait_for_selector("#active-result.ok", timeout=3000)
    call.locator("select").select_option("SALE")
    call.locator("form.dispose button").click()
    page.wait_for_function(
        "() => document.querySelector('#active-result').textContent.startsWith('dispose')"
    )
    page.click("#agent-state [data-status=paused]")  # telephony has no pause: 501, hidden
    page.wait_for_selector("#agent-state [data-status=paused]", state="hidden", timeout=3000)
    page.click("#agent-state [data-status=available]")
    page.wait_for_selector("#agent-state-result.ok", timeout=3000)

    paths = [seen.path.split("/")[4:] for seen in telephony.seen]  # [method, "user", id, ...]
    assert ["hold", "user", "6000", "call", "c-77"] in paths
    dispose = [seen for seen in telephony.seen if "/dispose/" in seen.path]
    assert [seen.query["resultcode"] for seen in dispose] == ["SALE"]
    assert ["goready", "user", "6000"] in paths
    assert page.locator("#agent-state [data-status=available]").is_visible()


def test_the_pages_recent_calls_are_only_its_agents(server, browser):
    token = issue(server, "6000")
    assert api(server, "POST", "/api/v1/calls", {"to": "0721234567", "agent": "6000"})[0] == 201
    assert api(server, "POST", "/api/v1/calls", {"to": "0825550101", "agent": "6001"})[0] == 201
    logged = lambda: [  # noqa: E731 - the sandbox logs both once their legs have settled
        e for e in api(server, "GET", "/api/v1/journal")[1]["entries"] if e["status"] != "pending"
    ]
    wait_until(
        lambda: len(logged()) >= 2, 15, "the sandbox calls were not journalled", interval=0.2
    )
    page = browser.new_page()
    page.goto(f"{server}/agent#agent=6000&token={token}")
    page.wait_for_selector("#status.online", timeout=5000)

    page.wait_for_selector("#calls tbody tr", timeout=3000)

    numbers = page.locator("#calls tbody tr td:nth-child(3)").all_inner_texts()
    assert numbers == ["+27721234567"]


def test_the_extension_dials_only_a_confirmed_real_click_on_the_crm(
    dialer, crm, elsewhere, server, extension_context
):
    configure(extension_context, server, key=issue(server, "6000"), origins=[crm.url])
    dialogs = []

    def answer(dialog):
        print("dialog", dialog.message)  # beside the browser's events in a failure's report
        dialogs.append(dialog.message)
        if len(dialogs) == 1:
            dialog.dismiss()  # the agent thinks again
        else:
            dialog.accept()

    other = extension_context.new_page()
    other.on("dialog", answer)
    other.goto(elsewhere.url + "/phishing")
    other.evaluate(SCRIPT_CLICK)  # a script's click, other origin
    page = extension_context.new_page()
    page.on("dialog", answer)
    page.goto(crm.url + "/account/1")
    page.evaluate(SCRIPT_CLICK)  # a script's click on the CRM
    assert dialogs == []  # neither script click asked anything

    page.click("#tel")  # the agent's click: asked, and declined
    assert dialogs == ["Call +27 72 123 4567 from your extension?"]
    page.click("#tel")  # asked again, and confirmed

    toast = page.wait_for_selector(".cti-toast", timeout=5000)
    assert "Calling +27721234567" in toast.inner_text()
    assert len(dialogs) == 2
    assert [seen.path for seen in dialer.seen] == ["/api/cc_agent/originate"]
    assert dialer.seen[0].query["extension"] == "6000"
    assert other.locator(".cti-toast").count() == 0
