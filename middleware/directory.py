"""The agent directory: our agent extension mapped to each upstream's ids and to a person.

Loaded once at start-up from ``CTI_AGENTS_FILE`` (CSV with the header
``extension,user_id,device_id,first_name,last_name,email``). Without a row, a numeric extension
stands for the user id, as the contract says.

An agent has one spelling (``spelling``): an extension of the directory as the directory writes
it, or else plain digits compared as a number (``07602`` is agent ``7602``). The schemas and the
token check read every agent through it, so the rate limit, the dedupe window, tokens and the
dialer all see the same agent however it was typed.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from .settings import SettingsError

COLUMNS = ("extension", "user_id", "device_id", "first_name", "last_name", "email")
_DIGITS = re.compile(r"[0-9]{1,10}\Z")  # ASCII digits only: "٧٦٠٢" is no extension


@dataclass(frozen=True)
class Agent:
    extension: str
    user_id: str | None = None
    device_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None


class AgentDirectory:
    def __init__(self, agents: list[Agent] | None = None):
        self._by_extension = {a.extension: a for a in agents or ()}
        self._by_user = {a.user_id: a for a in agents or () if a.user_id}
        self._by_device = {a.device_id: a for a in agents or () if a.device_id}
        # A numeric extension by its number ("07700" is found as 7700); the first row wins.
        self._by_number: dict[int, str] = {}
        for a in agents or ():
            if _DIGITS.match(a.extension):
                self._by_number.setdefault(int(a.extension), a.extension)

    @classmethod
    def from_csv(cls, path: Path | None) -> AgentDirectory:
        if path is None:
            return cls()
        try:
            with open(path, newline="", encoding="utf-8-sig") as handle:
                reader = csv.DictReader(handle)
                missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
                if missing:
                    raise SettingsError(
                        "CTI_AGENTS_FILE", f"missing column(s) {', '.join(missing)}"
                    )
                agents = []
                for line, row in enumerate(reader, start=2):
                    values = {c: (row.get(c) or "").strip() or None for c in COLUMNS}
                    if not values["extension"]:
                        raise SettingsError("CTI_AGENTS_FILE", f"line {line} has no extension")
                    agents.append(Agent(**values))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise SettingsError("CTI_AGENTS_FILE", f"cannot read it: {exc}") from None
        return cls(agents)

    def spelling(self, value: object) -> str | None:
        """The one spelling of the agent ``value`` names, or None when it names none: the
        directory's extension, else 1 to 10 digits read as a number (no leading zeros)."""
        if not isinstance(value, str):
            return None
        if value in self._by_extension:
            return value
        if not _DIGITS.match(value):
            return None
        number = int(value)
        return self._by_number.get(number) or str(number)

    def resolve(self, extension: str) -> Agent:
        """The directory row, or an agent whose user id is its numeric extension."""
        agent = self._by_extension.get(extension)
        if agent is not None:
            return agent
        return Agent(extension=extension, user_id=extension if extension.isdigit() else None)

    def extensions(self) -> list[str]:
        """Every extension of the directory."""
        return list(self._by_extension)

    def by_user_id(self, user_id) -> Agent | None:
        return self._by_user.get(str(user_id)) if user_id not in (None, "") else None

    def extension_of_user(self, user_id) -> str | None:
        """The extension of a cc_agent user id: its directory row's, else the id itself in its
        one spelling (``spelling``); None when there is no id or it names no agent."""
        if user_id in (None, ""):
            return None
        agent = self.by_user_id(user_id)
        if agent is not None:
            return agent.extension
        return self.spelling(str(user_id).strip())

    def by_device_id(self, device_id) -> Agent | None:
        return self._by_device.get(str(device_id)) if device_id not in (None, "") else None

    def __len__(self) -> int:
        return len(self._by_extension)


def leg_user_id(event: dict):
    """The cc_agent user id of the agent in a call event's leg, as the board and the screen pop
    read it (contract section 4): ``src_user_id`` of an outbound call, ``dst_user_id`` of any
    other; the other field when that one is empty."""
    mine, other = (
        ("src_user_id", "dst_user_id")
        if event.get("type") == "outbound"
        else ("dst_user_id", "src_user_id")
    )
    value = event.get(mine)
    return value if value not in (None, "") else event.get(other)
