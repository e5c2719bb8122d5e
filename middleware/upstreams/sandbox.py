"""The sandbox dialer: places no real call, so ``make run`` works with nothing else installed."""

from __future__ import annotations

import logging
import uuid

from . import CallRequest

log = logging.getLogger(__name__)


class SandboxDialer:
    name = "sandbox"
    supports_caller_id = True
    supports_lead_id = True
    needs_user_id = False

    def place_call(self, call: CallRequest) -> str:
        call_id = str(uuid.uuid4())
        log.info("sandbox call %s: agent %s dials %s", call_id, call.agent.extension, call.dial)
        return call_id
