"""A believable contact-center floor for ``make run`` (``flask --app app sandbox floor``).

Four agents in different states and a morning of calls, sent as the requests a CRM and a PBX
would send (agent status through ``PUT /api/v1/agents/{extension}/status``, the calls as cc_agent
``call:ring`` / ``call:answer`` / ``call:end`` pushes to the PBX webhook), so the board, the
callbacks, the journal and the reports see what they see in production: one missed call (which
opens a callback) and one call whose log the sandbox CRM refuses (a failed log to retry). Leg ids
carry the day, so running it again the same day adds nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..upstreams.sandbox_crm import REFUSED_NUMBER

AGENT_STATUS = (
    ("6000", {"status": "available"}),
    ("6001", {"status": "available"}),
    ("6002", {"status": "paused", "pause_id": 1}),
    ("6003", {"status": "offline"}),
)
PBX_NUMBER = "27215550000"  # the call center's own number, what customers dial


@dataclass(frozen=True)
class SampleCall:
    agent: str
    direction: str  # inbound or outbound
    number: str  # the customer, E.164
    minutes_ago: int  # when it ended
    ring_seconds: int
    talk_seconds: int  # 0: nobody answered


CALLS = (
    SampleCall("6000", "inbound", "+27721234567", 170, 12, 260),  # James May
    SampleCall("6001", "outbound", "+27821112222", 125, 9, 410),  # Thandi Nkosi
    SampleCall("6000", "inbound", "+27829876543", 80, 6, 95),  # an unknown caller
    SampleCall("6001", "inbound", REFUSED_NUMBER, 45, 8, 70),  # its log is refused: failed
    SampleCall("6002", "inbound", "+27317654321", 20, 25, 0),  # missed: a callback opens
    SampleCall("6000", "outbound", "+27721234567", 6, 7, 180),  # James again
)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: dict
    webhook: bool  # sent with the webhook secret (else with a full key)


def floor_requests(now: float | None = None) -> list[Request]:
    """The agents' statuses, then every call's ring, answer (when answered) and end."""
    now = time.time() if now is None else now
    day = time.strftime("%Y%m%d", time.gmtime(now))
    requests = [
        Request("PUT", f"/api/v1/agents/{extension}/status", body, webhook=False)
        for extension, body in AGENT_STATUS
    ]
    for number, call in enumerate(CALLS, start=1):
        leg = f"sandbox-floor-{day}-{number}"
        requests.extend(
            Request("POST", "/api/v1/webhooks/pbx", event, webhook=True)
            for event in _events(call, leg, now)
        )
    return requests


def _events(call: SampleCall, leg: str, now: float) -> list[dict]:
    end = int(now - call.minutes_ago * 60)
    start = end - call.ring_seconds - call.talk_seconds
    customer = call.number.lstrip("+")
    if call.direction == "inbound":
        ends = {"cid_num": customer, "dst_num": PBX_NUMBER, "dst_user_id": call.agent}
    else:
        ends = {"cid_num": call.agent, "dst_num": customer, "src_user_id": call.agent}
    common = {"id": leg, "call_id": leg, "type": call.direction, **ends}
    events = [{"event": "call:ring", "ts": start, **common}]
    if call.talk_seconds:
        events.append({"event": "call:answer", "ts": start + call.ring_seconds, **common})
    events.append(
        {
            "event": "call:end",
            "ts": end,
            **common,
            "durationms": (call.ring_seconds + call.talk_seconds) * 1000,
            "billms": call.talk_seconds * 1000,
            "hangup_cause": "NORMAL_CLEARING" if call.talk_seconds else "NO_ANSWER",
        }
    )
    return events
