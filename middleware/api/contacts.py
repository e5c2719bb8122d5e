"""Caller lookup for PBXs and agents, contact search and create, and the screen pop."""

from __future__ import annotations

import dataclasses
from functools import lru_cache

from flask import Blueprint, Response, current_app, redirect, render_template

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
from ..display import caller_name
from ..numbers import NumberError, parse, pretty
from ..text_form import LOOKUP_PATH, asks_for_text
from .common import cti, json_answer, json_body, load, load_query, query_args
from .spec import describe

bp = Blueprint("contacts", __name__)
lookup_schema = LookupSchema()
search_query_schema = SearchQuerySchema()
search_result_schema = SearchResultSchema()
created_schema = ContactCreatedSchema()
LOOKUP_PROBLEMS = (401, 422, 502, 503, 504)


def _find(query: dict):
    lookup = cti().lookup
    if "phone" in query:
        return lookup.lookup_phone(query["phone"])
    return lookup.lookup_email(query["email"])


@bp.get(LOOKUP_PATH)
@allow(lookup=True, agent=ANY_AGENT)
@describe(
    tags=["contacts"],
    query=LookupQuerySchema,
    responses={200: LookupSchema, 204: None},
    problems=LOOKUP_PROBLEMS,
    text_form=True,
)
def lookup():
    """Who is calling: JSON, or the display name as text/plain for a PBX (204 when unknown;
    a failure answers its status with an empty body, see ``errors.render``)."""
    query = load_query(cti().schemas.contact_lookup)
    result = _find(query)
    if asks_for_text(query.get("format")):
        if not result.found:
            return Response(status=204)
        return Response(_text(result, cti().settings.display_ascii), mimetype="text/plain")
    if result.cached and not result.stale:  # a fresh hit: the same result object each time
        body = _json_answer(cti().lookup, result)
    else:
        body = _json_body(cti().lookup, result)
    return json_answer(body)


def _json_body(lookup, result) -> str:
    answer = {
        "found": result.found,
        "phone": result.phone,
        "contact": result.contact,
        "cached": result.cached,
        "stale": result.stale,
        "screen_pop_url": lookup.screen_pop_url(result),
    }
    return current_app.json.dumps(lookup_schema.dump(answer), separators=(",", ":")) + "\n"


def _text_body(result, ascii: bool) -> str:
    return caller_name(result.contact, result.phone, ascii=ascii)


# The body of a fresh hit, made once per cache entry rather than on every ring of that caller.
_json_answer = lru_cache(maxsize=4096)(_json_body)
_text_answer = lru_cache(maxsize=4096)(_text_body)


def _text(result, ascii: bool) -> str:
    if result.cached and not result.stale:
        return _text_answer(result, ascii)
    return _text_body(result, ascii)


@bp.get("/api/v1/contacts/search")
@allow(agent=ANY_AGENT)
@describe(
    tags=["contacts"],
    query=SearchQuerySchema,
    responses={200: SearchResultSchema},
    problems=LOOKUP_PROBLEMS,
)
def search():
    """Contacts matching a name, company, email or number (SwitchTransact autocomplete)."""
    query = load(search_query_schema, query_args())
    return search_result_schema.dump({"results": cti().lookup.search(query["term"])})


@bp.post("/api/v1/contacts")
@allow(agent=ANY_AGENT)
@describe(
    tags=["contacts"],
    body=ContactCreateSchema,
    responses={201: ContactCreatedSchema},
    problems=(401, 413, 422, 502, 503, 504),
)
def create_contact():
    """Create a contact in the CRM; a cached "not found" for its number is forgotten at once."""
    contact = cti().lookup.create(**load(cti().schemas.contact_create, json_body()))
    return created_schema.dump({"contact": contact}), 201


@bp.get("/pop")
@allow(lookup=True, agent=ANY_AGENT)
@describe(
    tags=["contacts"],
    query=CallerQuerySchema,
    responses={302: None, 200: "text/html"},
    problems=LOOKUP_PROBLEMS,
)
def pop():
    """Screen pop: redirect to the caller's CRM record (or the "new caller" page), or show a card."""
    query = load_query(cti().schemas.contact_pop)
    result = _find(query)
    region = cti().settings.default_region
    display = None
    if result.phone:
        try:
            display = pretty(parse(result.phone, region))
        except NumberError:  # an email lookup's contact whose CRM number is no valid number
            result = dataclasses.replace(result, phone=None)
    target = cti().lookup.screen_pop_url(result)
    if target:
        return redirect(target, 302)
    page = render_template("contact_card.html", result=result, display=display)
    return Response(page, mimetype="text/html")
