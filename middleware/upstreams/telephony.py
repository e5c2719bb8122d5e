"""telephony agent remote control (telephony-agent-remote-control.txt).

Every method is ``GET /webservices/services/telephony/{method}/user/{UserID}/...`` with the
``Cookie: TokenKey=...`` header. Answers are a CallActionResponse ``{Success, Data, ResponseCode,
ResponseDetail}``, in XML unless asked for JSON (``Content-Type: application/json``); both parse.
"""

from __future__ import annotations

from urllib.parse import quote

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from ..errors import UpstreamError
from . import CallRequest
from .base import HttpUpstream, Reply

PREFIX = "/webservices/services/telephony"
_XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"


class TelephonyClient(HttpUpstream):
    name = "telephony"
    supports_caller_id = False
    supports_lead_id = True
    needs_user_id = True

    def __init__(self, base_url: str, token: str, **kwargs):
        super().__init__(base_url, **kwargs)
        self.headers = {"Cookie": f"TokenKey={token}", "Content-Type": "application/json"}

    def call(
        self,
        method: str,
        user_id: str,
        *segments: str,
        params=None,
        op: str | None = None,
        idempotent: bool = False,
    ):
        """Run ``method`` for ``user_id``; the response's Data once Success is true."""
        path = "/".join([PREFIX, method, "user", quote(str(user_id), safe="")])
        path += "".join("/" + quote(str(s), safe="") for s in segments)
        reply = self.request(
            "GET", path, op=op or method, params=params, headers=self.headers, idempotent=idempotent
        )
        return self._checked(reply)

    def _checked(self, reply: Reply):
        body = parse_body(reply) if reply.content.strip() else {}
        if not isinstance(body, dict):
            raise self.fail(reply, "answered with an unexpected shape")
        success = body.get("Success")
        if reply.status >= 400 or not (success is True or str(success).lower() == "true"):
            raise self.fail(reply, body.get("ResponseDetail") or body.get("Message") or None)
        return body.get("Data")

    def place_call(self, call: CallRequest) -> str:
        params = {"leadid": call.lead_id} if call.lead_id else None
        data = self.call("dial", call.agent.user_id, "phone", call.dial, params=params, op="dial")
        call_id = data.get("CallId") if isinstance(data, dict) else None
        if call_id in (None, ""):
            raise self.fail(Reply(self.name, 200, {}, b""), "dial answered without a CallId")
        return str(call_id)


def parse_body(reply: Reply):
    """JSON or XML, whichever the upstream sent, as plain Python values."""
    if reply.content.lstrip()[:1] != b"<":
        return reply.json()
    try:
        root = ElementTree.fromstring(reply.content)
    except (ElementTree.ParseError, DefusedXmlException):
        raise UpstreamError(reply.upstream, "answered with malformed XML") from None
    return _element(root)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _element(element):
    if element.get(_XSI_NIL) == "true":
        return None
    children = list(element)
    if not children:
        text = (element.text or "").strip()
        return {"true": True, "false": False}.get(text, text)
    names = [_local(child.tag) for child in children]
    if len(set(names)) == 1 and len(names) > 1:
        return [_element(child) for child in children]
    result: dict = {}
    for name, child in zip(names, children, strict=True):
        value = _element(child)
        if name in result:
            existing = result[name]
            result[name] = (existing if isinstance(existing, list) else [existing]) + [value]
        else:
            result[name] = value
    return result
