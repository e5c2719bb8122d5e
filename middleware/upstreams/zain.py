"""zain call-center platform (zain-calls.txt): initiate a customer call, fetch a day's calls.

Every request carries the ``Token``, ``locale`` and ``Content-Type: application/json`` headers;
answers are JSON with ``"status": "success"`` on success.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from . import CallRequest
from .base import HttpUpstream, Reply

# FetchCallDetailsByDate: the fields a call detail may carry the customer's number in, and the
# words of ``callType`` that say nobody answered.
NUMBER_FIELDS = ("customerNumber", "callerNumber", "phoneNumber", "number", "cli")
UNANSWERED_WORDS = ("MISSED", "ABANDON", "NOANSWER", "NO_ANSWER", "NOT_ANSWERED", "UNANSWERED")


@dataclass(frozen=True)
class CallDetail:
    """One call of ``FetchCallDetailsByDate``, out of zain's field names (raw values kept)."""

    call_id: str
    outbound: bool
    unanswered: bool  # its callType says nobody answered
    duration: object  # seconds or hh:mm:ss, as zain wrote it
    timestamp: object  # "YYYY-MM-DD HH:MM:SS", local
    number: str | None
    agent: str | None
    recording_url: str | None


def call_detail(call) -> CallDetail | None:
    """The call detail of one element of ``data``; None without a ``callId``."""
    call_id = str(call.get("callId") or "").strip() if isinstance(call, dict) else ""
    if not call_id:
        return None
    kind = str(call.get("callType") or "").upper().replace(" ", "_")
    agent = call.get("agent")
    return CallDetail(
        call_id=call_id,
        outbound=kind.startswith("OUT"),
        unanswered=any(word in kind for word in UNANSWERED_WORDS),
        duration=call.get("duration"),
        timestamp=call.get("timestamp"),
        number=next((str(call[k]) for k in NUMBER_FIELDS if call.get(k)), None),
        agent=str(agent).strip() or None if agent not in (None, "") else None,
        recording_url=call.get("recordingUrl") or call.get("recording_url"),
    )


class ZainClient(HttpUpstream):
    name = "zain"
    supports_caller_id = False
    supports_lead_id = False
    needs_user_id = False

    def __init__(self, base_url: str, token: str, domain: str, *, locale: str = "en", **kwargs):
        super().__init__(base_url, **kwargs)
        self.domain = domain
        self.headers = {"Token": token, "locale": locale, "Content-Type": "application/json"}

    def _checked(self, reply: Reply) -> dict:
        body = reply.json() if reply.content.strip() else {}
        if not isinstance(body, dict):
            raise self.fail(reply, "answered with an unexpected JSON shape")
        if reply.status >= 400 or str(body.get("status", "")).lower() != "success":
            raise self.fail(reply, body.get("message") or body.get("error") or None)
        return body

    def call_details(self, day: date, *, timeout: float | None = None) -> list[dict]:
        """Every call of ``day`` (FetchCallDetailsByDate): a read, so retried within the deadline."""
        reply = self.request(
            "GET",
            "/api/FetchCallDetailsByDate",
            op="call_details",
            params={"domainName": self.domain, "targetDate": day.strftime("%d/%m/%Y")},
            headers=self.headers,
            idempotent=True,
            timeout=timeout,
        )
        data = self._checked(reply).get("data")
        if data is None:
            return []
        if not isinstance(data, list):
            raise self.fail(reply, "answered with an unexpected JSON shape")
        return [call for call in data if isinstance(call, dict)]

    def place_call(self, call: CallRequest) -> str:
        payload = {
            "domainName": self.domain,
            "customerNumber": call.dial,
            "agentExtension": call.agent.extension,
        }
        reply = self.request(
            "POST",
            "/api/InitiateCustomerCall",
            op="initiate_call",
            json=payload,
            headers=self.headers,
        )
        body = self._checked(reply)
        call_id = body.get("callSessionId")
        if not call_id:
            # Success said the call went out: a broken answer, after which it may have been placed.
            raise self.fail(reply, "answered success without a callSessionId", in_doubt=True)
        return str(call_id)
