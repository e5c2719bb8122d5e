"""Contract section 4, operations: ``/healthz`` answers while the process serves, ``/readyz`` only
while the store can be written. A store that cannot be written when the service starts (a
directory that cannot be made, a read-only one) let the app fail to build with a traceback, so
gunicorn stopped and neither probe answered; the sandbox CRM's sample contacts, written at
start-up, failed the same way with PostgreSQL down. Now the service starts and says 503."""

from __future__ import annotations

from .conftest import API_KEY, WEBHOOK_SECRET

KEY = {"X-API-Key": API_KEY}


def test_a_store_whose_directory_cannot_be_made_serves_and_is_not_ready(make_app, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the store's directory should be")
    client = make_app(CTI_DATABASE=str(blocker / "cti.sqlite3")).test_client()

    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.content_type == "application/problem+json"
    pushed = client.post(
        "/api/v1/webhooks/pbx",
        json={
            "event": "call:end",
            "id": "leg-1",
            "ts": 1751710522,
            "type": "inbound",
            "cid_num": "0721234567",
            "durationms": 1000,
        },
        headers={"X-Webhook-Token": WEBHOOK_SECRET},
    )
    assert pushed.status_code == 503
    assert pushed.get_json()["code"] == "upstream_unavailable"
    assert "not-a-directory" not in pushed.get_data(as_text=True)


def test_the_sandbox_crm_seeds_its_contacts_once_the_store_can_be_written(make_app, tmp_path):
    place = tmp_path / "later"
    place.write_text("")  # a file where the directory goes: the store cannot be written yet
    client = make_app(CTI_DATABASE=str(place / "cti.sqlite3")).test_client()
    assert client.get("/readyz").status_code == 503

    place.unlink()  # the directory can be made now
    place.mkdir()

    assert client.get("/readyz").status_code == 200
    found = client.get("/api/v1/contacts/lookup?phone=0721234567", headers=KEY).get_json()
    assert found["found"] is True  # a sample contact of the sandbox CRM
