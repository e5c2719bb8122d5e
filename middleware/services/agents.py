"""Agent status, calls in progress and leads through the configured agent provider; the schedule
through ibizfone.

Each operation first asks whether the provider offers it (501 ``unsupported`` if not; the view has
validated the input already, so a malformed request is 422 whatever the provider), then resolves
the agent through the directory, then makes one upstream request (cc_agent's check-in makes two).
"""

from __future__ import annotations

import logging
from datetime import date, time

from ..directory import Agent, AgentDirectory
from ..errors import Unsupported, ValidationFailed
from ..numbers import NumberError, dial_string, e164, parse
from ..settings import DEFAULT_DIAL_FORMAT, Settings
from ..store import DONE, OWNER, Claims
from ..upstreams import AgentProvider

log = logging.getLogger(__name__)

#: What each operation is, in words, for the 501 detail.
OPERATIONS = {
    "available": "set an agent available",
    "paused": "pause an agent",
    "offline": "set an agent offline",
    "queues": "set an agent's queues",
    "queue_list": "list the queues an agent may join",
    "wrapup": "start wrap-up",
    "calls": "list active calls",
    "hangup": "hang up a call",
    "hold": "hold a call",
    "retrieve": "retrieve a held call",
    "dispose": "dispose a call",
    "recording": "start or stop a recording",
    "result_codes": "list result codes",
    "lead_phones": "list the phones of a lead",
    "change_lead": "change the lead of a call",
    "create_lead": "create a lead for a call",
    "connect_calls": "connect two calls",
}
# cc_agent must check in an agent we checked out before a pause can be unset; the mark is kept in
# the store (so every worker sees it) as a finished claim, for this long.
CHECKED_OUT_SECONDS = 30 * 86400


