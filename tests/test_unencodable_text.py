"""Text that cannot be encoded (a lone UTF-16 surrogate, bytes that are not UTF-8) is a malformed
field wherever it arrives: 422 ``validation_error`` naming the field (the ibizfone push: ``Invalid
Data`` 400), never a 500, and nothing is stored. Such text in the CRM's answers is replaced (U+FFFD)
where the upstream client parses them, so it fails no lookup, pop or call log."""

from __future__ import annotations

import importlib
import json
import pkgutil
from urllib.parse import quote, quote_from_bytes

import marshmallow
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import fields

import schemas
from schemas.contacts import ContactCreateSchema
from schemas.fields import Schema
from schemas.journal import IbizfonePushSchema, PbxEventSchema

from .conftest import API_KEY, WEBHOOK_SECRET
from .journal_fakes import (
    CRM_ENV,
    HOOK,
    LOG_URL,
    RECORD_URL,
    call_end,
    crm_logs,
    deliver,
    sent_logs,
)
from .journal_fakes import IVR_PUSH as ANSWERED_PUSH

PBX = "/api/v1/webhooks/pbx"
IBIZFONE = "/api/v1/webhooks/ibizfone"
CONTACTS = "/api/v1/contacts"
KEY = {"X-API-Key": API_KEY}
FORM = "application/x-www-form-urlencoded"
NOT_TEXT = "Not valid text: it holds a lone surrogate or bytes that are not UTF-8."

IVR_PUSH = {  # every field of a push
    **ANSWERED_PUSH,
    "agentnumber": "6001",
    "state": "done",
    "ibizfonenumber": "0215550000",
    "recordingurl": "https://rec.example/r/77.mp3",
    "department": "sales",
}
PBX_EVENT = call_end(
    call_id="call-1",
    src_user_id="100",
    cid_name="James",
    src_device_id="d1",
    dst_device_id="d2",
    recording_url="https://rec.example/r/1.mp3",
)
NEW_CONTACT = {
    "first_name": "Ann",
    "last_name": "Lee",
    "phone": "083 123 4567",
    "email": "ann@example.com",
    "company": "Acme",
}


def text_fields(schema) -> list[str]:
    """Every field of ``schema`` that loads from text (all but numbers and booleans)."""
    return sorted(
        field.data_key or name
        for name, field in schema().load_fields.items()
        if not isinstance(field, fields.Number | fields.Boolean)
    )


PBX_FIELDS = text_fields(PbxEventSchema)
IBIZFONE_FIELDS = text_fields(IbizfonePushSchema)
CONTACT_FIELDS = text_fields(ContactCreateSchema)


def test_every_schema_checks_its_text_once_through_the_shared_base():
    """No schema loads outside input without the check (``schemas.fields.Schema``)."""
    classes = [
        value
        for info in pkgutil.iter_modules(schemas.__path__)
        for value in vars(importlib.import_module(f"schemas.{info.name}")).values()
        if isinstance(value, type) and issubclass(value, marshmallow.Schema)
    ]
    assert len(classes) > 40
    assert [c.__name__ for c in classes if not issubclass(c, Schema)] == []


def test_every_field_the_probe_named_is_covered():
    assert {"dst_user_id", "src_user_id", "call_id", "recording_url", "event"} <= set(PBX_FIELDS)
    assert {"agentnumber", "recordingurl", "calllogid"} <= set(IBIZFONE_FIELDS)
    assert set(CONTACT_FIELDS) == set(NEW_CONTACT)


# what the senders may send -----------------------------------------------------------------------

_plain = st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), max_size=6)
_surrogate = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
#: text with one lone surrogate in it (JSON writes it as ``\udXXX``)
bad_text = st.builds(lambda a, s, b: a + s + b, _plain, _surrogate, _plain)


def _not_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


#: bytes that are not UTF-8 (an encoded surrogate, or any invalid run) between valid text
bad_bytes = st.builds(
    lambda a, bad, b: a.encode() + bad + b.encode(),
    _plain,
    st.one_of(
        _surrogate.map(lambda s: s.encode("utf-8", "surrogatepass")),
        st.binary(min_size=1, max_size=4).filter(_not_utf8),
    ),
    _plain,
)


