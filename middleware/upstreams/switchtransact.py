"""SwitchTransact CRM (switchtransact-crm.txt): contact records, autocomplete, create, call logs.

Every answer is JSON with a ``status`` flag. ``{"status": false}`` alone on a record lookup means
"no such contact"; with an ``error`` it is a failure whatever the HTTP status. The key travels in
``CTI_CRM_AUTH_HEADER``: ``Authorization: Bearer KEY``, or the bare key under any other name.
Contacts leave this module in the contract's shape (snake_case, numbers E.164), so nothing else
knows the CRM's field names.
"""

from __future__ import annotations

from ..errors import UpstreamAuth, UpstreamError
from ..numbers import NumberError, e164, parse
from ..runtime.secrets import scrub
from .base import HttpUpstream, Reply

CONTACT_FIELDS = (
    "id",
    "name",
    "first_name",
    "last_name",
    "company",
    "customer_number",
    "email",
    "mobile_phone",
    "business_phone",
    "business_phone2",
    "entity_type",
)
# our field: the CRM's spellings, first present wins
_UPSTREAM_NAMES = {
    "id": ("id",),
    "first_name": ("firstname", "first_name"),
    "last_name": ("lastname", "last_name"),
    "company": ("company",),
    "customer_number": ("customer_number",),
    "email": ("email",),
    "mobile_phone": ("mobilephone", "mobile_phone", "phone"),
    "business_phone": ("businessphone", "business_phone"),
    "business_phone2": ("businessphone2", "business_phone2"),
    "entity_type": ("entity_type", "entitytype"),
}
_PHONE_FIELDS = ("mobile_phone", "business_phone", "business_phone2")


def display_name(first: str | None, last: str | None, company: str | None) -> str | None:
    """ "first last", or the company when both names are empty."""
    name = " ".join(part.strip() for part in (first, last) if part and part.strip())
    return name or (company.strip() if company and company.strip() else None)


def to_contact(record: dict, region: str, known: dict[str, str] | None = None) -> dict:
    """A CRM record in the contract's contact shape; absent fields are None, numbers E.164.

    ``known`` maps numbers as written to their E.164, for the ones the caller already parsed (the
    number a record was looked up by comes back in it): those are not parsed again."""
    contact: dict = dict.fromkeys(CONTACT_FIELDS)
    for ours, theirs in _UPSTREAM_NAMES.items():
        for name in theirs:
            value = record.get(name)
            if value not in (None, ""):
                contact[ours] = value if isinstance(value, str) else str(value)
                break
    for name in _PHONE_FIELDS:
        if contact[name]:
            text = contact[name]
            contact[name] = (
                known[text] if known and text in known else normalise_phone(text, region)
            )
    contact["name"] = display_name(contact["first_name"], contact["last_name"], contact["company"])
    return contact


def normalise_phone(text: str, region: str) -> str:
    """E.164 when the CRM's number parses: as a number of ``region`` first (a national number,
    even one without its trunk 0), else as international digits the CRM wrote without their "+"
    ("12025550123"); otherwise the CRM's text, trimmed."""
    written = text.strip()
    try:
        return e164(parse(written, region))
    except NumberError:
        pass
    if written[:1].isdigit():
        try:
            return e164(parse("+" + written, region))
        except NumberError:
            pass
    return written


