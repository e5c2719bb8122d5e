"""cc_agent cloud PBX (cc-agent-pbx.txt): click-to-call through ``/api/cc_agent/originate``,
agent status, queues and wrap-up under ``/api/cc_agent/``, and phone-list leads (do-not-call).

Every request carries ``api_key`` in the query string; answers are JSON with a ``success`` (or
``Success``) flag and an optional ``msg``; a wrong key answers 401 "Unauthorized".
"""

from __future__ import annotations

from urllib.parse import quote

from ..directory import Agent
from . import CallRequest
from .base import HttpUpstream, Reply


class CcAgentClient(HttpUpstream):
    name = "cc_agent"
    supports_caller_id = True
    supports_lead_id = True
    needs_user_id = False
    agent_operations = frozenset(
        {"available", "paused", "offline", "queues", "queue_list", "wrapup"}
    )
    agent_needs_user_id = True

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
            # Success said the call went out: a broken answer, after which it may have been placed.
            raise self.fail(
                Reply(self.name, 200, {}, b""),
                "originate answered success without a uuid",
                in_doubt=True,
            )
        return str(call_id)

    # agents ------------------------------------------------------------------------------------

    def set_status(self, agent: Agent, status: str, pause_id, *, checked_out=False) -> dict:
        """setPause id=0 (available) or id=pause (paused), checkOut (offline).

        An agent we checked out must be checked in again before a pause can be unset.
        """
        user = {"user_id": agent.user_id}
        if status == "offline":
            self._get("/api/cc_agent/checkOut", user, op="checkOut")
            return {}
        if status == "paused":
            pause = pause_id or 1
            self._get("/api/cc_agent/setPause", {"id": pause, **user}, op="setPause")
            return {"pause_id": pause}
        extra = self._check_in(agent) if checked_out else {}
        self._get("/api/cc_agent/setPause", {"id": 0, **user}, op="setPause")
        return extra

    def _check_in(self, agent: Agent) -> dict:
        """checkInDevice when the directory knows the device (no action needed from the agent);
        else checkIn, whose answer is the number the agent dials to finish checking in."""
        if agent.device_id:
            params = {"user_id": agent.user_id, "device_id": agent.device_id}
            self._get("/api/cc_agent/checkInDevice", params, op="checkInDevice")
            return {}
        body = self._get("/api/cc_agent/checkIn", {"user_id": agent.user_id}, op="checkIn")
        number = body.get("data")
        if isinstance(number, bool) or not isinstance(number, str | int) or number == "":
            return {}
        return {"check_in_number": str(number)}

    def set_queues(self, agent: Agent, queue_ids: list[int]) -> None:
        params = {"queue_ids": ",".join(str(q) for q in queue_ids), "user_id": agent.user_id}
        self._get("/api/cc_agent/setQueues", params, op="setQueues")

    def list_queues(self, agent: Agent) -> list[dict]:
        """``GET /api/user/{id}`` (its ``queue_perms``, the queues it may join, and ``queues``,
        those it has joined) and ``GET /api/cc_queue`` (every queue, for the names). The queues
        listed are the permitted ones, or every queue when the user has no ``queue_perms``; a
        joined queue is always listed."""
        path = f"/api/user/{quote(str(agent.user_id), safe='')}"
        user = self._get(path, {}, op="user", idempotent=True).get("data")
        if not isinstance(user, dict):
            raise self.fail(Reply(self.name, 200, {}, b""), "user answered without data")
        listed = self._get("/api/cc_queue", {}, op="cc_queue", idempotent=True).get("data")
        names: dict[int, str | None] = {}
        for queue in listed if isinstance(listed, list) else [listed]:
            if isinstance(queue, dict) and (queue_id := _id(queue.get("id"))) is not None:
                name = queue.get("name") or queue.get("tv_name")
                names[queue_id] = str(name) if name not in (None, "") else None
        perms = user.get("queue_perms")
        permitted = [
            _id(perm[0] if isinstance(perm, list) and perm else perm)
            for perm in (perms if isinstance(perms, list) else [])
        ]
        joined = {_id(q) for q in _ids(user.get("queues"))} - {None}
        ids = [q for q in permitted if q is not None] or list(names)
        ids += sorted(joined - set(ids))
        return [
            {"queue_id": q, "name": names.get(q), "joined": q in joined} for q in dict.fromkeys(ids)
        ]

    def wrapup(self, agent: Agent, seconds: int | None) -> None:
        params = {"user_id": agent.user_id}
        if seconds is not None:
            params["seconds"] = seconds
        self._get("/api/cc_agent/wrapup", params, op="wrapup")

    # phone lists -------------------------------------------------------------------------------

    def phone_list_numbers(self, list_id: str) -> list[str]:
        """The phone of every lead of a phone list, as the PBX writes it."""
        path = f"/api/phone_list/{quote(str(list_id), safe='')}/lead"
        body = self._get(path, {}, op="phone_list_leads", idempotent=True)
        leads = body.get("data")
        if not isinstance(leads, list):
            raise self.fail(Reply(self.name, 200, {}, b""), "phone list answered without data")
        return [
            str(lead["phone"])
            for lead in leads
            if isinstance(lead, dict) and lead.get("phone") not in (None, "")
        ]


def _ids(value) -> list:
    """A list of ids as the PBX writes one: an array, or a comma separated text."""
    if isinstance(value, str):
        return [part for part in value.split(",") if part.strip()]
    return value if isinstance(value, list) else []


def _id(value) -> int | None:
    """A queue id (a whole number, or its digits), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None
