"""Upstream clients, one module per vendor document, and what each can do.

A dialer places click-to-call calls. Capabilities are explicit: each dialer says whether it can
set a caller id or a lead id, and the service answers 501 for what it cannot. An agent provider
(CTI_AGENT_PROVIDER) lists the agent and call operations it offers in the same spirit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..directory import Agent
from .base import edge_options


@dataclass(frozen=True)
class CallRequest:
    """What the click-to-call service asks a dialer for; ``dial`` is clean digits already."""

    dial: str
    agent: Agent
    lead_id: str | None = None
    caller_id: str | None = None


class Dialer(Protocol):
    name: str
    supports_caller_id: bool
    supports_lead_id: bool
    needs_user_id: bool  # the agent must resolve to an upstream user id

    def place_call(self, call: CallRequest) -> str:
        """Place the call; return the upstream's call id. Never retried."""


def build_dialer(settings) -> Dialer:
    edge = edge_options(settings)
    if settings.dialer == "cc_agent":
        from .cc_agent import CcAgentClient

        return CcAgentClient(settings.cc_agent_url, settings.cc_agent_api_key, **edge)
    if settings.dialer == "zain":
        from .zain import ZainClient

        return ZainClient(
            settings.zain_url,
            settings.zain_token,
            settings.zain_domain,
            locale=settings.zain_locale,
            **edge,
        )
    if settings.dialer == "telephony":
        from .telephony import TelephonyClient

        return TelephonyClient(settings.telephony_url, settings.telephony_token, **edge)
    from .sandbox import SandboxDialer

    return SandboxDialer()


# Agent status and call control --------------------------------------------------------------------

#: Every agent and call operation of the API; a provider offers a subset (``agent_operations``).
AGENT_OPERATIONS = (
    "available",
    "paused",
    "offline",
    "queues",
    "queue_list",
    "wrapup",
    "calls",
    "hangup",
    "hold",
    "retrieve",
    "dispose",
    "recording",
    "result_codes",
    "lead_phones",
    "change_lead",
    "create_lead",
    "connect_calls",
)


class AgentProvider(Protocol):
    """Agent status and call control on one platform.

    A provider implements the methods of the operations it lists in ``agent_operations`` and no
    others; the service answers 501 for the rest before calling anything. ``agent_needs_user_id``:
    the agent must resolve to an upstream user id (through the directory) first.
    """

    name: str
    agent_operations: frozenset[str]
    agent_needs_user_id: bool

    def set_status(self, agent: Agent, status: str, pause_id: int | None, **state) -> dict:
        """Apply "available", "paused" or "offline"; return extra answer fields (may be empty)."""

    def set_queues(self, agent: Agent, queue_ids: list[int]) -> None: ...

    def list_queues(self, agent: Agent) -> list[dict]:
        """``{queue_id, name, joined}`` per queue the agent may join or is in."""

    def wrapup(self, agent: Agent, seconds: int | None) -> None: ...

    def active_calls(self, agent: Agent) -> list[dict]:
        """``{call_id, start_time, state, status, customer_name, customer_name2, phone_number,
        recording_state}`` per call, ``phone_number`` as the upstream wrote it."""

    def call_action(self, agent: Agent, call_id: str, action: str) -> None:
        """``hangup``, ``hold`` or ``retrieve``."""

    def dispose(self, agent: Agent, call_id: str, result_code: str) -> None: ...

    def set_recording(self, agent: Agent, call_id: str, recording: bool) -> None: ...

    def result_codes(self, agent: Agent) -> list[dict]: ...

    def lead_phones(self, agent: Agent, lead_id: str) -> list[dict]: ...

    def change_lead(self, agent: Agent, call_id: str, lead_phone_id: str) -> None: ...

    def create_lead(self, agent: Agent, call_id: str, dial: str) -> str | None: ...

    def connect_calls(self, agent: Agent, first: dict, second: dict) -> None:
        """Bridge two calls; each side ``{call_id, result_code, notes?, sales?}``."""


def build_agent_provider(settings) -> AgentProvider:
    """The provider CTI_AGENT_PROVIDER names (settings guarantee its URL and credentials)."""
    edge = edge_options(settings)
    if settings.agent_provider == "cc_agent":
        from .cc_agent import CcAgentClient

        return CcAgentClient(settings.cc_agent_url, settings.cc_agent_api_key, **edge)
    if settings.agent_provider == "telephony":
        from .telephony import TelephonyClient

        return TelephonyClient(settings.telephony_url, settings.telephony_token, **edge)
    if settings.agent_provider == "ibizfone":
        from .ibizfone import build_ibizfone

        return build_ibizfone(settings)
    from .sandbox import SandboxAgents

    return SandboxAgents()