class SwitchTransactClient(HttpUpstream):
    name = "switchtransact"

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        auth_header: str = "Authorization",
        region: str = "ZA",
        **kwargs,
    ):
        super().__init__(base_url, **kwargs)
        self.region = region
        value = f"Bearer {api_key}" if auth_header.lower() == "authorization" else api_key
        self.session.headers[auth_header] = value
        self.session.headers["Accept"] = "application/json"

    # reads (idempotent, retried within the deadline) ----------------------------------------

    def record_by_phone(
        self,
        phone: str,
        *,
        deadline: float | None = None,
        retry: bool = True,
        e164: str | None = None,
    ) -> dict | None:
        """The contact under this number as written (one form), or None when there is none.
        ``e164``: the number's E.164, when the caller has it."""
        return self._record({"phone": phone}, deadline, retry, {phone: e164} if e164 else None)

    def record_by_email(
        self, email: str, *, deadline: float | None = None, retry: bool = True
    ) -> dict | None:
        return self._record({"email": email}, deadline, retry)

    def autocomplete(self, term: str, *, deadline: float | None = None) -> list[dict]:
        """Contacts matching a name, company, email or number; the CRM may send one or a list."""
        reply = self.request(
            "GET",
            "/calls/autocomplete",
            op="autocomplete",
            params={"term": term},
            idempotent=True,
            deadline=deadline,
        )
        body = self._body(reply)
        if isinstance(body, list):
            found = body
        elif not isinstance(body, dict):  # a string, a number, true: no contact can be read
            raise self.fail(reply, "answered with an unexpected JSON shape")
        elif body.get("status") is False:
            if body.get("error") or reply.status >= 400:
                raise self._failure(reply, body)
            return []
        elif reply.status >= 400:
            raise self._failure(reply, body)
        else:
            found = body.get("contact", body.get("contacts", body.get("results")))
        if isinstance(found, dict):
            found = [found]
        if not isinstance(found, list):
            return []
        return [to_contact(item, self.region) for item in found if isinstance(item, dict)]

    def _record(
        self, params: dict, deadline: float | None, retry: bool, known: dict | None = None
    ) -> dict | None:
        reply = self.request(
            "GET", "/calls/record", op="record", params=params, idempotent=retry, deadline=deadline
        )
        body = self._body(reply)
        if not isinstance(body, dict):
            raise self.fail(reply, "answered with an unexpected JSON shape")
        if body.get("status") is False and not body.get("error") and reply.status in (200, 404):
            return None
        if reply.status >= 400 or body.get("status") is not True:
            raise self._failure(reply, body)
        record = body.get("contact")
        if not isinstance(record, dict) or not record:
            return None
        return to_contact(record, self.region, known)

    # writes (never retried) -----------------------------------------------------------------

    def create_contact(
        self, first_name: str, last_name: str, phone: str, *, e164: str | None = None
    ) -> dict:
        """Create the contact (``phone`` as the CRM should store it); the created record.
        ``e164``: the number's E.164, when the caller has it (the record shows it for ``phone``,
        however that is written)."""
        sent = {"firstname": first_name, "lastname": last_name, "phone": phone}
        reply = self.request("POST", "/calls/create", op="create", json=sent)
        body = self._body(reply)
        if not isinstance(body, dict):
            raise self.fail(reply, "answered with an unexpected JSON shape")
        if reply.status >= 400 or body.get("status") is False:
            raise self._failure(reply, body)
        record = body.get("contact") if isinstance(body.get("contact"), dict) else body
        return to_contact({**sent, **record}, self.region, {phone: e164} if e164 else None)

    def log_call(self, payload: dict) -> None:
        """Write one call log. Never retried: ``/calls/log`` takes no idempotency key."""
        reply = self.request("POST", "/calls/log", op="log", json=payload)
        body = self._body(reply, allow_empty=reply.status < 300)
        if reply.status >= 300 or (isinstance(body, dict) and body.get("status") is False):
            raise self._failure(reply, body if isinstance(body, dict) else {})

    # answers --------------------------------------------------------------------------------

    def _body(self, reply: Reply, *, allow_empty: bool = False):
        if not reply.content.strip():
            if allow_empty:
                return {}
            raise self.fail(reply, None)
        try:
            return reply.json()
        except UpstreamError:
            raise self.fail(
                reply, None if reply.status >= 400 else "answered with non-JSON"
            ) from None

    def _failure(self, reply: Reply, body: dict) -> UpstreamError:
        message = body.get("error") or body.get("message") or None
        error = self.fail(reply, str(message) if message else None)
        if message and str(message).lower().startswith("not authorized"):
            auth = UpstreamAuth(self.name, scrub(str(message)), upstream_status=reply.status)
            auth.retry_after = error.retry_after
            return auth
        return error
