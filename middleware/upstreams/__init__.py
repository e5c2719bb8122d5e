"""Upstream clients, one module per vendor document, and what each can do.

A dialer places click-to-call calls. Capabilities are explicit: each dialer says whether it can
set a caller id or a lead id, and the service answers 501 for what it cannot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..directory import Agent


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
    timeout = settings.upstream_timeout
    if settings.dialer == "cc_agent":
        from .cc_agent import CcAgentClient

        return CcAgentClient(settings.cc_agent_url, settings.cc_agent_api_key, timeout=timeout)
    if settings.dialer == "zain":
        from .zain import ZainClient

        return ZainClient(
            settings.zain_url,
            settings.zain_token,
            settings.zain_domain,
            locale=settings.zain_locale,
            timeout=timeout,
        )
    if settings.dialer == "telephony":
        from .telephony import TelephonyClient

        return TelephonyClient(settings.telephony_url, settings.telephony_token, timeout=timeout)
    from .sandbox import SandboxDialer

    return SandboxDialer()
