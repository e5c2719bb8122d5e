"""No API key, token or secret appears in a log line, an error body or a response."""

from __future__ import annotations

import logging

import pytest

from devtools.processes import free_port

from .conftest import (
    API_KEY,
    CC_AGENT_KEY,
    DIALER_ENV,
    LOOKUP_KEY,
    SECRETS,
    TOKEN_SECRET,
    WEBHOOK_SECRET,
)


def clicks(client, *, in_query: str, bearer: str) -> list:
    """Two click-to-calls: one with ``in_query`` as the query's api_key, one with a bearer header."""
    return [
        client.post(
            f"/api/v1/calls?api_key={in_query}", json={"to": "0721234567", "agent": "6000"}
        ),
        client.post(
            "/api/v1/calls",
            json={"to": "0721234568", "agent": "6000"},
            headers={"Authorization": f"Bearer {bearer}"},
        ),
    ]


@pytest.mark.parametrize("dialer", ["cc_agent", "zain", "telephony"])
def test_failing_upstreams_leak_no_credential(make_app, caplog, dialer):
    caplog.set_level(logging.DEBUG)
    env = dict(DIALER_ENV[dialer])
    url_setting = {
        "cc_agent": "CTI_CC_AGENT_URL",
        "zain": "CTI_ZAIN_URL",
        "telephony": "CTI_TELEPHONY_URL",
    }[dialer]
    env[url_setting] = f"http://127.0.0.1:{free_port()}"  # refused: urllib3 logs the URL it tried
    client = make_app(**env).test_client()

    answers = [
        *clicks(client, in_query=API_KEY, bearer=API_KEY),
        client.get(
            f"/click-to-call?to=0721234569&agent=6000&api_key={API_KEY}",
            headers={"Accept": "text/html"},
        ),
    ]

    assert [a.status_code for a in answers] == [503, 503, 503]
    everything = caplog.text + "".join(a.get_data(as_text=True) for a in answers)
    for secret in SECRETS:
        assert secret not in everything
    assert caplog.records, "the failures were logged"


def test_upstream_error_text_is_scrubbed_of_every_credential(make_app, upstream, auth):
    upstream.get(
        "http://pbx.test/api/cc_agent/originate",
        json={"success": False, "msg": f"echo {CC_AGENT_KEY} {API_KEY} {WEBHOOK_SECRET}"},
    )
    client = make_app(**DIALER_ENV["cc_agent"]).test_client()

    response = client.post(
        "/api/v1/calls", json={"to": "0721234567", "agent": "6000"}, headers=auth
    )

    assert response.status_code == 502
    assert not any(secret in response.get_data(as_text=True) for secret in SECRETS)
    assert "***" in response.get_json()["detail"]


def test_agent_tokens_and_the_token_secret_never_reach_a_log_line(make_app, caplog):
    caplog.set_level(logging.DEBUG)
    env = dict(DIALER_ENV["cc_agent"])
    env["CTI_CC_AGENT_URL"] = f"http://127.0.0.1:{free_port()}"  # refused: the failure is logged
    client = make_app(
        CTI_TOKEN_SECRET=TOKEN_SECRET, CTI_LOOKUP_KEYS=LOOKUP_KEY, **env
    ).test_client()
    issued = client.post("/api/v1/agents/6000/token", headers={"X-API-Key": API_KEY})
    token = issued.get_json()["token"]
    other = client.post("/api/v1/agents/6001/token", headers={"X-API-Key": API_KEY}).get_json()

    answers = [
        *clicks(client, in_query=token, bearer=other["token"]),
        client.get(f"/api/v1/agents/6000/calls?api_key={token}x"),
        client.get(f"/api/v1/contacts/search?term=x&api_key={LOOKUP_KEY}"),
    ]
    # Whatever logs a token by mistake (a URL, a header dump) is scrubbed all the same.
    logging.getLogger("middleware").warning("request headers: Authorization: Bearer %s", token)

    assert [a.status_code for a in answers] == [503, 403, 401, 403]
    everything = caplog.text + "".join(a.get_data(as_text=True) for a in answers)
    for secret in (token, other["token"], TOKEN_SECRET, LOOKUP_KEY, *SECRETS):
        assert secret not in everything
    assert "Bearer ***" in caplog.text
