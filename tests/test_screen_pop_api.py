"""The screen-pop stream's contract, in process."""

from __future__ import annotations


def test_stream_needs_a_key(client):
    assert client.get("/api/v1/agents/6000/events").status_code == 401


def test_stream_rejects_a_malformed_extension_or_event_id(client, auth):
    assert client.get("/api/v1/agents/60%2000/events", headers=auth).status_code == 422
    response = client.get(
        "/api/v1/agents/6000/events", headers={**auth, "Last-Event-ID": "yesterday"}
    )
    assert response.status_code == 422
    assert response.get_json()["code"] == "validation_error"


def test_stream_is_event_stream_that_is_not_cached(client, auth):
    response = client.get("/api/v1/agents/6000/events", headers=auth, buffered=False)

    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-store"
    assert next(iter(response.response)).startswith(b"retry: 2000\n")
    response.close()


def test_agent_page_is_served_without_a_key(client):
    response = client.get("/agent")

    assert response.status_code == 200
    assert b"<script" in response.data
    assert client.get("/static/agent.js").status_code == 200
