"""The sandbox CRM for ``make run``: a few sample contacts, kept in the store.

It has the SwitchTransact client's methods and answers in the same contact shape. Contacts live in
the store, so every gunicorn worker sees the ones any of them created; call logs are recorded there
too (``store.sandbox.call_logs()``) and succeed, but for one number: the CRM refuses the call log
of a call with ``REFUSED_NUMBER`` (422, as SwitchTransact answers a log it cannot take), so the
supervisor console has a failed call log to show and retry (``flask --app app sandbox floor``).
"""

from __future__ import annotations

import logging
import uuid

from ..errors import UpstreamError, UpstreamUnavailable
from ..numbers import NumberError, parse
from ..numbers import e164 as e164_of
from .switchtransact import normalise_phone, to_contact

log = logging.getLogger(__name__)

REFUSED_NUMBER = "+27105550199"  # a valid Johannesburg number, kept for refusals

SAMPLE_CONTACTS = (
    {
        "id": "2916509f-f188-42d8-ab0e-a27bcb20d70d",
        "firstname": "James",
        "lastname": "May",
        "company": "My Company name",
        "customer_number": "3008821",
        "mobilephone": "+27721234567",
        "email": "james@may.com",
        "entity_type": "Account",
    },
    {
        "id": "7c1e2b40-5d0a-4f6e-9a51-3b8f0c2d9e11",
        "firstname": "Thandi",
        "lastname": "Nkosi",
        "company": "Nkosi Logistics",
        "customer_number": "3008822",
        "mobilephone": "+27821112222",
        "businessphone": "+27115551234",
        "email": "thandi@nkosi.example",
        "entity_type": "Contact",
    },
    {
        "id": "b4f3a9d2-0e6c-4b7a-8d15-6a2c9e1f7b30",
        "company": "Cape Fruit Exporters",
        "customer_number": "3008823",
        "businessphone": "+27317654321",
        "email": "info@capefruit.example",
        "entity_type": "Lead",
    },
)


class SandboxCrm:
    name = "sandbox"

    def __init__(self, sandbox, *, region: str):
        self.sandbox = sandbox  # the store's sandbox CRM (``store.sandbox``)
        self.region = region
        self._seeded = False
        try:
            self._seed()
        except UpstreamUnavailable:  # the store is down at start-up: seeded on first use
            log.warning("sandbox CRM: the store is unavailable; its sample contacts come later")

    def _seed(self) -> None:
        """The sample contacts, once (the store keeps them)."""
        if not self._seeded:
            for record in SAMPLE_CONTACTS:
                self.sandbox.add_contact(to_contact(record, self.region))
            self._seeded = True

    def record_by_phone(
        self, phone: str, *, deadline=None, retry: bool = True, e164: str | None = None
    ) -> dict | None:
        self._seed()
        try:
            wanted = e164 or e164_of(parse(phone, self.region))
        except NumberError:
            return None
        for contact in self.sandbox.contacts():
            if wanted in _numbers(contact):
                return contact
        return None

    def record_by_email(self, email: str, *, deadline=None, retry: bool = True) -> dict | None:
        self._seed()
        wanted = email.strip().lower()
        for contact in self.sandbox.contacts():
            if (contact.get("email") or "").lower() == wanted:
                return contact
        return None

    def autocomplete(self, term: str, *, deadline: float | None = None) -> list[dict]:
        self._seed()
        needle = term.strip().lower()
        digits = "".join(c for c in needle if c.isdigit())
        found = []
        for contact in self.sandbox.contacts():
            words = " ".join(
                contact.get(k) or "" for k in ("name", "company", "email", "customer_number")
            ).lower()
            numbers = " ".join(_numbers(contact))
            if (needle and needle in words) or (len(digits) >= 3 and digits in numbers):
                found.append(contact)
        return found

    def create_contact(
        self, first_name: str, last_name: str, phone: str, *, e164: str | None = None
    ) -> dict:
        self._seed()
        contact = to_contact(
            {
                "id": str(uuid.uuid4()),
                "firstname": first_name,
                "lastname": last_name,
                "mobilephone": e164 or normalise_phone(phone, self.region),
                "entity_type": "Contact",
            },
            self.region,
        )
        self.sandbox.add_contact(contact)
        return contact

    def log_call(self, payload: dict) -> None:
        self._seed()
        if payload.get("Number") == REFUSED_NUMBER:
            raise UpstreamError(
                self.name, "the CRM refused the call log: no such account", upstream_status=422
            )
        self.sandbox.add_call_log(payload)
        log.info("sandbox CRM: call log %s %s", payload.get("CallType"), payload.get("Number"))


def _numbers(contact: dict) -> tuple[str, ...]:
    keys = ("mobile_phone", "business_phone", "business_phone2")
    return tuple(contact[k] for k in keys if contact.get(k))
