"""What the call-journal tests share: the CRM faked at the HTTP level, an agent directory, events."""

from __future__ import annotations

import json
import threading
import time
from urllib.parse import parse_qsl, urlsplit

from .conftest import API_KEY, CRM_KEY, CRM_URL, WEBHOOK_SECRET
from .contacts import JAMES as CONTACT_RECORD
from .fakeserver import Answer

CRM_ENV = {
    "CTI_CRM": "switchtransact",
    "CTI_CRM_URL": CRM_URL,
    "CTI_CRM_API_KEY": CRM_KEY,
    # a one-leg call is due as soon as it ends (the settle window has tests of its own)
    "CTI_JOURNAL_SETTLE_SECONDS": "0",
}
HOOK = {"X-Webhook-Token": WEBHOOK_SECRET}
LOG_URL = f"{CRM_URL}/calls/log"
RECORD_URL = f"{CRM_URL}/calls/record"

# The record without its empty fields, under the number in E.164.
JAMES = {k: v for k, v in CONTACT_RECORD.items() if v is not None} | {"mobilephone": "+27721234567"}
#: The IVR's (ibizfone) push of an answered call, with its durations.
IVR_PUSH = {
    "calllogid": "IVR-77",
    "callnumber": "0721234567",
    "date": "2025-07-05",
    "time": "10:15:22",
    "callstatus": "ANSWER",
    "ivrduration": "00:00:20",
    "callduration": "65",
}
AGENTS_CSV = (
    "extension,user_id,device_id,first_name,last_name,email\n"
    "6001,101,201,Ayanda,Dlamini,ayanda@example.com\n"
    "6002,102,202,Pieter,Botha,pieter@example.com\n"
)


def served_env(database: str, crm_url: str, **extra) -> dict:
    """The settings of a served middleware (gunicorn) journaling to SwitchTransact at ``crm_url``:
    the test key and secret, ``database``, and ``extra``."""
    return {
        "CTI_API_KEYS": API_KEY,
        "CTI_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "CTI_DATABASE": database,
        "CTI_CRM": "switchtransact",
        "CTI_CRM_URL": crm_url,
        "CTI_CRM_API_KEY": CRM_KEY,
        **extra,
    }


def agents_file(tmp_path) -> str:
    path = tmp_path / "agents.csv"
    path.write_text(AGENTS_CSV)
    return str(path)


def journal_env(upstream, tmp_path, contacts: dict[str, dict] | None = None) -> dict:
    """The settings of an app with the agents file that journals to the CRM faked on ``upstream``:
    it knows ``contacts`` (James by default) and takes every call log."""
    crm_knows(upstream, contacts)
    crm_logs(upstream)
    return {**CRM_ENV, "CTI_AGENTS_FILE": agents_file(tmp_path)}


def call_end(**fields) -> dict:
    """A cc_agent ``call:end`` (the contract's sample), with ``fields`` replaced: a call of one
    leg, so its ``call_id`` is its own ``id`` unless given."""
    event = {
        "event": "call:end",
        "id": "8c1f0d7e-5b1a-4c0e-9a57-0d5d3f1e2a11",
        "ts": 1751710522,  # 2025-07-05 10:15:22 UTC, the end of the call
        "type": "inbound",
        "cid_num": "0721234567",
        "dst_num": "27215550000",
        "dst_user_id": 101,
        "durationms": 190000,
        "billms": 125000,
        "hangup_cause": "NORMAL_CLEARING",
    }
    event.update(fields)
    event.setdefault("call_id", event["id"])
    return event


def crm_knows(upstream, contacts: dict[str, dict] | None = None):
    """``GET /calls/record``: the contact under an E.164 number, ``{"status": false}`` otherwise."""
    contacts = contacts if contacts is not None else {"+27721234567": JAMES}

    def answer(request):
        phone = dict(parse_qsl(urlsplit(request.url).query)).get("phone")
        if phone in contacts:
            return 200, {}, json.dumps({"status": True, "contact": contacts[phone]})
        return 200, {}, json.dumps({"status": False})

    upstream.add_callback("GET", RECORD_URL, callback=answer)


def crm_logs(upstream, *answers):
    """``POST /calls/log`` answers in turn (the last one repeats); default ``{"status": true}``."""
    for status, body, *headers in answers or [(200, {"status": True})]:
        upstream.post(LOG_URL, status=status, json=body, headers=headers[0] if headers else None)


def sent_logs(upstream) -> list[dict]:
    return [json.loads(c.request.body) for c in upstream.calls if c.request.url == LOG_URL]


def deliver(app, *, later: float = 0.0) -> dict:
    """One delivery pass, ``later`` seconds from now (retries due by then are tried)."""
    return app.extensions["cti"].delivery.deliver_due(now=time.time() + later)


def entries(client, auth, **query) -> list[dict]:
    response = client.get("/api/v1/journal", query_string=query, headers=auth)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["entries"]


class LoggingCrm:
    """A fake SwitchTransact to serve with ``FakeServer``: every caller unknown; it keeps the call
    logs it receives, per customer number."""

    def __init__(self):
        self.logs: dict[str, list[dict]] = {}
        self.lock = threading.Lock()

    def __call__(self, seen):
        if seen.path == "/calls/log":
            body = seen.json()
            with self.lock:
                self.logs.setdefault(body["Number"], []).append(body)
            return Answer(200, {"status": True})
        return Answer(200, {"status": False})

    def received(self) -> dict[str, list[dict]]:
        """The call logs received so far, per number."""
        with self.lock:
            return {number: list(logs) for number, logs in self.logs.items()}

    def delivered(self) -> dict[str, int]:
        """How many call logs were received so far, per number."""
        with self.lock:
            return {number: len(logs) for number, logs in self.logs.items()}
