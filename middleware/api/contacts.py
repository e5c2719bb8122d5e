"""Caller lookup for PBXs and agents, contact search and create, and the screen pop."""

from __future__ import annotations

import dataclasses

from flask import Blueprint, Response, current_app, redirect, render_template, request

from schemas.contacts import (
    CallerQuerySchema,
    ContactCreatedSchema,
    ContactCreateSchema,
    LookupQuerySchema,
    LookupSchema,
    SearchQuerySchema,
    SearchResultSchema,
)

from ..auth import ANY_AGENT, allow
from ..errors import failures_as_text
from ..lookup.display import caller_name
from ..lookup.memo import QueryMemo, derived
from ..lookup.text_form import LOOKUP_PATH, asks_for_text, is_text_lookup
from ..numbers import NumberError, parse, pretty
from .common import cti, json_answer
from .spec import describe

bp = Blueprint("contacts", __name__)

# The WSGI path's lookup that failed (``api/lookup_hits.py``), handed to the view to answer: the
# CRM was asked once already, and the view raises that failure rather than asking again.
LOOKUP_FAILED = "cti.lookup_failed"


def find(query, lookup=None, *, fresh_or_unknown: bool = False):
    """The lookup result for a loaded lookup query (``phone`` or ``email``); ``fresh_or_unknown``:
    only such an answer, else None (``Lookup.lookup_phone``)."""
    lookup = lookup or cti().lookup
    if "phone" in query:
        return lookup.lookup_phone(query["phone"], fresh_or_unknown=fresh_or_unknown)
    return lookup.lookup_email(query["email"], fresh_or_unknown=fresh_or_unknown)


LOOKUP = describe(
    tags=["contacts"],
    query=LookupQuerySchema,
    responses={200: LookupSchema, 204: None},
    memo_query=QueryMemo,
)


bp.record_once(lambda state: failures_as_text(state.app, is_text_lookup))


@bp.get(LOOKUP_PATH)
@allow(lookup=True, agent=ANY_AGENT, supervisor=True)
@LOOKUP
def lookup(query):
    """Who is calling: JSON, or the display name as text/plain for a PBX (204 when unknown;
    a failure answers its status with an empty body: ``errors.failures_as_text`` above)."""
    services = cti()
    failed = request.environ.pop(LOOKUP_FAILED, None)
    if failed is not None:
        raise failed
    result = find(query, services.lookup)
    return lookup_response(result, asks_for_text(query.get("format")), services, current_app)


def lookup_response(result, text: bool, services, app) -> Response:
    """The lookup's answer to ``result`` (``text``: the PBX's plain-text form), the view's and
    the WSGI hit path's (``api/lookup_hits.py``). A fresh hit's body is made once per cache
    entry (``middleware/lookup/memo.py``)."""
    if text:
        if not result.found:
            return Response(status=204)
        ascii = services.settings.display_ascii
        return Response(derived(result, ascii, _text_body, ascii), mimetype="text/plain")
    return json_answer(derived(result, "json", _json_body, services.lookup, app.json), app=app)


def answer(result, lookup) -> dict:
    """The JSON answer to a lookup, before ``LookupSchema`` dumps it."""
    return {
        "found": result.found,
        "phone": result.phone,
        "contact": result.contact,
        "cached": result.cached,
        "stale": result.stale,
        "screen_pop_url": lookup.screen_pop_url(result),
        "number_info": result.number_info,
    }


def _json_body(result, lookup, json) -> str:
    return json.dumps(LOOKUP.dump(answer(result, lookup)), separators=(",", ":")) + "\n"


def _text_body(result, ascii: bool) -> str:
    return caller_name(result.contact, result.phone, ascii=ascii)


@bp.get("/api/v1/contacts/search")
@allow(agent=ANY_AGENT, supervisor=True)
@describe(
    tags=["contacts"],
    query=SearchQuerySchema,
    responses={200: SearchResultSchema},
)
def search(query):
    """Contacts matching a name, company, email or number (SwitchTransact autocomplete)."""
    return {"results": cti().lookup.search(query["term"])}


@bp.post("/api/v1/contacts")
@allow(agent=ANY_AGENT)
@describe(
    tags=["contacts"],
    body=ContactCreateSchema,
    responses={201: ContactCreatedSchema},
)
def create_contact(body):
    """Create a contact in the CRM; a cached "not found" for its number is forgotten at once."""
    return {"contact": cti().lookup.create(**body)}


@bp.get("/pop")
@allow(lookup=True, agent=ANY_AGENT, supervisor=True)
@describe(
    tags=["contacts"],
    query=CallerQuerySchema,
    responses={302: None, 200: "text/html"},
    memo_query=QueryMemo,
)
def pop(query):
    """Screen pop: redirect to the caller's CRM record (or the "new caller" page), or show a card."""
    result = find(query)
    region = cti().settings.default_region
    display = None
    if result.phone:
        try:
            display = pretty(parse(result.phone, region))
        except NumberError:  # an email lookup's contact whose CRM number is no valid number
            result = dataclasses.replace(result, phone=None, memo=None)
    target = cti().lookup.screen_pop_url(result)
    if target:
        return redirect(target, 302)
    page = render_template("contact_card.html", result=result, display=display)
    return Response(page, mimetype="text/html")
