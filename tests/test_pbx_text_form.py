"""The lookup's plain-text form for a PBX: the safe name, 204 when unknown, and for every failure
its status with an empty text/plain body (such a PBX shows the body whatever the status)."""

from __future__ import annotations

import pytest

from devtools.processes import free_port
from middleware.settings import SettingsError, load_settings

from .fakeserver import Answer, FakeServer
from .pbx_key import PBX_KEY, PBX_KEY_ENV
from .test_caller_lookup import CRM, JAMES, RECORD

LOOKUP = "/api/v1/contacts/lookup"
JAMES_SHOWN = "James May (My Company name)"


def pbx_app(make_app, **env):
    return make_app(**{**CRM, **PBX_KEY_ENV, **env})


def text_lookup(client, query: str = "phone=0721234567", key: str | None = PBX_KEY, **kwargs):
    """As a dialplan asks: everything in the query string, ``format=text``."""
    qs = f"{query}&format=text" + (f"&api_key={key}" if key is not None else "")
    return client.get(f"{LOOKUP}?{qs}", **kwargs)


def assert_empty_text(response, status: int):
    assert response.status_code == status
    assert response.mimetype == "text/plain"
    assert response.data == b""


def test_a_known_caller_is_the_safe_display_name(make_app, upstream):
    upstream.get(RECORD, json={"status": True, "contact": JAMES})
    response = text_lookup(pbx_app(make_app).test_client())

    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert response.get_data(as_text=True) == JAMES_SHOWN


def test_a_crm_name_that_would_break_sip_or_a_dialplan_is_made_safe(make_app, upstream):
    record = {**JAMES, "firstname": 'Zoë "${x}";', "lastname": "Müller\r\nVia: evil"}
    upstream.get(RECORD, json={"status": True, "contact": {**record, "company": None}})
    client = pbx_app(make_app).test_client()

    assert text_lookup(client).get_data(as_text=True) == "Zoë x} Müller Via: evil"


def test_display_ascii_transliterates_the_name(make_app, upstream):
    record = {**JAMES, "firstname": "Zoë", "lastname": "Müller", "company": "Café «Ñandú»"}
    upstream.get(RECORD, json={"status": True, "contact": record})
    client = pbx_app(make_app, CTI_DISPLAY_ASCII="true").test_client()

    text = text_lookup(client).get_data(as_text=True)

    assert text == "Zoe Muller (Cafe Nandu)"


def test_display_ascii_is_off_by_default_and_checked():
    with pytest.raises(SettingsError, match="^CTI_DISPLAY_ASCII: 'maybe' is not true or false$"):
        load_settings({"CTI_DISPLAY_ASCII": "maybe"})
    assert load_settings({}).display_ascii is False
    assert load_settings({"CTI_DISPLAY_ASCII": "TRUE"}).display_ascii is True


def test_an_unknown_caller_is_204_with_no_body(make_app, upstream):
    upstream.get(RECORD, json={"status": False})
    response = text_lookup(pbx_app(make_app).test_client())

    assert response.status_code == 204
    assert response.data == b""


def test_crm_down_is_503_with_an_empty_body(make_app):
    closed = f"http://127.0.0.1:{free_port()}"
    client = pbx_app(make_app, CTI_CRM_URL=closed).test_client()

    assert_empty_text(text_lookup(client), 503)


def test_crm_hanging_is_504_with_an_empty_body(make_app):
    with FakeServer(lambda seen: Answer(hang=True)) as crm:
        client = pbx_app(make_app, CTI_CRM_URL=crm.url, CTI_LOOKUP_TIMEOUT="0.3").test_client()
        assert_empty_text(text_lookup(client), 504)


def test_crm_failing_is_502_with_an_empty_body(make_app, upstream):
    upstream.get(RECORD, json={"status": False, "error": "database is down"})
    assert_empty_text(text_lookup(pbx_app(make_app).test_client()), 502)


@pytest.mark.parametrize("number", ["12", "0721234567x", "not-a-number", "+999123"])
def test_an_invalid_number_is_422_with_an_empty_body(make_app, number):
    client = pbx_app(make_app).test_client()
    assert_empty_text(text_lookup(client, f"phone={number}"), 422)


@pytest.mark.parametrize(
    "query", ["", "phone=0721234567&email=a@b.co", "email=not-an-address", "phone=0721234567&x=1"]
)
def test_a_validation_error_is_422_with_an_empty_body(make_app, query):
    assert_empty_text(text_lookup(pbx_app(make_app).test_client(), query), 422)


def test_no_key_is_401_with_an_empty_body(make_app):
    assert_empty_text(text_lookup(pbx_app(make_app).test_client(), key=None), 401)


def test_a_wrong_key_is_401_with_an_empty_body(make_app):
    client = pbx_app(make_app).test_client()
    assert_empty_text(text_lookup(client, key="not-the-key"), 401)
    wrong_header = client.get(f"{LOOKUP}?phone=0721234567&format=text", headers={"X-API-Key": "x"})
    assert_empty_text(wrong_header, 401)


def test_accept_text_plain_failures_are_empty_too(make_app):
    client = pbx_app(make_app).test_client()
    response = client.get(f"{LOOKUP}?phone=12", headers={"Accept": "text/plain"})
    assert_empty_text(response, 401)


def test_a_wrong_method_or_path_there_is_empty_too(make_app):
    client = pbx_app(make_app).test_client()

    wrong_method = client.post(f"{LOOKUP}?phone=0721234567&format=text&api_key={PBX_KEY}")
    assert_empty_text(wrong_method, 405)
    assert "GET" in wrong_method.headers["Allow"]
    assert_empty_text(client.get(f"{LOOKUP}/?phone=0721234567&format=text"), 404)


def test_the_json_form_still_answers_problems(make_app):
    client = pbx_app(make_app).test_client()

    response = client.get(f"{LOOKUP}?phone=12&api_key={PBX_KEY}")
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["code"] == "invalid_number"
    json_format = client.get(f"{LOOKUP}?phone=12&format=json&api_key={PBX_KEY}")
    assert json_format.mimetype == "application/problem+json"
    elsewhere = client.get("/api/v1/contacts/search?term=x&format=text")
    assert elsewhere.mimetype == "application/problem+json"


# lenient phone -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "looked_up"),
    [
        ("+27721234567", "+27721234567"),  # the + unencoded: form decoding makes it a space
        ("%2B27721234567", "+27721234567"),
        ("+447911123456", "+447911123456"),  # not read as a number of the default region
        ("%200721234567", "+27721234567"),  # a space before a national number is just a space
    ],
)
def test_a_leading_space_is_an_unencoded_plus(make_app, upstream, raw, looked_up):
    upstream.get(RECORD, json={"status": True, "contact": JAMES})
    client = pbx_app(make_app).test_client()

    response = client.get(f"{LOOKUP}?phone={raw}&api_key={PBX_KEY}")

    assert response.status_code == 200
    assert response.get_json()["phone"] == looked_up
    assert upstream.calls[0].request.params["phone"] == looked_up
