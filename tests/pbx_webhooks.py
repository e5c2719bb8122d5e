"""The PBX webhook as a real client sends it to a served middleware (``POST /api/v1/webhooks/pbx``)."""

from __future__ import annotations

import json
import urllib.request

from .conftest import WEBHOOK_SECRET


def ring_event(call_id: str, agent: str = "6000", number: str = "0721234567") -> dict:
    """A cc_agent ``call:ring`` of an inbound call to ``agent``."""
    return {
        "event": "call:ring",
        "id": f"{call_id}-leg",
        "call_id": call_id,
        "type": "inbound",
        "cid_num": number,
        "dst_num": agent,
    }


def post_webhook(base: str, event: dict) -> int:
    """Posts ``event`` with the webhook secret; the answer's status."""
    request = urllib.request.Request(
        base + "/api/v1/webhooks/pbx",
        data=json.dumps(event).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "X-Webhook-Token": WEBHOOK_SECRET},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.status


def ring(base: str, call_id: str, agent: str = "6000", number: str = "0721234567") -> None:
    """Rings ``agent`` and checks the webhook was taken (202)."""
    assert post_webhook(base, ring_event(call_id, agent, number)) == 202