def json_body(data: dict, raw: bool) -> bytes:
    """``data`` as JSON: surrogates as ``\\u`` escapes, or (``raw``) as the bytes they would be."""
    if raw:
        return json.dumps(data, ensure_ascii=False).encode("utf-8", "surrogatepass")
    return json.dumps(data).encode()


def urlencoded(data: dict[str, str | bytes], percent: bool) -> str:
    """A query string; bytes values percent-encoded (``percent``) or, past ASCII, written as they
    are (each byte one character: the latin-1 text WSGI gives an app)."""

    def value(v):
        raw = v if isinstance(v, bytes) else v.encode()
        if percent:
            return quote_from_bytes(raw, safe="")
        return "".join(quote(chr(b), safe="") if b < 0x80 else chr(b) for b in raw)

    return "&".join(f"{quote(k)}={value(v)}" for k, v in data.items())


def form_body(data: dict[str, str | bytes], percent: bool) -> bytes:
    """A form body: the bytes of ``urlencoded``."""
    return urlencoded(data, percent).encode("latin-1")


def assert_refused_naming(response, names) -> None:
    assert response.status_code == 422, response.data
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["code"] == "validation_error"
    for name in names:
        assert problem["errors"][name] == [NOT_TEXT]


def assert_invalid_data(response) -> None:
    assert (response.status_code, response.mimetype, response.data) == (
        400,
        "text/plain",
        b"Invalid Data",
    )


def store_of(app):
    return app.extensions["cti"].store


def nothing_journaled(app) -> bool:
    store = store_of(app)
    return sum(store.journal.counts().values()) == 0 and store.events.last_id() == 0


