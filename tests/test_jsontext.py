"""JSON nested deeper than ``MAX_DEPTH`` is refused before it is parsed, wherever it comes from."""

from __future__ import annotations

import json

import pytest
import responses
from flask import request
from hypothesis import given, settings
from hypothesis import strategies as st

from middleware.errors import UpstreamError
from middleware.runtime import jsontext
from middleware.upstreams.base import HttpUpstream

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab, :\u00e9'),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(alphabet='[]{}"\\k'), children, max_size=3)
    ),
    max_leaves=40,
)


def _depth(value) -> int:
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


@settings(max_examples=300, derandomize=True, database=None)
@given(value=JSON_VALUES, limit=st.integers(min_value=0, max_value=6))
def test_the_depth_counted_is_the_documents_own_whatever_its_strings_hold(value, limit):
    text = json.dumps(value).encode()
    assert jsontext.nested_too_deep(text, limit) == (_depth(value) > limit)


@pytest.mark.parametrize(
    "text",
    ["[" * 30000 + "]" * 30000, '{"a":' * 9000 + "1" + "}" * 9000, "[" * 65, '{"a":' * 65],
)
def test_a_document_nested_too_deep_is_malformed_json(text):
    with pytest.raises(ValueError, match="nested deeper than 64"):
        jsontext.loads(text)
    with pytest.raises(ValueError):
        jsontext.loads(text.encode())


def test_brackets_inside_strings_nest_nothing():
    text = json.dumps({"note": "[" * 1000 + '\\"{' * 1000})
    assert jsontext.loads(text) == json.loads(text)
    assert jsontext.loads("[" * 64 + "]" * 64) == json.loads("[" * 64 + "]" * 64)


def test_the_app_reads_a_deep_body_as_no_json_at_all(make_app):
    with make_app().test_request_context(method="POST", data="[" * 30000 + "]" * 30000):
        assert request.get_json(silent=True, force=True) is None


@responses.activate
def test_an_upstream_answer_nested_too_deep_is_no_json():
    responses.add(responses.GET, "http://crm.test/x", body="[" * 30000 + "]" * 30000)
    reply = HttpUpstream("http://crm.test", timeout=2).request("GET", "/x", op="read")
    with pytest.raises(UpstreamError, match="non-JSON"):
        reply.json()
