"""The sandbox dialer: places no real call, so ``make run`` works with nothing else installed."""

from __future__ import annotations

import logging
import uuid

from . import AGENT_OPERATIONS, CallRequest

log = logging.getLogger(__name__)


class SandboxDialer:
    """Places no call; ``on_placed(call, call_id)`` lets the factory play the call's PBX events."""

    name = "sandbox"
    supports_caller_id = True
    supports_lead_id = True
    needs_user_id = False

    def __init__(self, on_placed=None):
        self.on_placed = on_placed

    def place_call(self, call: CallRequest) -> str:
        call_id = str(uuid.uuid4())
        log.info("sandbox call %s: agent %s dials %s", call_id, call.agent.extension, call.dial)
        if self.on_placed is not None:
            self.on_placed(call, call_id)
        return call_id


class SandboxAgents:
    """Accepts every agent and call operation and changes nothing, so ``make run`` can try them.

    It holds no calls: the active-call list is empty and any call id is accepted. Result codes
    and queues are small fixed samples for the page's pickers (no queue is ever joined: joining
    changes nothing).
    """

    name = "sandbox"
    agent_needs_user_id = False
    agent_operations = frozenset(AGENT_OPERATIONS)  # every one of them
    RESULT_CODES = (
        ("SALE", "Sale", True),
        ("CALLBACK", "Call back", False),
        ("NI", "Not interested", False),
    )
    QUEUES = ((1, "Sales"), (2, "Support"), (3, "Billing"))

    def set_status(self, agent, status: str, pause_id, *, checked_out=False) -> dict:
        log.info("sandbox: agent %s is %s", agent.extension, status)
        return {}

    def set_queues(self, agent, queue_ids) -> None:
        log.info("sandbox: agent %s joins queues %s", agent.extension, queue_ids)

    def list_queues(self, agent) -> list[dict]:
        return [{"queue_id": q, "name": name, "joined": False} for q, name in self.QUEUES]

    def wrapup(self, agent, seconds) -> None:
        log.info("sandbox: agent %s wraps up (%s s)", agent.extension, seconds)

    def active_calls(self, agent) -> list[dict]:
        return []

    def call_action(self, agent, call_id: str, action: str) -> None:
        log.info("sandbox: agent %s: %s call %s", agent.extension, action, call_id)

    def dispose(self, agent, call_id: str, result_code: str) -> None:
        log.info("sandbox: agent %s disposes call %s as %s", agent.extension, call_id, result_code)

    def set_recording(self, agent, call_id: str, recording: bool) -> None:
        log.info("sandbox: call %s recording %s", call_id, "on" if recording else "off")

    def result_codes(self, agent) -> list[dict]:
        return [
            {
                "code": code,
                "description": text,
                "is_success": success,
                "is_callback": code == "CALLBACK",
            }
            for code, text, success in self.RESULT_CODES
        ]

    def lead_phones(self, agent, lead_id: str) -> list[dict]:
        return []

    def change_lead(self, agent, call_id: str, lead_phone_id: str) -> None:
        log.info("sandbox: call %s now belongs to lead phone %s", call_id, lead_phone_id)

    def create_lead(self, agent, call_id: str, dial: str) -> str | None:
        lead_id = uuid.uuid4().hex[:12]
        log.info("sandbox: call %s gets new lead %s", call_id, lead_id)
        return lead_id

    def connect_calls(self, agent, first: dict, second: dict) -> None:
        log.info("sandbox: calls %s and %s connected", first["call_id"], second["call_id"])