class AgentControl:
    def __init__(
        self,
        settings: Settings,
        claims: Claims,
        provider: AgentProvider,
        directory: AgentDirectory,
        *,
        board=None,
    ):
        self.settings = settings
        self.claims = claims  # checked-out marks (``store.claims``)
        self.provider = provider
        self.directory = directory
        self.board = board  # ``services.board.Board``: told of each status the provider accepted
        name = provider.name
        self.dial_format = (
            settings.dial_format
            if settings.dialer == name
            else DEFAULT_DIAL_FORMAT.get(name, "e164")
        )

    def _agent(self, operation: str, extension: str, field: str = "agent") -> Agent:
        """501 for an operation the provider lacks, 422 for an agent it cannot address.

        Call it before touching the provider's method: a provider lacks the methods of the
        operations it does not offer.
        """
        if operation not in self.provider.agent_operations:
            raise Unsupported(
                f"The {self.provider.name} agent provider cannot {OPERATIONS[operation]}."
            )
        agent = self.directory.resolve(extension)
        if self.provider.agent_needs_user_id and not agent.user_id:
            raise ValidationFailed(
                f"Agent {extension} has no user id in the agent directory.",
                errors={field: ["Unknown agent: add it to CTI_AGENTS_FILE."]},
            )
        return agent

    def _answer(self, **fields) -> dict:
        return {**fields, "provider": self.provider.name}

    # agents ------------------------------------------------------------------------------------

    def set_status(self, extension: str, status: str, pause_id: int | None = None) -> dict:
        agent = self._agent(status, extension, "extension")
        key = f"agent-checked-out:{self.provider.name}:{extension}"
        mark = self.claims.peek(key) if status == "available" else None
        checked_out = mark is not None and mark.state == DONE
        extra = self.provider.set_status(agent, status, pause_id, checked_out=checked_out)
        if status == "offline":
            claim = self.claims.claim(key, lease=60)
            if claim.state == OWNER:
                self.claims.complete(key, claim.token, status=200, body="", ttl=CHECKED_OUT_SECONDS)
        elif checked_out:
            self.claims.release(key, mark.token)
        log.info("agent %s set %s through %s", extension, status, self.provider.name)
        if self.board is not None:
            self.board.status_set(extension, status)  # never fails the request: logged
        pause = pause_id if status == "paused" else None
        return {
            "agent": extension,
            "status": status,
            "pause_id": pause,
            "provider": self.provider.name,
            **extra,
        }

    def set_queues(self, extension: str, queue_ids: list[int]) -> dict:
        agent = self._agent("queues", extension, "extension")
        self.provider.set_queues(agent, queue_ids)
        return self._answer(agent=extension, queue_ids=queue_ids)

    def list_queues(self, extension: str) -> dict:
        agent = self._agent("queue_list", extension, "extension")
        return self._answer(agent=extension, queues=self.provider.list_queues(agent))

    def wrapup(self, extension: str, seconds: int | None = None) -> dict:
        agent = self._agent("wrapup", extension, "extension")
        self.provider.wrapup(agent, seconds)
        return self._answer(agent=extension, seconds=seconds)

    def active_calls(self, extension: str) -> dict:
        agent = self._agent("calls", extension, "extension")
        calls = self.provider.active_calls(agent)
        return {"calls": [{**c, "phone_number": self._e164(c.get("phone_number"))} for c in calls]}

    # calls in progress -------------------------------------------------------------------------

    def call_action(self, call_id: str, action: str, *, agent: str) -> dict:
        resolved = self._agent(action, agent)
        self.provider.call_action(resolved, call_id, action)
        return self._answer(call_id=call_id, agent=agent, action=action)

    def dispose(self, call_id: str, *, agent: str, result_code: str) -> dict:
        resolved = self._agent("dispose", agent)
        self.provider.dispose(resolved, call_id, result_code)
        return self._answer(call_id=call_id, agent=agent, action="dispose", result_code=result_code)

    def set_recording(self, call_id: str, *, agent: str, recording: bool) -> dict:
        resolved = self._agent("recording", agent)
        self.provider.set_recording(resolved, call_id, recording)
        return self._answer(call_id=call_id, agent=agent, recording=recording)

    def result_codes(self, *, agent: str) -> dict:
        resolved = self._agent("result_codes", agent)
        return {"result_codes": self.provider.result_codes(resolved)}

    # leads -------------------------------------------------------------------------------------

    def lead_phones(self, lead_id: str, *, agent: str) -> dict:
        resolved = self._agent("lead_phones", agent)
        phones = self.provider.lead_phones(resolved, lead_id)
        return {
            "lead_id": lead_id,
            "phones": [{**p, "phone_number": self._e164(p.get("phone_number"))} for p in phones],
        }

    def change_lead(self, call_id: str, *, agent: str, lead_phone_id: str) -> dict:
        resolved = self._agent("change_lead", agent)
        self.provider.change_lead(resolved, call_id, lead_phone_id)
        return self._answer(call_id=call_id, agent=agent, lead_phone_id=lead_phone_id)

    def create_lead(self, call_id: str, *, agent: str, phone) -> dict:
        resolved = self._agent("create_lead", agent)
        dial = dial_string(phone, self.dial_format, self.settings.default_region)
        lead_id = self.provider.create_lead(resolved, call_id, dial)
        return self._answer(call_id=call_id, agent=agent, phone=e164(phone), lead_id=lead_id)

    def connect_calls(
        self,
        call_id: str,
        *,
        agent: str,
        other_call_id: str,
        result_code: str,
        other_result_code: str,
        notes: str | None = None,
        other_notes: str | None = None,
        sales: int | None = None,
        other_sales: int | None = None,
    ) -> dict:
        resolved = self._agent("connect_calls", agent)
        first = {"call_id": call_id, "result_code": result_code, "notes": notes, "sales": sales}
        second = {
            "call_id": other_call_id,
            "result_code": other_result_code,
            "notes": other_notes,
            "sales": other_sales,
        }
        self.provider.connect_calls(resolved, first, second)
        return self._answer(
            call_id=call_id, other_call_id=other_call_id, agent=agent, action="connect"
        )

    def _e164(self, raw: str | None) -> str | None:
        """A number the upstream wrote, in E.164 when it parses; as given otherwise."""
        if not raw:
            return raw
        try:
            return e164(parse(raw, self.settings.default_region))
        except NumberError:
            return raw


class Schedule:
    """Holidays and office hours of the IVR; ibizfone only, whatever CTI_AGENT_PROVIDER says."""

    def __init__(self, ibizfone):
        self.ibizfone = ibizfone

    def _client(self):
        if self.ibizfone is None:
            raise Unsupported(
                "The schedule needs ibizfone: set CTI_IBIZFONE_URL, CTI_IBIZFONE_API_KEY and "
                "CTI_IBIZFONE_CUSTID."
            )
        return self.ibizfone

    def set_holiday(self, day: date) -> dict:
        self._client().holiday(day)
        return {"date": day.isoformat(), "holiday": True, "provider": "ibizfone"}

    def set_office_hours(self, day: str, start: time, end: time) -> dict:
        self._client().office_time(day, start, end)
        return {
            "day": day,
            "start": start.strftime("%H:%M"),
            "end": end.strftime("%H:%M"),
            "provider": "ibizfone",
        }
