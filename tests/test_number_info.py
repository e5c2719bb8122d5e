"""``number_info`` (contract section 4, caller lookup): what a number tells by itself, from the
offline data of ``phonenumbers``, in every JSON lookup answer (found or not, cached or not; null
for an email lookup), made once per number, and on the ``/pop`` card of an unknown caller."""

from __future__ import annotations

import json

import pytest

from devtools.waiting import wait_until
from middleware.numbers import number_info

from .conftest import CRM_KEY, CRM_URL, WEBHOOK_SECRET
from .contacts import JAMES
from .pbx_webhooks import ring_event

CRM = {"CTI_CRM": "switchtransact", "CTI_CRM_URL": CRM_URL, "CTI_CRM_API_KEY": CRM_KEY}
RECORD = f"{CRM_URL}/calls/record"
HOOK = {"X-Webhook-Token": WEBHOOK_SECRET}
ZA_MOBILE = {"region": "ZA", "type": "mobile", "description": "South Africa", "carrier": "Vodacom"}
ZA_FIXED_LINE = {
    "region": "ZA",
    "type": "fixed_line",
    "description": "Cape Town/Gordons Bay/Somerset West/Stellenbosch",
    "carrier": None,
}
ZA_TOLL_FREE = {"region": "ZA", "type": "toll_free", "description": "South Africa", "carrier": None}
US_EITHER = {
    "region": "US",
    "type": "fixed_line_or_mobile",
    "description": "San Francisco, CA",
    "carrier": None,
}


def lookup(client, auth, **query):
    answer = client.get("/api/v1/contacts/lookup", query_string=query, headers=auth)
    assert answer.status_code == 200
    return answer.get_json()


@pytest.fixture
def unknown(make_app, upstream):
    """An app whose CRM knows nobody."""
    upstream.get(RECORD, json={"status": False})
    return make_app(**CRM).test_client()


@pytest.mark.parametrize(
    "phone,info",
    [
        ("+27721234567", ZA_MOBILE),
        ("072 123 4567", ZA_MOBILE),
        ("+27215550000", ZA_FIXED_LINE),
        ("021 555 0000", ZA_FIXED_LINE),
        ("0800 123 456", ZA_TOLL_FREE),
        ("+1 415 555 0123", US_EITHER),
    ],
)
def test_an_unknown_callers_answer_holds_what_the_number_tells(unknown, auth, phone, info):
    answer = lookup(unknown, auth, phone=phone)

    assert answer["found"] is False
    assert answer["number_info"] == info


def test_a_found_callers_answer_holds_it_too_cached_or_not(make_app, upstream, auth):
    upstream.get(RECORD, json={"status": True, "contact": JAMES})
    client = make_app(**CRM).test_client()

    answers = [
        lookup(client, auth, phone=p) for p in ("0721234567", "+27 72 123 4567", "27721234567")
    ]

    assert [a["cached"] for a in answers] == [False, True, True]
    assert all(a["found"] for a in answers)
    assert [a["number_info"] for a in answers] == [ZA_MOBILE] * 3


def test_a_stale_answer_holds_the_same(make_app, upstream, auth):
    upstream.get(RECORD, json={"status": True, "contact": JAMES})
    client = make_app(**CRM, CTI_CACHE_TTL="0").test_client()  # expired at once: revalidated

    first = lookup(client, auth, phone="0721234567")
    stale = lookup(client, auth, phone="0721234567")

    assert stale["stale"] is True and stale["cached"] is True
    assert first["number_info"] == stale["number_info"] == ZA_MOBILE
    wait_until(  # the background refresh asks the CRM before the fake goes
        lambda: len(upstream.calls) >= 2, 5, "the background refresh to ask the CRM", interval=0.01
    )
    assert len(upstream.calls) == 2


def test_an_email_lookup_has_null_number_info(make_app, upstream, auth):
    upstream.get(RECORD, json={"status": True, "contact": JAMES})
    client = make_app(**CRM).test_client()

    answers = [lookup(client, auth, email="james@may.com") for _ in range(2)]

    assert [a["cached"] for a in answers] == [False, True]
    for answer in answers:
        assert answer["found"] is True
        assert answer["phone"] == "+27721234567"
        assert "number_info" in answer and answer["number_info"] is None


def test_number_info_is_made_once_per_number_and_never_on_a_fresh_hit(unknown, auth):
    number_info.cache_clear()
    for phone in ("0215550000", "021 555 0000", "+27215550000"):  # a miss, then the entry's answer
        lookup(unknown, auth, phone=phone)
    made = number_info.cache_info()
    assert made.misses == 1  # one number, one NumberInfo

    for _ in range(20):
        assert lookup(unknown, auth, phone="0215550000")["number_info"] == ZA_FIXED_LINE
    assert number_info.cache_info() == made  # the entry's remembered answer: not even looked up


def test_the_card_of_an_unknown_caller_says_what_the_number_tells(unknown, auth):
    mobile = unknown.get("/pop?phone=0721234567", headers=auth).get_data(as_text=True)
    fixed = unknown.get("/pop?phone=0215550000", headers=auth).get_data(as_text=True)
    toll_free = unknown.get("/pop?phone=0800123456", headers=auth).get_data(as_text=True)

    assert "Unknown caller" in mobile
    assert "Mobile, South Africa, Vodacom" in mobile
    assert "Fixed line, Cape Town/Gordons Bay/Somerset West/Stellenbosch" in fixed
    assert "Toll free, South Africa" in toll_free


def test_the_card_of_a_known_caller_shows_the_contact_instead(make_app, upstream, auth):
    upstream.get(RECORD, json={"status": True, "contact": JAMES})
    client = make_app(**CRM).test_client()

    page = client.get("/pop?phone=0721234567", headers=auth).get_data(as_text=True)

    assert "James May" in page
    assert "Vodacom" not in page


def test_openapi_describes_number_info(client):
    schemas = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]

    described = schemas["Lookup"]["properties"]["number_info"]
    assert {"$ref": "#/components/schemas/NumberInfo"} in described["anyOf"]
    assert "number_info" in schemas["Lookup"]["required"]
    info = schemas["NumberInfo"]
    assert set(info["properties"]) == {"region", "type", "description", "carrier"}
    assert {"mobile", "fixed_line", "toll_free", "unknown"} <= set(
        info["properties"]["type"]["enum"]
    )


def test_the_agent_pages_pop_of_an_unknown_caller_holds_it(make_app, upstream, auth):
    upstream.get(RECORD, json={"status": False})
    client = make_app(**CRM).test_client()
    taken = client.post(
        "/api/v1/webhooks/pbx", json=ring_event("c-1", "6000", "0215550000"), headers=HOOK
    )
    assert taken.status_code == 202

    stream = client.get(
        "/api/v1/agents/6000/events", headers={**auth, "Last-Event-ID": "0"}, buffered=False
    )
    chunks = iter(stream.response)
    pop = next(c for c in chunks if b"event: screen-pop" in c).decode()
    stream.close()

    data = json.loads(pop.split("data: ", 1)[1])
    assert data["found"] is False
    assert data["number_info"] == ZA_FIXED_LINE
