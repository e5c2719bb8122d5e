"""The upstream edge prepares each request itself, from ``PreparedRequest``'s steps
(``upstreams/base.py``): what it sends is what ``requests`` would prepare from the same call with
the session's headers, byte for byte."""

from __future__ import annotations

import pytest
import requests

from middleware.upstreams.base import HttpUpstream

BASE = "http://crm.example:8080/api"

CALLS = [
    {"params": {"phone": "+27721234567"}},
    {"params": {"term": "Zoë & Müller/=?", "page": 2, "skip": None, "ids": ["a b", None, 3]}},
    {"params": {"empty": ""}},
    {"params": {}},
    {"json": {"firstname": "Zoë", "phone": "0721234567"}},
    {"data": {"action": "dial", "to": "+27 72"}},
    {"params": {"a": "1"}, "headers": {"X-Extra": "yes", "Accept": None}},
]


@pytest.mark.parametrize("call", CALLS, ids=range(len(CALLS)))
@pytest.mark.parametrize("path", ["/calls/record", "/calls/record?fixed=1"])
def test_a_request_is_prepared_as_requests_prepares_it(call, path):
    client = HttpUpstream(BASE, timeout=5)
    client.session.headers["Authorization"] = "Bearer key"
    session = client.session
    expected = session.prepare_request(
        requests.Request(
            "POST" if "json" in call or "data" in call else "GET",
            BASE + path,
            params=call.get("params"),
            json=call.get("json"),
            data=call.get("data"),
            headers=call.get("headers"),
        )
    )

    prepared = client._prepare(
        expected.method,
        BASE + path,
        call.get("params"),
        call.get("json"),
        call.get("data"),
        call.get("headers"),
    )

    assert prepared.url == expected.url
    assert prepared.method == expected.method
    assert prepared.body == expected.body
    assert dict(prepared.headers) == dict(expected.headers)
