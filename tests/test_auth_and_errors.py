"""Authentication and the one error shape."""

from __future__ import annotations

import pytest

from middleware.auth import Credentials

from .conftest import API_KEY, TOKEN_SECRET

CALL = {"to": "0721234567", "agent": "6000"}


@pytest.mark.parametrize(
    "headers,query",
    [
        ({"X-API-Key": API_KEY}, ""),
        ({"Authorization": f"Bearer {API_KEY}"}, ""),
        ({}, f"?api_key={API_KEY}"),
    ],
)
def test_key_is_accepted_in_header_bearer_or_query(client, headers, query):
    response = client.post("/api/v1/calls" + query, json=CALL, headers=headers)

    assert response.status_code == 201


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-API-Key": "wrong"},
        {"Authorization": "Bearer wrong"},
        {"Authorization": API_KEY},
        {"X-API-Key": API_KEY + "x"},
    ],
)
def test_missing_or_wrong_key_is_unauthorized(client, headers):
    response = client.post("/api/v1/calls", json=CALL, headers=headers)

    assert response.status_code == 401
    assert response.content_type == "application/problem+json"
    problem = response.get_json()
    assert problem["code"] == "unauthorized"
    assert set(problem) == {"type", "title", "status", "detail", "code"}
    assert API_KEY not in response.get_data(as_text=True)


def test_several_keys_are_accepted(make_app):
    client = make_app(CTI_API_KEYS="first-key-aaa, second-key-bbb").test_client()

    assert (
        client.post("/api/v1/calls", json=CALL, headers={"X-API-Key": "second-key-bbb"}).status_code
        == 201
    )
    assert (
        client.post("/api/v1/calls", json=CALL, headers={"X-API-Key": API_KEY}).status_code == 401
    )


def test_without_configured_keys_everything_protected_is_401(make_app, caplog):
    client = make_app(CTI_API_KEYS=None).test_client()

    assert client.post("/api/v1/calls", json=CALL, headers={"X-API-Key": ""}).status_code == 401
    assert client.get("/click-to-call?to=0721234567&agent=6000&api_key=").status_code == 401
    assert "CTI_API_KEYS is not set" in caplog.text


def test_without_configured_keys_lookup_keys_and_agent_tokens_are_401_too(make_app, caplog):
    """Contract, section 1: unset, *every* protected endpoint answers 401, whatever is presented."""
    token = Credentials(token_secret=TOKEN_SECRET).issue("6000")[0]
    client = make_app(
        CTI_API_KEYS=None, CTI_LOOKUP_KEYS="pbx-key", CTI_TOKEN_SECRET=TOKEN_SECRET
    ).test_client()

    lookup = "/api/v1/contacts/lookup?phone=0721234567"
    assert client.get(lookup, headers={"X-API-Key": "pbx-key"}).status_code == 401
    assert client.get(lookup, headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert client.get("/api/v1/agents/6000/calls", headers={"X-API-Key": token}).status_code == 401
    assert "CTI_LOOKUP_KEYS and agent tokens are refused too" in caplog.text


def test_health_needs_no_key(client):
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_unknown_route_is_not_found_problem(client):
    response = client.get("/api/v1/nothing-here")

    assert response.status_code == 404
    assert response.content_type == "application/problem+json"
    assert response.get_json()["code"] == "not_found"


def test_wrong_method_is_method_not_allowed_problem(client):
    response = client.delete("/api/v1/calls")

    assert response.status_code == 405
    assert response.get_json()["code"] == "method_not_allowed"
    assert "POST" in response.headers["Allow"]


def test_unexpected_exception_is_a_problem_without_internals(make_app, auth, caplog):
    app = make_app()

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals /etc/passwd")

    response = app.test_client().get("/boom", headers=auth)

    assert response.status_code == 500
    assert response.content_type == "application/problem+json"
    assert "internals" not in response.get_data(as_text=True)
    assert "unexpected error" in caplog.text
