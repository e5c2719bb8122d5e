"""PostgreSQL unreachable: the middleware starts, says which server is missing, loses nothing and
never places a call it cannot deduplicate."""

from __future__ import annotations

import pytest

from devtools.processes import free_port

from .conftest import DIALER_ENV
from .journal_fakes import CRM_ENV, HOOK, IVR_PUSH, call_end
from .pg_server import PASSWORD, PostgresServer, _bin_dir


@pytest.fixture
def settings():
    """An app whose PostgreSQL is down (nothing listens on the port) from the start."""
    down = f"postgresql://cti:{PASSWORD}@127.0.0.1:{free_port()}/cti"
    return {"CTI_DATABASE": down, **CRM_ENV, **DIALER_ENV["cc_agent"]}


def test_readyz_answers_503_naming_postgresql(client):
    response = client.get("/readyz")

    assert response.status_code == 503
    assert "postgresql" in response.get_json()["detail"]
    assert PASSWORD not in response.get_data(as_text=True)


def test_webhook_answers_503_so_the_sender_retries(client):
    response = client.post("/api/v1/webhooks/pbx", json=call_end(), headers=HOOK)

    assert response.status_code == 503
    body = response.get_json()
    assert body["code"] == "upstream_unavailable"
    assert body["detail"].startswith("postgresql:")
    assert PASSWORD not in response.get_data(as_text=True)


def test_ivr_push_answers_a_plain_failure_so_the_ivr_retries(client):
    response = client.get("/api/v1/webhooks/ibizfone", query_string=IVR_PUSH, headers=HOOK)

    assert (response.status_code, response.data) == (503, b"Failure")


def test_click_to_call_refuses_with_503_and_places_no_call(client, auth, upstream):
    response = client.post(
        "/api/v1/calls", json={"to": "0721234567", "agent": "6000"}, headers=auth
    )

    assert response.status_code == 503
    assert response.get_json()["code"] == "upstream_unavailable"
    assert len(upstream.calls) == 0


def test_journal_listing_answers_503_not_500(client, auth):
    response = client.get("/api/v1/journal", headers=auth)

    assert response.status_code == 503
    assert response.get_json()["code"] == "upstream_unavailable"


@pytest.mark.slow  # starts a server process of its own
def test_postgresql_outage_answers_503_and_recovers_without_a_restart(make_app):
    """Down at start-up (the schema is made on first contact), up, down mid-run, up again."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    server = PostgresServer(bin_dir)  # its own server: this test stops it
    try:
        server.start()
        url = server.create_database()
        server.pause()
        app = make_app(CTI_DATABASE=url, **CRM_ENV)
        client = app.test_client()

        def post(n):
            return client.post("/api/v1/webhooks/pbx", json=call_end(id=f"c{n}"), headers=HOOK)

        assert (client.get("/readyz").status_code, post(1).status_code) == (503, 503)
        server.start()
        assert (client.get("/readyz").status_code, post(1).status_code) == (200, 202)

        server.pause()
        assert (client.get("/readyz").status_code, post(2).status_code) == (503, 503)
        server.start()
        assert (client.get("/readyz").status_code, post(2).status_code) == (200, 202)
        assert app.extensions["cti"].store.journal.counts()["pending"] == 2
    finally:
        server.stop()
