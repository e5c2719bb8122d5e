"""The upstream edge prepares each request as ``requests`` would (``base._prepare``): same method,
URL, headers and body as ``requests.Request(...).prepare()``, whatever the URL and parameters."""

from __future__ import annotations

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from middleware.upstreams.base import _prepare

HEADERS = {"Authorization": "Bearer k", "Accept": "application/json"}


def _both(method, url, params=None, json=None, data=None, headers=HEADERS):
    ours = _prepare(method, url, params, json, data, headers)
    theirs = requests.Request(
        method, url, params=params, json=json, data=data, headers=headers
    ).prepare()
    return ours, theirs


def _same(ours, theirs):
    assert ours.method == theirs.method
    assert ours.url == theirs.url
    assert dict(ours.headers) == dict(theirs.headers)
    assert ours.body == theirs.body


@pytest.mark.parametrize(
    ("url", "params"),
    [
        ("http://127.0.0.1:9/calls/record", {"phone": "+27721234567"}),
        ("http://127.0.0.1:9/calls/record", {"phone": "072 123 4567", "email": None}),
        ("http://127.0.0.1:9/calls/autocomplete", {"term": "Zoë & Co/ü?#"}),
        ("HTTP://CRM.Example:8080", {"a": "1"}),
        ("http://crm.example/api?fixed=1", {"b": ["x", "y"], "c": 3}),
        ("http://crm.example/api?fixed=1", None),
        ("http://crm.example/p#frag", {"q": "1"}),
        ("http://user:pa%40ss@crm.example/p", {"q": "1"}),
        ("http://crm.example/agents/60 00/ü", {"api_key": "s3cr=t+1"}),
        ("http://crm.example/x", {b"bytes": b"val\xc3\xa9"}),
        ("http://crm.example/x", [("k", "1"), ("k", "2")]),
        ("http://crm.example/x", {}),
    ],
)
def test_a_get_is_prepared_as_requests_prepares_it(url, params):
    _same(*_both("GET", url, params))


@pytest.mark.parametrize(
    ("json", "data"),
    [
        ({"firstname": "Zoë", "n": 1}, None),
        (None, {"action": "set", "empty": ""}),
        (None, "raw=text"),
        (None, None),
    ],
)
def test_a_post_is_prepared_as_requests_prepares_it(json, data):
    _same(*_both("POST", "http://crm.example/calls/log", {"a": "b"}, json, data))


def test_extra_headers_and_a_session_header_mapping():
    headers = requests.Session().headers
    headers.update(HEADERS)
    _same(*_both("get", "http://crm.example/x", {"q": "1"}, headers={**headers, "X-Extra": "1"}))


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)


@settings(max_examples=300, deadline=None)
@given(
    path=st.text(
        st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")).filter(
            lambda c: c not in "#?\\"
        ),
        max_size=12,
    ),
    params=st.one_of(
        st.none(),
        st.dictionaries(_text, st.one_of(_text, st.none(), st.integers()), max_size=4),
    ),
    query=st.sampled_from(["", "?x=1", "?"]),
)
def test_any_path_and_parameters_come_out_as_requests_makes_them(path, params, query):
    _same(*_both("GET", f"http://crm.example:8080/{path}{query}", params))
