"""The upstream edge prepares each request itself, from ``PreparedRequest``'s steps
(``upstreams/base.py``): what it sends is what ``requests`` would prepare from the same call with
the session's headers, byte for byte."""

from __future__ import annotations

import itertools

import pytest
import requests

from middleware.upstreams.base import HttpUpstream

BASE = "http://crm.example:8080/api"

CALLS = [
    {"params": {"phone": "+27721234567"}},
    {"params": {"term": "Zoë & Müller/=?", "page": 2, "skip": None, "ids": ["a b", None, 3]}},
    {"params": {"term": "Zoë & Müller/=?+%20 ~*", "skip": None, "email": "a.b+c@d.example"}},
    {"params": {"empty": ""}},
    {"params": {}},
    {"json": {"firstname": "Zoë", "phone": "0721234567"}},
    {"data": {"action": "dial", "to": "+27 72"}},
    {"params": {"a": "1"}, "headers": {"X-Extra": "yes", "Accept": None}},
]


def _method(call) -> str:
    return "POST" if "json" in call or "data" in call else "GET"


def _expected(session, call, path, method=None, base=BASE):
    return session.prepare_request(
        requests.Request(
            method or _method(call),
            base + path,
            params=call.get("params"),
            json=call.get("json"),
            data=call.get("data"),
            headers=call.get("headers"),
        )
    )


def _same(prepared, expected):
    assert prepared.url == expected.url
    assert prepared.method == expected.method
    assert prepared.body == expected.body
    assert dict(prepared.headers) == dict(expected.headers)


@pytest.mark.parametrize("call", CALLS, ids=range(len(CALLS)))
@pytest.mark.parametrize("path", ["/calls/record", "/calls/record?fixed=1"])
def test_a_request_is_prepared_as_requests_prepares_it(call, path):
    client = HttpUpstream(BASE, timeout=5)
    client.session.headers["Authorization"] = "Bearer key"
    expected = _expected(client.session, call, path)

    prepared = client._prepare(
        expected.method,
        BASE + path,
        call.get("params"),
        call.get("json"),
        call.get("data"),
        call.get("headers"),
    )

    _same(prepared, expected)


def test_requests_prepared_one_after_another_are_each_as_requests_prepares_them():
    """A bodiless request is a copy of its method's first one with its own URL: neither what a
    copy is given nor what an earlier request had reaches another request."""
    client = HttpUpstream("https://user:pw@crm.example/api", timeout=5)
    client.session.headers["Authorization"] = "Bearer key"
    base = client.base_url
    for call in CALLS + CALLS[::-1]:
        methods = [_method(call)] if "json" in call or "data" in call else ["GET", "POST"]
        for method, path in itertools.product(methods, ("/calls/record", "/calls/x?fixed=1")):
            expected = _expected(client.session, call, path, method, base)
            prepared = client._prepare(
                method,
                base + path,
                call.get("params"),
                call.get("json"),
                call.get("data"),
                call.get("headers"),
            )
            _same(prepared, expected)
            prepared.headers["X-Changed"] = "by the caller"  # the next copy has none of it
            prepared.prepare_url(base + "/elsewhere", {"x": "1"})