HYPOTHESIS = settings(
    max_examples=40,
    deadline=None,
    # one app per test: every example must leave its store as empty as the last one did
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


# the probe's cases -------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["dst_user_id", "src_user_id", "call_id", "recording_url"])
def test_pbx_event_with_a_lone_surrogate_is_a_validation_error_naming_it(make_app, field):
    app = make_app()

    response = app.test_client().post(
        PBX,
        data=json.dumps({**PBX_EVENT, field: "\ud800"}),
        headers=HOOK,
        content_type="application/json",
    )

    assert_refused_naming(response, [field])
    assert nothing_journaled(app)


@pytest.mark.parametrize("field", ["agentnumber", "recordingurl", "calllogid"])
def test_ibizfone_json_push_with_a_lone_surrogate_is_invalid_data(make_app, field):
    app = make_app()

    response = app.test_client().post(
        IBIZFONE,
        data=json.dumps({**IVR_PUSH, field: "\ud800"}),
        headers=HOOK,
        content_type="application/json",
    )

    assert_invalid_data(response)
    assert nothing_journaled(app)


def test_contact_named_with_a_lone_surrogate_is_refused_and_its_pop_still_answers(make_app):
    app = make_app()  # the sandbox CRM: contacts live in the store
    client = app.test_client()
    before = store_of(app).sandbox.contacts()

    response = client.post(CONTACTS, json={**NEW_CONTACT, "first_name": "\ud800"}, headers=KEY)

    assert_refused_naming(response, ["first_name"])
    assert store_of(app).sandbox.contacts() == before
    pop = client.get("/pop?phone=0831234567", headers=KEY)
    assert (pop.status_code, pop.mimetype) == (200, "text/html")


def test_valid_text_beyond_ascii_is_still_accepted(make_app):
    """An escaped surrogate pair is one valid character (U+1F600), not two lone ones."""
    app = make_app()
    client = app.test_client()
    event = {**PBX_EVENT, "cid_name": "Zoë \U0001f600", "recording_url": "https://r.example/ü"}

    for body in (json.dumps(event).encode(), json.dumps(event, ensure_ascii=False).encode()):
        answer = client.post(PBX, data=body, headers=HOOK, content_type="application/json")
        assert answer.status_code == 202, answer.data
    push = urlencoded({**IVR_PUSH, "department": "Ventes é"}, percent=True)
    assert client.get(f"{IBIZFONE}?{push}", headers=HOOK).data == b"Accepted"
    assert store_of(app).journal.counts()["pending"] == 2


# every text field, every way it can arrive (properties) ------------------------------------------


@HYPOTHESIS
@given(
    bad=st.dictionaries(st.sampled_from(PBX_FIELDS), bad_text, min_size=1),
    raw=st.booleans(),
)
def test_pbx_json_event_with_unencodable_text_in_any_field_is_refused(app, bad, raw):

    response = app.test_client().post(
        PBX,
        data=json_body({**PBX_EVENT, **bad}, raw),
        headers=HOOK,
        content_type="application/json",
    )

    assert_refused_naming(response, bad)
    assert nothing_journaled(app)


@HYPOTHESIS
@given(
    bad=st.dictionaries(st.sampled_from(PBX_FIELDS), bad_bytes, min_size=1),
    percent=st.booleans(),
)
def test_pbx_form_event_with_bytes_not_utf8_in_any_field_is_refused(app, bad, percent):
    event = {k: str(v) for k, v in PBX_EVENT.items()}

    response = app.test_client().post(
        PBX, data=form_body({**event, **bad}, percent), headers=HOOK, content_type=FORM
    )

    assert_refused_naming(response, bad)
    assert nothing_journaled(app)


@HYPOTHESIS
@given(
    bad=st.dictionaries(st.sampled_from(IBIZFONE_FIELDS), bad_bytes, min_size=1),
    percent=st.booleans(),
    method=st.sampled_from(["GET", "POST"]),
)
def test_ibizfone_query_push_with_bytes_not_utf8_in_any_field_is_invalid_data(
    app, bad, percent, method
):

    response = app.test_client().open(
        IBIZFONE,
        method=method,
        headers=HOOK,
        environ_overrides={"QUERY_STRING": urlencoded({**IVR_PUSH, **bad}, percent)},
    )

    assert_invalid_data(response)
    assert nothing_journaled(app)


@HYPOTHESIS
@given(
    bad=st.dictionaries(st.sampled_from(IBIZFONE_FIELDS), bad_bytes, min_size=1),
    percent=st.booleans(),
)
def test_ibizfone_form_push_with_bytes_not_utf8_in_any_field_is_invalid_data(app, bad, percent):

    response = app.test_client().post(
        IBIZFONE, data=form_body({**IVR_PUSH, **bad}, percent), headers=HOOK, content_type=FORM
    )

    assert_invalid_data(response)
    assert nothing_journaled(app)


@HYPOTHESIS
@given(
    bad=st.dictionaries(st.sampled_from(IBIZFONE_FIELDS), bad_text, min_size=1),
    raw=st.booleans(),
)
def test_ibizfone_json_push_with_unencodable_text_in_any_field_is_invalid_data(app, bad, raw):

    response = app.test_client().post(
        IBIZFONE,
        data=json_body({**IVR_PUSH, **bad}, raw),
        headers=HOOK,
        content_type="application/json",
    )

    assert_invalid_data(response)
    assert nothing_journaled(app)


@HYPOTHESIS
@given(
    bad=st.dictionaries(st.sampled_from(CONTACT_FIELDS), bad_text, min_size=1),
    raw=st.booleans(),
)
def test_contact_with_unencodable_text_in_any_field_is_refused(app, bad, raw):
    before = store_of(app).sandbox.contacts()

    response = app.test_client().post(
        CONTACTS,
        data=json_body({**NEW_CONTACT, **bad}, raw),
        headers=KEY,
        content_type="application/json",
    )

    assert_refused_naming(response, bad)
    assert store_of(app).sandbox.contacts() == before


# query strings that are not UTF-8 elsewhere ------------------------------------------------------


def test_lookup_query_not_utf8_is_a_validation_error_in_json_and_empty_in_text(make_app):
    client = make_app().test_client()

    json_form = client.get(
        "/api/v1/contacts/lookup",
        headers=KEY,
        environ_overrides={"QUERY_STRING": "phone=\xed\xa0\x80"},
    )
    text_form = client.get(
        "/api/v1/contacts/lookup",
        headers=KEY,
        environ_overrides={"QUERY_STRING": "format=text&phone=07\xff21234567"},
    )

    assert_refused_naming(json_form, ["phone"])
    assert (text_form.status_code, text_form.mimetype, text_form.data) == (422, "text/plain", b"")


@pytest.mark.parametrize("token", ["\xed\xa0\x80", "%ED%A0%80", "%FF"])
def test_webhook_token_not_utf8_in_the_query_is_unauthorized(make_app, token):
    client = make_app().test_client()
    pbx = client.post(PBX, json=PBX_EVENT, environ_overrides={"QUERY_STRING": f"token={token}"})
    ivr = client.get(
        IBIZFONE, environ_overrides={"QUERY_STRING": f"token={token}&{urlencoded(IVR_PUSH, True)}"}
    )

    assert (pbx.status_code, pbx.get_json()["code"]) == (401, "unauthorized")
    assert (ivr.status_code, ivr.data) == (401, b"Unauthorized")


def test_api_key_not_utf8_in_the_query_is_unauthorized(make_app):
    client = make_app().test_client()

    response = client.get(
        "/api/v1/contacts/lookup",
        environ_overrides={"QUERY_STRING": "phone=0721234567&api_key=\xed\xa0\x80"},
    )

    assert (response.status_code, response.get_json()["code"]) == (401, "unauthorized")


# the CRM's answers ------------------------------------------------------------------------------

#: James, as a CRM would send him with lone surrogates in his id, first name and company
BROKEN_JAMES = (
    '{"status": true, "contact": {"id": "2916509f\\udc00", "firstname": "Ja\\ud800mes",'
    ' "lastname": "May", "company": "My \\ud83d Company", "mobilephone": "0721234567",'
    ' "entity_type": "Account"}}'
)


@pytest.mark.parametrize(
    "body",
    [BROKEN_JAMES.encode(), BROKEN_JAMES.encode().replace(b"\\ud800", b"\xed\xa0\x80")],
    ids=["escaped", "raw-bytes"],
)
def test_crm_contact_with_lone_surrogates_is_shown_with_replacement_characters(
    make_app, upstream, body
):
    upstream.get(RECORD_URL, body=body, content_type="application/json")
    client = make_app(**CRM_ENV).test_client()

    found = client.get("/api/v1/contacts/lookup?phone=0721234567", headers=KEY)
    text = client.get("/api/v1/contacts/lookup?phone=0721234567&format=text", headers=KEY)
    pop = client.get("/pop?phone=0721234567", headers=KEY)

    assert found.status_code == 200
    contact = found.get_json()["contact"]
    assert (contact["id"], contact["first_name"], contact["company"]) == (
        "2916509f\ufffd",
        "Ja\ufffdmes",
        "My \ufffd Company",
    )
    assert contact["name"] == "Ja\ufffdmes May"
    assert (text.status_code, text.mimetype) == (200, "text/plain")
    assert text.get_data(as_text=True).startswith("Ja")
    assert (pop.status_code, pop.mimetype) == (200, "text/html")
    assert "Ja\ufffdmes May" in pop.get_data(as_text=True)


def test_call_log_of_a_crm_contact_with_lone_surrogates_is_delivered(make_app, upstream):
    upstream.get(RECORD_URL, body=BROKEN_JAMES, content_type="application/json")
    crm_logs(upstream)
    app = make_app(**CRM_ENV)
    client = app.test_client()

    assert client.post(PBX, json=call_end(), headers=HOOK).status_code == 202
    outcome = deliver(app)

    assert outcome["delivered"] == 1, outcome
    (log,) = sent_logs(upstream)
    assert log["EntityId"] == "2916509f\ufffd"
    assert [c.request.url for c in upstream.calls if c.request.url == LOG_URL] == [LOG_URL]
    assert WEBHOOK_SECRET not in json.dumps(log)
