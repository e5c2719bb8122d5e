"""telephony agent remote control (telephony-agent-remote-control.txt).

Every method is ``GET /webservices/services/telephony/{method}/user/{UserID}/...`` with the
``Cookie: TokenKey=...`` header. Answers are a CallActionResponse ``{Success, Data, ResponseCode,
ResponseDetail}``, in XML unless asked for JSON (``Content-Type: application/json``); both parse.
Besides dialing, the client is an agent provider: ready, active calls, hangup, hold, retrieve,
dispose, recording, result codes and the lead operations. List answers are normalised, since XML
turns a list of one into a single element (see ``as_list``).
"""

from __future__ import annotations

import codecs
from urllib.parse import quote

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from ..directory import Agent
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
    # Named one by one, never "all but": an operation added later is not claimed by default.
    agent_operations = frozenset(
        {
            "available",
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
        }
    )
    agent_needs_user_id = True

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
            # Success said the call went out: a broken answer, after which it may have been placed.
            raise self.fail(
                Reply(self.name, 200, {}, b""),
                "dial answered success without a CallId",
                in_doubt=True,
            )
        return str(call_id)

    # agent remote control ----------------------------------------------------------------------

    def set_status(self, agent: Agent, status: str, pause_id, *, checked_out=False) -> dict:
        """Only "available" exists here (goready); the service refuses the others first."""
        self.call("goready", agent.user_id)
        return {}

    def active_calls(self, agent: Agent) -> list[dict]:
        data = self.call("getcalls", agent.user_id, idempotent=True)
        return _items(data, "CallId", CALL_FIELDS)

    def call_action(self, agent: Agent, call_id: str, action: str) -> None:
        self.call(action, agent.user_id, "call", call_id)

    def dispose(self, agent: Agent, call_id: str, result_code: str) -> None:
        self.call("dispose", agent.user_id, "call", call_id, params={"resultcode": result_code})

    def set_recording(self, agent: Agent, call_id: str, recording: bool) -> None:
        self.call("startrecord" if recording else "stoprecord", agent.user_id, "call", call_id)

    def result_codes(self, agent: Agent) -> list[dict]:
        data = self.call("resultcodes", agent.user_id, idempotent=True)
        return _items(data, "Code", RESULT_CODE_FIELDS)

    def lead_phones(self, agent: Agent, lead_id: str) -> list[dict]:
        data = self.call("leadphones", agent.user_id, "lead", lead_id, idempotent=True)
        return _items(data, "PhoneNumber", LEAD_PHONE_FIELDS)

    def change_lead(self, agent: Agent, call_id: str, lead_phone_id: str) -> None:
        self.call("changelead", agent.user_id, "call", call_id, "leadphone", lead_phone_id)

    def create_lead(self, agent: Agent, call_id: str, dial: str) -> str | None:
        data = self.call("createnewlead", agent.user_id, "call", call_id, "phone", dial)
        if isinstance(data, dict):
            data = _field(data, "LeadId", "LeadID")
        return _text(data)

    def connect_calls(self, agent: Agent, first: dict, second: dict) -> None:
        params = {
            "call1": first["call_id"],
            "call2": second["call_id"],
            "resultcode1": first["result_code"],
            "resultcode2": second["result_code"],
        }
        for key, side in (("notes", "notes"), ("numsales", "sales")):
            for number, call in (("1", first), ("2", second)):
                if call.get(side) is not None:
                    params[key + number] = call[side]
        self.call("connectcalls", agent.user_id, params=params)


def as_list(data, marker: str) -> list[dict]:
    """The items of a list answer, however it came.

    JSON gives an array; XML gives a list for two or more repeated children, but one child becomes
    ``{"Call": {...}}`` (or the item itself), and no child an empty string. An item is a dict
    holding ``marker`` (any case); anything else is looked through for items.
    """
    if isinstance(data, list):
        return [item for value in data for item in as_list(value, marker)]
    if not isinstance(data, dict):
        return []
    if any(str(k).lower() == marker.lower() for k in data):
        return [data]
    return [item for value in data.values() for item in as_list(value, marker)]


