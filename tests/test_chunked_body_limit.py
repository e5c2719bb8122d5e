"""Contract section 3: a body over 64 KiB is 413 ``payload_too_large`` however it is sent. A body
sent chunked has no ``Content-Length``; werkzeug reads it only up to its limit, so the rest went
unseen and a form push over the limit was stored from its first 64 KiB (202), a JSON one answered
422. Served by gunicorn (which sets ``wsgi.input_terminated``), as a PBX or a proxy sends it."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import pytest

from .conftest import API_KEY, WEBHOOK_SECRET
from .gunicorn_runner import gunicorn

pytestmark = pytest.mark.slow

LIMIT = 64 * 1024
EVENT = "event=call:end&id=leg-1&ts=1751710522&type=inbound&cid_num=0721234567&durationms=1000"


def chunked(base: str, path: str, body: bytes, content_type: str, headers: dict) -> tuple:
    """POST ``body`` in chunks of 8 KiB; the answer's status, content type and body."""
    url = urlsplit(base)
    lines = [f"POST {path} HTTP/1.1", f"Host: {url.netloc}", "Transfer-Encoding: chunked"]
    lines += [f"Content-Type: {content_type}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    pieces = [body[i : i + 8192] for i in range(0, len(body), 8192)]
    encoded = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall("\r\n".join(lines).encode() + b"\r\n\r\n" + encoded)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, content = answer.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    kind = next(
        (
            line.split(b":", 1)[1].strip().decode()
            for line in head.split(b"\r\n")[1:]
            if line.lower().startswith(b"content-type:")
        ),
        "",
    )
    return status, kind, content


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("chunked")
    env = {
        "CTI_API_KEYS": API_KEY,
        "CTI_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "CTI_TOKEN_SECRET": "a-token-secret-of-at-least-32-bytes!",
        "CTI_DATABASE": str(tmp / "cti.sqlite3"),
    }
    with gunicorn(env, workers=1, threads=4, cwd=tmp) as base:
        yield base


def form_push(size: int) -> bytes:
    """The PBX's form push, padded to ``size`` bytes by a field it ignores after its own."""
    body = EVENT + "&pad="
    return (body + "x" * (size - len(body))).encode()


@pytest.mark.parametrize(
    ("path", "body", "content_type", "headers"),
    [
        (
            "/api/v1/webhooks/pbx",
            form_push(LIMIT + 1),
            "application/x-www-form-urlencoded",
            {"X-Webhook-Token": WEBHOOK_SECRET},
        ),
        (
            "/api/v1/webhooks/pbx",
            form_push(80_000),
            "application/x-www-form-urlencoded",
            {"X-Webhook-Token": WEBHOOK_SECRET},
        ),
        (
            "/api/v1/webhooks/pbx",
            json.dumps({"event": "call:end", "pad": "x" * 80_000}).encode(),
            "application/json",
            {"X-Webhook-Token": WEBHOOK_SECRET},
        ),
        (
            "/api/v1/supervisors/token",
            json.dumps({"name": "x" * 80_000}).encode(),
            "application/json",
            {"X-API-Key": API_KEY},
        ),
    ],
    ids=["form-one-byte-over", "form-80k", "json-80k", "supervisor-token-80k"],
)
def test_a_chunked_body_over_64_kib_is_payload_too_large(served, path, body, content_type, headers):
    status, kind, content = chunked(served, path, body, content_type, headers)

    assert status == 413
    assert kind == "application/problem+json"
    assert json.loads(content)["code"] == "payload_too_large"


def test_a_chunked_body_of_exactly_64_kib_is_read_whole(served):
    status, kind, content = chunked(
        served,
        "/api/v1/webhooks/pbx",
        form_push(LIMIT),
        "application/x-www-form-urlencoded",
        {"X-Webhook-Token": WEBHOOK_SECRET},
    )

    assert (status, json.loads(content)) == (202, {"accepted": True}), content


def test_the_ivr_push_chunked_over_64_kib_is_invalid_data_in_plain_text(served):
    push = "calllogid=7&callnumber=0721234567&date=2025-07-05&time=10:00:00&callstatus=ANSWER"
    body = (push + "&pad=" + "x" * 80_000).encode()

    status, kind, content = chunked(
        served,
        f"/api/v1/webhooks/ibizfone?token={WEBHOOK_SECRET}",
        body,
        "application/x-www-form-urlencoded",
        {},
    )

    assert (status, kind.split(";")[0], content) == (400, "text/plain", b"Invalid Data")
