"""ibizfone IVR settings (ibizfone-ivr.txt): agent on/off, holidays and office hours.

Every request is ``GET /settings/handler.ashx?apikey=…&custid=…&action=…``; the answer is plain
text: ``Success``, or the reason it failed (the document names ``Invalid Time``). Times go out in
the 12-hour form the document shows (``09:00 AM``). The call-log push from the IVR to us is a
webhook and needs none of this.
"""

from __future__ import annotations

from datetime import date, time

from ..directory import Agent
from .base import HttpUpstream, edge_options

HANDLER = "/settings/handler.ashx"
AGENT_STATUS = {"available": "AVAIL", "paused": "OFF", "offline": "OFF"}


class IbizfoneClient(HttpUpstream):
    name = "ibizfone"
    agent_operations = frozenset(AGENT_STATUS)
    agent_needs_user_id = False  # the IVR knows agents by their number: our extension

    def __init__(self, base_url: str, api_key: str, custid: str, **kwargs):
        super().__init__(base_url, **kwargs)
        self.credentials = {"apikey": api_key, "custid": custid}

    def _handler(self, action: str, params: dict) -> None:
        """One settings action; anything but ``Success`` is a failure whose text is the detail."""
        reply = self.request(
            "GET", HANDLER, op=action, params={**self.credentials, "action": action, **params}
        )
        text = reply.text.strip()
        if reply.status >= 400 or text.lower() != "success":
            raise self.fail(reply, " ".join(text.split())[:200] or None)

    def set_status(self, agent: Agent, status: str, pause_id, *, checked_out=False) -> dict:
        """AVAIL or OFF: the IVR has no pause, so paused is OFF and a pause id is not kept."""
        self._handler("ManageAgent", {"agentnum": agent.extension, "status": AGENT_STATUS[status]})
        return {"pause_id": None}

    def holiday(self, day: date) -> None:
        self._handler("holiday", {"hdate": day.isoformat()})

    def office_time(self, day: str, start: time, end: time) -> None:
        self._handler(
            "OfficeTime", {"day": day, "st_time": twelve_hour(start), "en_time": twelve_hour(end)}
        )


def twelve_hour(moment: time) -> str:
    """``09:00 AM``, ``05:30 PM``, ``12:00 PM`` (noon), ``12:15 AM``: no locale involved."""
    hour = moment.hour % 12 or 12
    return f"{hour:02d}:{moment.minute:02d} {'AM' if moment.hour < 12 else 'PM'}"


def build_ibizfone(settings) -> IbizfoneClient | None:
    """The client when CTI_IBIZFONE_URL, _API_KEY and _CUSTID are all set, else None."""
    if not (settings.ibizfone_url and settings.ibizfone_api_key and settings.ibizfone_custid):
        return None
    return IbizfoneClient(
        settings.ibizfone_url,
        settings.ibizfone_api_key,
        settings.ibizfone_custid,
        **edge_options(settings),
    )
