"""Pages cannot be framed by another site, and answers that carry a credential or a caller's data
are never cached (contract section 4, operations; issue 21, finding 4); a stream asked of the main
port goes to the stream server when one is set (section 4, agents)."""

from __future__ import annotations

import pytest

from .conftest import API_KEY, TOKEN_SECRET

KEY = {"X-API-Key": API_KEY}
HTML = {"Accept": "text/html"}
PAGES = {
    "/agent": {},
    "/console": {},
    f"/click-to-call?to=0721234567&agent=6000&api_key={API_KEY}": HTML,
    f"/pop?phone=0721234567&api_key={API_KEY}": {},
}


def directives(policy: str) -> dict[str, str]:
    return {d.split()[0]: d.partition(" ")[2] for d in (p.strip() for p in policy.split(";"))}


@pytest.mark.parametrize("path", PAGES)
def test_every_page_forbids_framing_by_default(make_app, path):
    answer = make_app().test_client().get(path, headers=PAGES[path])

    assert answer.status_code in (200, 201)  # a click-to-call that placed its call is 201
    assert answer.mimetype == "text/html"
    policy = directives(answer.headers["Content-Security-Policy"])
    assert policy["frame-ancestors"] == "'none'"
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert policy["script-src"] == policy["style-src"] == "'self'"
    assert "unsafe-inline" not in answer.headers["Content-Security-Policy"]
    assert policy["default-src"] == "'none'"


@pytest.mark.parametrize("path", PAGES)
def test_configured_crm_origins_may_frame_the_pages(make_app, path):
    app = make_app(CTI_FRAME_ORIGINS="https://crm.example.com, https://crm2.example.com:8443")
    answer = app.test_client().get(path, headers=PAGES[path])

    policy = directives(answer.headers["Content-Security-Policy"])
    assert policy["frame-ancestors"] == "https://crm.example.com https://crm2.example.com:8443"
    assert "X-Frame-Options" not in answer.headers


def test_pages_hold_no_inline_script_or_style(make_app):
    """What the policy forbids is not in the pages: their scripts and styles are static files."""
    client = make_app().test_client()
    for path, headers in PAGES.items():
        page = client.get(path, headers=headers).get_data(as_text=True)
        assert "<style" not in page and " style=" not in page
        assert all("src=" in tag for tag in page.split("<script")[1:])
    for asset in ("agent.css", "agent.js", "card.css"):
        assert client.get(f"/static/{asset}").status_code == 200


def test_the_agent_page_may_open_its_streams_on_the_stream_server(make_app):
    app = make_app(CTI_STREAM_URL="http://127.0.0.1:8001")
    answer = app.test_client().get("/agent")

    connect = directives(answer.headers["Content-Security-Policy"])["connect-src"]
    assert connect.split() == ["'self'", "http://127.0.0.1:8001"]


@pytest.fixture
def data_client(make_app):
    return make_app(CTI_TOKEN_SECRET=TOKEN_SECRET).test_client()


@pytest.mark.parametrize(
    "method,path,headers",
    [
        ("POST", "/api/v1/agents/6000/token", KEY),
        ("GET", "/api/v1/contacts/lookup?phone=0721234567", KEY),
        ("GET", "/api/v1/contacts/lookup?phone=0721234567&format=text", KEY),
        ("GET", "/api/v1/contacts/lookup?phone=0721234567", {"Accept": "text/plain", **KEY}),
        ("GET", f"/pop?phone=0721234567&api_key={API_KEY}", {}),
        ("GET", "/api/v1/contacts/search?term=James", KEY),
        ("GET", "/api/v1/journal", KEY),
        ("GET", "/api/v1/agents/6000/events", KEY),
        ("GET", "/api/v1/contacts/lookup?phone=0721234567", {"X-API-Key": "wrong"}),
    ],
)
def test_answers_with_credentials_or_caller_data_are_not_stored(data_client, method, path, headers):
    answer = data_client.open(path, method=method, headers=headers)

    assert answer.status_code < 500
    assert answer.headers["Cache-Control"] == "no-store"


def test_public_answers_need_no_no_store(client):
    answer = client.get("/healthz")

    assert answer.status_code == 200
    assert "no-store" not in answer.headers.get("Cache-Control", "")


STREAM_URL = "http://streams.example.test:8001"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/agents/6000/events",
        "/api/v1/agents/6000/events?api_key=not-a-key&last_event_id=41",
        "/api/v1/agents/07602/events?api_key=a%2Bb%26c&x=%C3%A9&x=2",
        "/api/v1/board/events?api_key=not-a-key&last_event_id=7",
    ],
)
def test_a_stream_path_redirects_to_the_stream_server_with_its_path_and_query(make_app, path):
    client = make_app(CTI_STREAM_URL=STREAM_URL).test_client()

    answer = client.get(path)  # no credential, or a wrong one: checked where the stream is served

    assert answer.status_code == 307
    assert answer.headers["Location"] == STREAM_URL + path
    assert answer.get_data() == b""
    assert answer.headers["Cache-Control"] == "no-store"


def test_without_a_stream_server_the_stream_is_served_here(make_app):
    client = make_app().test_client()

    assert client.get("/api/v1/agents/6000/events").status_code == 401
    assert client.get("/api/v1/agents/6000/events", headers=KEY).status_code == 200


def test_only_stream_paths_are_redirected(make_app):
    client = make_app(CTI_STREAM_URL=STREAM_URL).test_client()

    assert client.get("/api/v1/agents/6000/calls").status_code == 401
    assert client.post("/api/v1/agents/6000/events", headers=KEY).status_code == 405
