"""The CRM as the rest of the code sees it: SwitchTransact, or the sandbox for ``make run``.

Both answer contacts in the contract's shape (``to_contact`` in switchtransact.py) and raise our
``Upstream*`` problems on failure.
"""

from __future__ import annotations

from typing import Protocol


class Crm(Protocol):
    name: str

    def record_by_phone(
        self,
        phone: str,
        *,
        deadline: float | None = None,
        retry: bool = True,
        e164: str | None = None,
    ) -> dict | None:
        """The contact under this number, written in one form; None when there is none.

        ``deadline`` is a ``time.monotonic()`` instant; ``retry`` False makes one try only;
        ``e164`` is the number's E.164 when the caller has parsed it already."""

    def record_by_email(
        self, email: str, *, deadline: float | None = None, retry: bool = True
    ) -> dict | None:
        """The contact with this email; None when there is none."""

    def autocomplete(self, term: str, *, deadline: float | None = None) -> list[dict]:
        """Contacts matching a name, company, email or number."""

    def create_contact(
        self, first_name: str, last_name: str, phone: str, *, e164: str | None = None
    ) -> dict:
        """Create a contact, ``phone`` written as the CRM should store it; never retried.
        ``e164`` is that number's E.164, which the created contact shows for it."""

    def log_call(self, payload: dict) -> None:
        """Write one call log (the ``/calls/log`` body); never retried."""


def build_crm(settings, sandbox) -> Crm:
    if settings.crm == "switchtransact":
        from .base import edge_options
        from .switchtransact import SwitchTransactClient

        return SwitchTransactClient(
            settings.crm_url,
            settings.crm_api_key,
            auth_header=settings.crm_auth_header,
            region=settings.default_region,
            **edge_options(settings),
        )
    from .sandbox_crm import SandboxCrm

    return SandboxCrm(sandbox, region=settings.default_region)
