"""Only a valid, allowed number reaches a dialer; everything else is a 4xx problem."""

from __future__ import annotations

import pytest

from .conftest import CC_AGENT_URL, DIALER_ENV


@pytest.fixture
def pbx(make_app, upstream):
    upstream.get(f"{CC_AGENT_URL}/api/cc_agent/originate", json={"Success": True, "uuid": "u"})
    return make_app(**DIALER_ENV["cc_agent"]).test_client()


@pytest.mark.parametrize(
    "to,status,code",
    [
        ("0900 123 456", 403, "destination_not_allowed"),  # ZA premium rate
        ("086 012 3456", 403, "destination_not_allowed"),  # ZA shared cost
        ("+44 20 7946 0958", 403, "destination_not_allowed"),  # foreign, not allowed
        ("0721234567&SIP/x", 422, "invalid_number"),
        ("072123456;drop", 422, "invalid_number"),
        ("0721234567\r\nX-Injected: 1", 422, "invalid_number"),
        ("call me maybe", 422, "invalid_number"),
        ("0800FLOWERS", 422, "invalid_number"),
        ("1" * 40, 422, "invalid_number"),
        ("", 422, "invalid_number"),
        ("12", 422, "invalid_number"),
        ("+27 12", 422, "invalid_number"),
    ],
)
def test_bad_destinations_never_reach_the_dialer(pbx, upstream, auth, to, status, code):
    response = pbx.post("/api/v1/calls", json={"to": to, "agent": "6000"}, headers=auth)

    assert response.status_code == status
    assert response.content_type == "application/problem+json"
    assert response.get_json()["code"] == code
    assert len(upstream.calls) == 0


@pytest.mark.parametrize(
    "body",
    [
        {"agent": "6000"},
        {"to": "0721234567"},
        {"to": 721234567, "agent": "6000"},
        {"to": "0721234567", "agent": "60 00"},
        {"to": "0721234567", "agent": "6000&x=1"},
        {"to": "0721234567", "agent": "6000", "surprise": 1},
        {"to": "0721234567", "agent": "6000", "lead_id": "a/b"},
        {"to": "0721234567", "agent": ["6000"]},
        ["0721234567"],
        "0721234567",
        None,
    ],
)
def test_malformed_bodies_are_validation_errors(pbx, upstream, auth, body):
    response = pbx.post("/api/v1/calls", json=body, headers=auth)

    assert response.status_code == 422
    problem = response.get_json()
    assert problem["code"] == "validation_error"
    assert isinstance(problem["errors"], dict)
    assert len(upstream.calls) == 0


def test_body_that_is_not_json_is_a_validation_error(pbx, upstream, auth):
    response = pbx.post(
        "/api/v1/calls", data=b"\xff\xfe{", headers={**auth, "Content-Type": "application/json"}
    )

    assert response.status_code == 422
    assert response.get_json()["code"] == "validation_error"


def test_body_over_64_kib_is_payload_too_large(pbx, upstream, auth):
    response = pbx.post(
        "/api/v1/calls",
        data="x" * (65 * 1024),
        headers={**auth, "Content-Type": "application/json"},
    )

    assert response.status_code == 413
    assert response.get_json()["code"] == "payload_too_large"


def test_allowed_countries_star_allows_any_region(make_app, upstream, auth):
    upstream.get(f"{CC_AGENT_URL}/api/cc_agent/originate", json={"Success": True, "uuid": "u"})
    client = make_app(**DIALER_ENV["cc_agent"], CTI_ALLOWED_COUNTRIES="*").test_client()

    response = client.post(
        "/api/v1/calls", json={"to": "+44 20 7946 0958", "agent": "6000"}, headers=auth
    )

    assert response.status_code == 201
    assert response.get_json()["dialed"] == "442079460958"


def test_premium_rate_is_refused_even_when_any_region_is_allowed(make_app, upstream, auth):
    client = make_app(**DIALER_ENV["cc_agent"], CTI_ALLOWED_COUNTRIES="*").test_client()

    response = client.post(
        "/api/v1/calls", json={"to": "+1 900 555 0199", "agent": "6000"}, headers=auth
    )

    assert response.status_code == 403
    assert len(upstream.calls) == 0


def test_click_to_call_link_answers_html_for_a_browser(client, auth):
    response = client.get(
        "/click-to-call?to=072%20123%204567&agent=6000",
        headers={**auth, "Accept": "text/html,application/xhtml+xml,*/*;q=0.8"},
    )

    assert response.status_code == 201
    assert response.content_type.startswith("text/html")
    assert "Calling +27 72 123 4567" in response.get_data(as_text=True)


def test_click_to_call_link_answers_json_otherwise(client, auth):
    response = client.get("/click-to-call?to=0721234567&agent=6000&api_key=" + auth["X-API-Key"])

    assert response.status_code == 201
    assert response.get_json()["to"] == "+27721234567"


def test_click_to_call_link_error_in_words_for_a_browser(client, auth):
    response = client.get(
        "/click-to-call?to=0900123456&agent=6000", headers={**auth, "Accept": "text/html"}
    )

    assert response.status_code == 403
    assert response.content_type.startswith("text/html")
    assert "premium-rate" in response.get_data(as_text=True)


def test_click_to_call_link_bad_number_is_json_problem_for_programs(client, auth):
    response = client.get("/click-to-call?to=abc&agent=6000", headers=auth)

    assert response.status_code == 422
    assert response.get_json()["code"] == "invalid_number"
