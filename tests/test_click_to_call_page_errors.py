"""``GET /click-to-call`` answers every failure as its HTML page (the error in words) when the
client prefers ``text/html``, whatever refused it: the credential check before the view, the
``Idempotency-Key`` check around it, the queue wait, the rate window, the query itself (a field
name that is not UTF-8 too, never a 500). A JSON client still gets problem+json."""

from __future__ import annotations

import time

import pytest

from .conftest import API_KEY, LOOKUP_KEY

HTML = {"Accept": "text/html"}
BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
LINK = "/click-to-call?to=0721234567&agent=6000"


@pytest.fixture
def settings():
    return {"CTI_LOOKUP_KEYS": LOOKUP_KEY}


def assert_error_page(response, status: int, *words: str) -> str:
    """The page of a refused click: the status, HTML, the error in words, no credential."""
    assert response.status_code == status
    assert response.content_type == "text/html; charset=utf-8"
    page = response.get_data(as_text=True)
    assert page.lstrip().lower().startswith("<!doctype html>")
    assert "Call not placed" in page
    assert f"({status})" in page
    for word in words:
        assert word in page
    assert API_KEY not in page
    assert LOOKUP_KEY not in page
    assert "Content-Security-Policy" in response.headers
    return page


def test_a_wrong_api_key_is_a_page_saying_so(client):
    response = client.get(f"{LINK}&api_key=wrong-key-0000", headers=HTML)

    page = assert_error_page(response, 401, "Unauthorized", "A valid API key or agent token")
    assert "wrong-key-0000" not in page


def test_no_credential_at_all_is_a_page_for_a_browser(client):
    response = client.get(LINK, headers=BROWSER)

    assert_error_page(response, 401, "Unauthorized")


def test_a_lookup_key_is_a_forbidden_page(client):
    response = client.get(f"{LINK}&api_key={LOOKUP_KEY}", headers=HTML)

    assert_error_page(response, 403, "Forbidden", "A lookup key may only look callers up")


def test_a_reused_idempotency_key_with_another_query_is_a_page(client):
    key = {"Idempotency-Key": "crm-click-1"}
    first = client.get(f"{LINK}&api_key={API_KEY}", headers={**HTML, **key})
    assert first.status_code == 201

    response = client.get(
        f"/click-to-call?to=0827654321&agent=6000&api_key={API_KEY}", headers={**HTML, **key}
    )

    assert_error_page(response, 422, "used with a different request", "Idempotency-Key")


def test_a_field_name_that_is_not_utf8_is_a_422_page_not_a_500(client):
    response = client.get(f"{LINK}&api_key={API_KEY}&%ff=1", headers=HTML)

    page = assert_error_page(response, 422, "Validation failed", "Unknown field.")
    assert "\ufffd" in page  # the name, readable: the bad byte shown as the replacement character
    response.get_data().decode("utf-8")  # strictly UTF-8


def test_a_request_that_queued_too_long_is_a_busy_page_with_retry_after(client):
    stamp = {"X-Request-Start": f"t={time.time() - 30:.3f}"}

    response = client.get(f"{LINK}&api_key={API_KEY}", headers={**HTML, **stamp})

    assert_error_page(response, 503, "nothing was done")
    assert response.headers["Retry-After"] == "1"


def test_over_the_call_rate_is_a_page_with_retry_after(make_app):
    client = make_app(CTI_CALL_RATE="1/minute").test_client()
    assert client.get(f"{LINK}&api_key={API_KEY}", headers=HTML).status_code == 201

    response = client.get(
        f"/click-to-call?to=0827654321&agent=6000&api_key={API_KEY}", headers=HTML
    )

    assert_error_page(response, 429, "Too many calls")
    assert 1 <= int(response.headers["Retry-After"]) <= 60


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("&api_key=wrong-key-0000", 401, "unauthorized"),
        (f"&api_key={LOOKUP_KEY}", 403, "forbidden"),
        (f"&api_key={API_KEY}&%ff=1", 422, "validation_error"),
    ],
)
def test_a_json_client_still_gets_problem_json(client, query, status, code):
    response = client.get(LINK + query)

    assert response.status_code == status
    assert response.content_type == "application/problem+json"
    assert response.get_json()["code"] == code


def test_a_json_client_reusing_an_idempotency_key_still_gets_problem_json(client):
    key = {"Idempotency-Key": "crm-click-2", "Accept": "application/json"}
    assert client.get(f"{LINK}&api_key={API_KEY}", headers=key).status_code == 201

    response = client.get(f"/click-to-call?to=0827654321&agent=6000&api_key={API_KEY}", headers=key)

    assert response.status_code == 422
    assert response.content_type == "application/problem+json"
    assert response.get_json()["code"] == "validation_error"
