"""cc_agent cloud PBX (cc-agent-pbx.txt): click-to-call through ``/api/cc_agent/originate``.

Every request carries ``api_key`` in the query string; answers are JSON with a ``success`` (or
``Success``) flag and an optional ``msg``; a wrong key answers 401 "Unauthorized".
"""

from __future__ import annotations

from . import CallRequest
from .base import HttpUpstream, Reply


class CcAgentClient(HttpUpstream):
    name = "cc_agent"
    supports_caller_id = True
    supports_lead_id = True
    needs_user_id = False

    def __init__(self, base_url: str, api_key: str, **kwargs):
        super().__init__(base_url, **kwargs)
        self.api_key = api_key

    def _get(self, path: str, params: dict, *, op: str, idempotent: bool = False):
        """GET ``/api/...`` with ``api_key`` last; the answer's data once success is true."""
        reply = self.request(
            "GET", path, op=op, params={**params, "api_key": self.api_key}, idempotent=idempotent
        )
        return self._checked(reply)

    def _checked(self, reply: Reply) -> dict:
        body = reply.json() if reply.content.strip() else {}
        if not isinstance(body, dict):
            raise self.fail(reply, "answered with an unexpected JSON shape")
        ok = body.get("success", body.get("Success"))
        if reply.status >= 400 or ok is not True:
            raise self.fail(reply, body.get("msg") or body.get("message") or None)
        return body

    def place_call(self, call: CallRequest) -> str:
        params = {"destination": call.dial, "extension": call.agent.extension}
        if call.caller_id:
            params["cid"] = call.caller_id
        if call.lead_id:
            params["lead_id"] = call.lead_id
        body = self._get("/api/cc_agent/originate", params, op="originate")
        call_id = body.get("uuid") or body.get("Uuid")
        if not call_id:
            raise self.fail(Reply(self.name, 200, {}, b""), "originate answered without a uuid")
        return str(call_id)
