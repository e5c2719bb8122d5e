"""Supervisor tokens (contract section 2): issued by a full key for a named supervisor, the same
signing and lifetime as agent tokens; they watch and follow up, and never dial or act as an agent.
A token that outlives CTI_TOKEN_TTL is refused whoever signed it (outside probe, finding 7)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import jwt
import pytest

from .conftest import API_KEY, TOKEN_SECRET

KEY = {"X-API-Key": API_KEY}


@pytest.fixture
def settings():
    return {"CTI_TOKEN_SECRET": TOKEN_SECRET, "CTI_TOKEN_TTL": "600"}


def supervisor(client, name: str = "Thandi") -> str:
    answer = client.post("/api/v1/supervisors/token", headers=KEY, json={"name": name})
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["token"]


def test_a_full_key_issues_a_supervisor_token_valid_for_the_ttl(client):
    before = time.time()
    answer = client.post("/api/v1/supervisors/token", headers=KEY, json={"name": "Thandi Nkosi"})

    assert answer.status_code == 201
    body = answer.get_json()
    assert set(body) == {"token", "name", "expires_at"}
    assert body["name"] == "Thandi Nkosi"
    expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert expires.tzinfo == UTC
    assert before + 600 - 2 <= expires.timestamp() <= time.time() + 600
    claims = jwt.decode(body["token"], TOKEN_SECRET, algorithms=["HS256"])
    assert (claims["sub"], claims["scope"]) == ("Thandi Nkosi", "supervisor")


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": "x" * 101}, {"name": 7}])
def test_a_supervisor_name_is_1_to_100_characters(client, body):
    answer = client.post("/api/v1/supervisors/token", headers=KEY, json=body)

    assert answer.status_code == 422
    assert answer.get_json()["code"] == "validation_error"
    assert "name" in answer.get_json()["errors"]


def test_a_name_of_100_characters_is_taken(client):
    assert supervisor(client, "x" * 100)


def test_without_a_token_secret_supervisor_tokens_are_unsupported(make_app):
    client = make_app().test_client()

    answer = client.post("/api/v1/supervisors/token", headers=KEY, json={"name": "Thandi"})

    assert answer.status_code == 501
    assert answer.get_json()["code"] == "unsupported"


def test_a_supervisor_token_may_not_issue_tokens_or_place_calls(client):
    token = {"Authorization": f"Bearer {supervisor(client)}"}

    for method, path, body in (
        ("POST", "/api/v1/supervisors/token", {"name": "Other"}),
        ("POST", "/api/v1/agents/6000/token", None),
        ("POST", "/api/v1/calls", {"to": "0721234567", "agent": "6000"}),
        ("PUT", "/api/v1/agents/6000/status", {"status": "available"}),
    ):
        answer = client.open(path, method=method, json=body, headers=token)
        assert answer.status_code == 403, path
        assert answer.get_json()["code"] == "forbidden"


def test_a_supervisor_token_reads_the_whole_journal(client):
    token = {"Authorization": f"Bearer {supervisor(client)}"}

    assert client.get("/api/v1/journal", headers=token).status_code == 200
    assert client.get("/api/v1/journal?agent=6001", headers=token).status_code == 200


def test_a_token_signed_for_longer_than_the_ttl_is_refused(client):
    now = int(time.time())
    for scope in ("agent", "supervisor"):
        claims = {"sub": "6000", "scope": scope, "iat": now, "exp": now + 10**9}
        forged = jwt.encode(claims, TOKEN_SECRET, algorithm="HS256")

        answer = client.get("/api/v1/journal?agent=6000", headers={"X-API-Key": forged})

        assert answer.status_code == 401
        assert answer.get_json()["code"] == "unauthorized"


def test_a_token_of_an_unknown_scope_is_refused(client):
    now = int(time.time())
    claims = {"sub": "6000", "scope": "admin", "iat": now, "exp": now + 60}
    forged = jwt.encode(claims, TOKEN_SECRET, algorithm="HS256")

    answer = client.get("/api/v1/journal", headers={"X-API-Key": forged})

    assert answer.status_code == 401


def test_the_cli_prints_a_supervisor_token(make_app):
    app = make_app(CTI_TOKEN_SECRET=TOKEN_SECRET)

    result = app.test_cli_runner().invoke(args=["supervisor", "token", "Thandi"])

    assert result.exit_code == 0, result.output
    claims = jwt.decode(result.output.strip(), TOKEN_SECRET, algorithms=["HS256"])
    assert (claims["sub"], claims["scope"]) == ("Thandi", "supervisor")


def test_the_cli_says_why_it_cannot_issue(make_app):
    result = make_app().test_cli_runner().invoke(args=["supervisor", "token", "Thandi"])

    assert result.exit_code == 1
    assert "CTI_TOKEN_SECRET" in result.output
