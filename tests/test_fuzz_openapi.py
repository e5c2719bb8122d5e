"""Schemathesis fuzzes every operation of openapi.json in-process (WSGI) against sandbox upstreams.

Each operation is one test (so xdist spreads them); every answer must be documented, off no schema,
and never a server error. The upstreams are the sandbox dialer, CRM and agent provider; anything
that still tries the network meets the ``upstream`` fake, which refuses every request.
"""

from __future__ import annotations

import tempfile

import pytest
import responses
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from middleware import create_app
from middleware.api.openapi import openapi_document

from .conftest import API_KEY, IBIZFONE_KEY, IBIZFONE_URL, TOKEN_SECRET, WEBHOOK_SECRET

MAX_EXAMPLES = 10
SANDBOX = {
    "CTI_DIALER": "sandbox",
    "CTI_CRM": "sandbox",
    "CTI_AGENT_PROVIDER": "sandbox",
    "CTI_CALL_RATE": "1000/minute",
    "CTI_TOKEN_SECRET": TOKEN_SECRET,  # agent tokens are issued (without it: 501 by design)
    # The schedule has no sandbox: ibizfone, faked below.
    "CTI_IBIZFONE_URL": IBIZFONE_URL,
    "CTI_IBIZFONE_API_KEY": IBIZFONE_KEY,
    "CTI_IBIZFONE_CUSTID": "42",
}

# The description only: parametrisation needs it when the module is collected.
with tempfile.TemporaryDirectory() as _scratch:
    _described = create_app(
        {"CTI_API_KEYS": API_KEY, "CTI_DATABASE": f"{_scratch}/describe.sqlite3", **SANDBOX}
    )
    _document = openapi_document(_described)
    # Streams (Server-Sent Events) never end, so a WSGI client would wait forever: their own tests
    # cover them.
    STREAMS = [
        operation["operationId"]
        for operations in _document["paths"].values()
        for operation in operations.values()
        if any("text/event-stream" in r.get("content", {}) for r in operation["responses"].values())
    ]
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", _described)
    if STREAMS:
        schema = schema.exclude(operation_id=STREAMS)


@pytest.fixture
def sandbox_app(make_app, upstream):
    upstream.add(responses.GET, f"{IBIZFONE_URL}/settings/handler.ashx", body="Success")
    return make_app(**SANDBOX)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_within_its_schema_and_never_a_server_error(case, sandbox_app):
    case.call_and_validate(
        app=sandbox_app,
        headers={"X-API-Key": API_KEY, "X-Webhook-Token": WEBHOOK_SECRET},
        # A string the schema allows may still be no phone number: 422 is the right answer.
        excluded_checks=[positive_data_acceptance],
    )


# Bodies nested deeper than the JSON parser's recursion limit, under the 64 KiB body limit: a
# RecursionError must be a malformed body like any other, never a 500.
DEEP_BODIES = {
    "arrays": "[" * 30000 + "]" * 30000,
    "objects": '{"a":' * 9000 + "1" + "}" * 9000,
}
PATH_VALUES = {
    "extension": "6000",
    "call_id": "c-1",
    "entry_id": "1",
    "callback_id": "1",
    "day": "2026-12-24",
}
WRITES = [
    (method.upper(), path, "requestBody" in operation)
    for path, operations in _document["paths"].items()
    for method, operation in operations.items()
    if method in ("post", "put")
]


@pytest.mark.parametrize("method, path, reads_body", WRITES, ids=[f"{m} {p}" for m, p, _ in WRITES])
@pytest.mark.parametrize("shape", sorted(DEEP_BODIES))
def test_a_body_nested_too_deep_is_a_validation_error(sandbox_app, method, path, reads_body, shape):
    """An operation that reads a body refuses it (422); one that reads none ignores it."""
    url = path.format(**PATH_VALUES)
    answer = sandbox_app.test_client().open(
        url,
        method=method,
        data=DEEP_BODIES[shape],
        headers={
            "X-API-Key": API_KEY,
            "X-Webhook-Token": WEBHOOK_SECRET,
            "Content-Type": "application/json",
            "Idempotency-Key": f"deep-{shape}",
        },
    )
    if path == "/api/v1/webhooks/ibizfone":  # the IVR reads plain text
        assert (answer.status_code, answer.get_data(as_text=True)) == (400, "Invalid Data")
        return
    if not reads_body:
        assert answer.status_code < 500
        return
    assert answer.status_code == 422, answer.get_data(as_text=True)[:200]
    assert answer.get_json()["code"] == "validation_error"
