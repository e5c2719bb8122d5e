"""Agent tokens (contract section 2): issued to one agent by a full key, they act as that agent only,
are checked without the store, and a refused request claims nothing (rate limit, dedupe)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import jwt
import pytest

from middleware.auth import Credentials, stream_principal
from middleware.errors import Forbidden, Unauthorized
from middleware.settings import SettingsError, load_settings

from .conftest import API_KEY, CC_AGENT_KEY, LOOKUP_KEY, TOKEN_SECRET
from .fakeserver import Answer, FakeServer

KEY = {"X-API-Key": API_KEY}


@pytest.fixture
def token_app(make_app):
    return make_app(CTI_TOKEN_SECRET=TOKEN_SECRET, CTI_LOOKUP_KEYS=LOOKUP_KEY)


def issue(client, agent: str = "6000") -> str:
    answer = client.post(f"/api/v1/agents/{agent}/token", headers=KEY)
    assert answer.status_code == 201
    return answer.get_json()["token"]


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_a_full_key_issues_a_token_for_one_agent_valid_for_the_ttl(make_app):
    client = make_app(CTI_TOKEN_SECRET=TOKEN_SECRET, CTI_TOKEN_TTL="600").test_client()

    before = time.time()
    answer = client.post("/api/v1/agents/6000/token", headers=KEY)

    assert answer.status_code == 201
    body = answer.get_json()
    assert set(body) == {"token", "agent", "expires_at"}
    assert body["agent"] == "6000"
    assert body["expires_at"].endswith("Z")
    expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert expires.tzinfo == UTC
    assert before + 600 - 2 <= expires.timestamp() <= time.time() + 600
    claims = jwt.decode(body["token"], TOKEN_SECRET, algorithms=["HS256"])
    assert claims["sub"] == "6000"
    assert claims["scope"] == "agent"
    assert claims["exp"] == int(expires.timestamp())


def test_only_a_full_key_issues_tokens(token_app):
    client = token_app.test_client()
    token = issue(client)

    assert client.post("/api/v1/agents/6000/token", headers=bearer(token)).status_code == 403
    lookup = client.post("/api/v1/agents/6000/token", headers={"X-API-Key": LOOKUP_KEY})
    assert lookup.status_code == 403
    assert lookup.get_json()["code"] == "forbidden"
    assert client.post("/api/v1/agents/6000/token").status_code == 401


def test_without_a_token_secret_no_token_is_issued_or_accepted(make_app):
    client = make_app().test_client()

    answer = client.post("/api/v1/agents/6000/token", headers=KEY)
    assert answer.status_code == 501
    assert answer.get_json()["code"] == "unsupported"
    assert client.post("/api/v1/agents/60%2000/token", headers=KEY).status_code == 422

    forged = jwt.encode({"sub": "6000", "scope": "agent", "exp": time.time() + 60}, "x" * 32)
    assert client.get("/api/v1/agents/6000/calls", headers=bearer(forged)).status_code == 401


@pytest.mark.parametrize("way", ["header", "bearer", "query"])
def test_a_token_is_presented_in_any_of_the_three_ways(token_app, way):
    client = token_app.test_client()
    token = issue(client)
    headers = {"header": {"X-API-Key": token}, "bearer": bearer(token), "query": {}}[way]
    query = f"?api_key={token}" if way == "query" else ""

    answer = client.post(
        "/api/v1/calls" + query, json={"to": "0721234567", "agent": "6000"}, headers=headers
    )

    assert answer.status_code == 201
    assert answer.get_json()["agent"] == "6000"


SOON = "soon"  # replaced by a time ten minutes ahead


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # HS512, our secret
@pytest.mark.parametrize(
    "claims,algorithm",
    [
        ({"sub": "6000", "scope": "agent"}, "HS256"),  # no exp
        ({"scope": "agent", "exp": SOON}, "HS256"),  # no sub
        ({"sub": "6000", "exp": SOON}, "HS256"),  # no scope
        ({"sub": "6000", "scope": "admin", "exp": SOON}, "HS256"),  # another scope
        ({"sub": 6000, "scope": "agent", "exp": SOON}, "HS256"),  # sub not a string
        ({"sub": "6000", "scope": "agent", "exp": SOON}, "HS512"),  # another algorithm
        ({"sub": "6000", "scope": "agent", "exp": SOON}, "none"),
    ],
)
def test_a_token_not_made_by_us_answers_401(token_app, claims, algorithm):
    client = token_app.test_client()
    claims = {k: int(time.time()) + 600 if v == SOON else v for k, v in claims.items()}
    token = jwt.encode(claims, None if algorithm == "none" else TOKEN_SECRET, algorithm=algorithm)

    answer = client.get("/api/v1/agents/6000/calls", headers=bearer(token))

    assert answer.status_code == 401
    assert answer.get_json()["code"] == "unauthorized"


def test_a_token_acts_only_as_its_agent_and_never_with_a_caller_id(token_app):
    client = token_app.test_client()
    headers = bearer(issue(client))

    as_other = client.post(
        "/api/v1/calls", json={"to": "0721234567", "agent": "6099"}, headers=headers
    )
    spoofed = client.post(
        "/api/v1/calls",
        json={"to": "0721234567", "agent": "6000", "caller_id": "0215550000"},
        headers=headers,
    )
    link = client.get(
        "/click-to-call?to=0721234567&agent=6000&caller_id=0215550000", headers=headers
    )
    nameless = client.post("/api/v1/calls", json={"to": "0721234567"}, headers=headers)
    not_json = client.post("/api/v1/calls", data="agent=6000", headers=headers)

    for answer in (as_other, spoofed, link, nameless, not_json):
        assert answer.status_code == 403
        assert answer.get_json()["code"] == "forbidden"
    assert "6000" in as_other.get_json()["detail"]
    assert "caller_id" in spoofed.get_json()["detail"]
    full = client.post(
        "/api/v1/calls",
        json={"to": "0721234567", "agent": "6099", "caller_id": "0215550000"},
        headers=KEY,
    )
    assert full.status_code == 201


def test_a_token_lists_only_its_own_journal(token_app):
    client = token_app.test_client()
    headers = bearer(issue(client))

    assert client.get("/api/v1/journal", headers=headers).status_code == 403
    assert client.get("/api/v1/journal?agent=6001", headers=headers).status_code == 403
    assert client.get("/api/v1/journal?limit=1000", headers=headers).status_code == 403
    assert client.post("/api/v1/journal/1/retry", headers=headers).status_code == 403


def test_refused_calls_claim_no_rate_limit_dedupe_or_idempotency_and_dial_nothing(make_app):
    with FakeServer(lambda seen: Answer(200, {"success": True, "uuid": "u-1"})) as pbx:
        app = make_app(
            CTI_TOKEN_SECRET=TOKEN_SECRET,
            CTI_DIALER="cc_agent",
            CTI_CC_AGENT_URL=pbx.url,
            CTI_CC_AGENT_API_KEY=CC_AGENT_KEY,
            CTI_CALL_RATE="1/minute",
        )
        client = app.test_client()
        intruder = bearer(issue(client, "6001"))
        call = {"to": "0721234567", "agent": "6000"}
        for n in range(25):
            answer = client.post(
                "/api/v1/calls", json=call, headers={**intruder, "Idempotency-Key": f"k-{n % 2}"}
            )
            assert answer.status_code == 403
        assert pbx.seen == []

        owner = client.post(
            "/api/v1/calls",
            json=call,
            headers={**bearer(issue(client, "6000")), "Idempotency-Key": "k-0"},
        )

        assert owner.status_code == 201  # not a replay, not rate-limited: nothing was claimed
        assert "Idempotent-Replayed" not in owner.headers
        assert len(pbx.seen) == 1


def test_another_agents_token_gets_403_from_the_stream_before_it_starts(token_app):
    client = token_app.test_client()
    headers = bearer(issue(client, "6001"))

    answer = client.get("/api/v1/agents/6000/events", headers=headers, buffered=False)

    assert answer.status_code == 403
    assert answer.mimetype == "application/problem+json"
    assert "6001" in answer.get_json()["detail"]
    own = client.get("/api/v1/agents/6001/events", headers=headers, buffered=False)
    assert own.status_code == 200
    own.close()


def test_stream_principal_checks_the_stream_without_a_flask_request():
    credentials = Credentials((API_KEY,), (LOOKUP_KEY,), TOKEN_SECRET, 600)
    token, _ = credentials.issue("6000")

    assert stream_principal(credentials, "6000", api_key=token).agent == "6000"
    assert stream_principal(credentials, "6000", authorization=f"Bearer {token}").kind == "agent"
    assert stream_principal(credentials, "6001", x_api_key=API_KEY).kind == "full"
    with pytest.raises(Forbidden):
        stream_principal(credentials, "6001", x_api_key=token)
    with pytest.raises(Forbidden):
        stream_principal(credentials, "6000", x_api_key=LOOKUP_KEY)
    with pytest.raises(Unauthorized):
        stream_principal(credentials, "6000", x_api_key=token + "x")
    with pytest.raises(Unauthorized):
        stream_principal(credentials, "6000")


def test_a_lookup_key_only_looks_callers_up(token_app):
    client = token_app.test_client()
    key = {"X-API-Key": LOOKUP_KEY}

    assert client.get("/api/v1/contacts/lookup?phone=0721234567", headers=key).status_code == 200
    assert client.get(f"/pop?phone=0721234567&api_key={LOOKUP_KEY}").status_code == 200
    answer = client.post("/api/v1/calls", json={"to": "0721234567", "agent": "6000"}, headers=key)
    assert answer.status_code == 403
    assert answer.get_json()["code"] == "forbidden"
    assert client.get("/api/v1/contacts/search?term=James", headers=key).status_code == 403


@pytest.mark.parametrize(
    "env,variable",
    [
        ({"CTI_TOKEN_TTL": "0"}, "CTI_TOKEN_TTL"),
        ({"CTI_TOKEN_TTL": "a day"}, "CTI_TOKEN_TTL"),
        ({"CTI_API_KEYS": "k-1,k-2", "CTI_LOOKUP_KEYS": "k-2"}, "CTI_LOOKUP_KEYS"),
    ],
)
def test_a_wrong_token_or_lookup_setting_names_its_variable(env, variable):
    with pytest.raises(SettingsError) as error:
        load_settings(env)
    assert error.value.variable == variable


def test_token_settings_default_to_none_and_half_a_day():
    settings = load_settings({"CTI_LOOKUP_KEYS": " pbx-1 , pbx-2 "})
    assert settings.token_secret is None
    assert settings.token_ttl == 43200
    assert settings.lookup_keys == ("pbx-1", "pbx-2")
    assert "pbx-2" in settings.secrets()


def test_openapi_names_the_credentials_each_operation_takes(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]

    lookup = paths["/api/v1/contacts/lookup"]["get"]
    assert any("lookup key" in kind for kind in lookup["x-credentials"])
    assert any(kind == "agent token" for kind in lookup["x-credentials"])
    call = paths["/api/v1/calls"]["post"]
    assert not any("lookup key" in kind for kind in call["x-credentials"])
    assert any("body's `agent`" in kind for kind in call["x-credentials"])
    assert "Credentials:" in call["description"]
    assert "403" in call["responses"]
    token = paths["/api/v1/agents/{extension}/token"]["post"]
    assert token["x-credentials"] == ["full API key (CTI_API_KEYS)"]
    assert set(token["responses"]) >= {"201", "401", "403", "422", "501"}
    stream = paths["/api/v1/agents/{extension}/events"]["get"]
    assert any("path's `extension`" in kind for kind in stream["x-credentials"])
    assert "x-credentials" not in paths["/healthz"]["get"]


def test_the_cli_prints_a_token_for_an_agent(make_app):
    app = make_app(CTI_TOKEN_SECRET=TOKEN_SECRET)

    result = app.test_cli_runner().invoke(args=["agent", "token", "6000"])

    assert result.exit_code == 0
    claims = jwt.decode(result.output.strip(), TOKEN_SECRET, algorithms=["HS256"])
    assert claims["sub"] == "6000"
    refused = make_app().test_cli_runner().invoke(args=["agent", "token", "6000"])
    assert refused.exit_code == 1
    assert "CTI_TOKEN_SECRET" in refused.output


def test_a_checked_token_is_remembered_only_until_its_exp():
    """A valid token's principal is kept by its text (no second signature check), until the
    second its ``exp`` names: then it is refused as expired, as PyJWT refuses it; a token altered
    by one character is checked afresh and refused."""
    from devtools.waiting import wait_until

    credentials = Credentials((API_KEY,), (), TOKEN_SECRET, token_ttl=60)
    token, expires = credentials.issue("6000", now=time.time() - 59)  # a second or so left
    principal = credentials.principal(token)
    assert principal.kind == "agent" and principal.agent == "6000"
    assert credentials.principal(token) is principal  # remembered
    head, payload, signature = token.split(".")
    forged = (
        f"{head}.{payload}.{signature[:-2]}{'A' if signature[-2] != 'A' else 'B'}{signature[-1]}"
    )
    with pytest.raises(Unauthorized):
        credentials.principal(forged)
    wait_until(lambda: time.time() >= expires, 5, "the token's exp did not come")
    with pytest.raises(Unauthorized, match="expired"):
        credentials.principal(token)