def _field(item: dict, *names: str):
    """The first of ``names`` present in ``item``, matched without regard to case."""
    lowered = {str(k).lower(): v for k, v in item.items()}
    for name in names:
        value = lowered.get(name.lower())
        if value is not None:
            return value
    return None


def _text(value) -> str | None:
    if value is None or isinstance(value, dict | list) or value == "":
        return None
    return str(value)


def _int(value) -> int | None:
    if isinstance(value, bool) or value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _bool(value) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


#: Each item of a list answer as ours: our field, its type, the upstream's names for it (any case).
CALL_FIELDS = (
    ("call_id", _text, "CallId"),
    ("start_time", _text, "CallStartTime"),
    ("state", _int, "CallState"),
    ("status", _int, "CallStatus"),
    ("customer_name", _text, "CustomerName"),
    ("customer_name2", _text, "CustomerName2"),
    ("phone_number", _text, "PhoneNumber"),
    ("recording_state", _int, "RecordingState"),
)
RESULT_CODE_FIELDS = (
    ("code", _text, "Code"),
    ("description", _text, "Description"),
    ("result_code_id", _int, "ResultCodeID"),
    ("is_success", _bool, "IsSuccess"),
    ("is_callback", _bool, "IsCallback"),
    ("is_call_again", _bool, "IsCallAgain"),
    ("is_transfer", _bool, "IsTransfer"),
    ("is_agent_viewable", _bool, "IsAgentViewable"),
    ("is_system_result_code", _bool, "IsSystemResultCode"),
    ("sales", _int, "Sales"),
    ("status_id", _int, "StatusID"),
    ("success_type", _int, "SuccessType"),
)
LEAD_PHONE_FIELDS = (
    ("lead_phone_id", _text, "LeadPhoneID", "LeadPhoneId", "ID"),
    ("lead_id", _text, "LeadId"),
    ("phone_number", _text, "PhoneNumber"),
    ("record_type", _text, "RecordType"),
    ("record_type_id", _int, "RecordTypeId"),
)


def _items(data, marker: str, fields) -> list[dict]:
    """The items of a list answer (see ``as_list``), each mapped to our fields."""
    return [
        {ours: convert(_field(item, *names)) for ours, convert, *names in fields}
        for item in as_list(data, marker)
    ]


def parse_body(reply: Reply):
    """JSON or XML, whichever the upstream sent, as plain Python values.

    XML is a body that starts with ``<`` after an optional byte-order mark and whitespace; the
    parser reads its bytes, honouring the mark and the encoding declaration (UTF-8 or UTF-16).
    Anything else is JSON (whose parser takes a byte-order mark too)."""
    document = _xml_document(reply.content)
    if document is None:
        return reply.json()
    try:
        root = ElementTree.fromstring(document)
    except (ElementTree.ParseError, DefusedXmlException):
        raise UpstreamError(reply.upstream, "answered with malformed XML") from None
    return _element(root)


def _xml_document(content: bytes) -> bytes | None:
    """The XML document of a body that starts with ``<`` after an optional byte-order mark and
    whitespace: the mark, then the body from that ``<`` (whitespace before an XML declaration is
    not XML). None for any other body."""
    mark, codec = b"", "utf-8"
    for bom, name in _BOMS:
        if content.startswith(bom):
            mark, codec = bom, name
            break
    space = tuple(c.encode(codec) for c in " \t\r\n")
    less_than = "<".encode(codec)
    unit = len(less_than)  # bytes per character here: 1 in UTF-8, 2 in UTF-16
    start = len(mark)
    while content.startswith(space, start):
        start += unit
    if not content.startswith(less_than, start):
        return None
    return mark + content[start:]


_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


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
