"""The stream server's edge (issue 21): it answers what it cannot serve as problem+json without
repeating the request, bounds the streams one credential holds, drops idle and slow-header
connections within seconds, and lets no answer be cached."""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import urlsplit

import pytest

from devtools.waiting import wait_until
from middleware.auth import Credentials
from middleware.commands.stream_guard import HEADER_SECONDS

from .conftest import API_KEY, TOKEN_SECRET
from .gunicorn_runner import host_env, stream_server
from .sse import RawStream, opened

pytestmark = pytest.mark.slow

PROBLEM_KEYS = {"type", "title", "status", "detail", "code"}


def token(agent: str) -> str:
    return Credentials((API_KEY,), token_secret=TOKEN_SECRET).issue(agent)[0]


@pytest.fixture
def streams(tmp_path):
    env = host_env(tmp_path, CTI_TOKEN_SECRET=TOKEN_SECRET)
    with stream_server(env, tmp_path) as server:
        yield server


def raw(base: str, request: bytes, timeout: float = 10) -> tuple[int, dict, bytes]:
    """Send ``request`` as it is; (status, headers, body) of the answer, read to the close."""
    parts = urlsplit(base)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = [
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ]
            if length and len(body) >= length[0]:
                break
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines)}
    return int(status_line.split()[1]), headers, body


def assert_problem_without_echo(status, headers, body, *, code, sent: bytes):
    assert headers["content-type"].startswith("application/problem+json")
    assert headers["cache-control"] == "no-store"
    problem = json.loads(body)
    assert PROBLEM_KEYS <= set(problem)
    assert problem["status"] == status
    assert problem["code"] == code
    for piece in (API_KEY.encode(), b"api_key", b"AAAA", b"BBBB", b"/api/v1", b"/nowhere"):
        if piece in sent:
            assert piece not in body


def test_a_request_line_of_nine_thousand_bytes_answers_problem_json_without_the_key(streams):
    target = f"/api/v1/agents/6000/events?api_key={API_KEY}&x=" + "A" * 9000
    sent = f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    assert len(sent.split(b"\r\n")[0]) > 9000

    status, headers, body = raw(streams.base, sent)

    assert status == 414
    assert_problem_without_echo(status, headers, body, code="validation_error", sent=sent)


def test_an_over_long_header_answers_problem_json_without_repeating_it(streams):
    sent = (
        f"GET /api/v1/agents/6000/events?api_key={API_KEY} HTTP/1.1\r\nHost: x\r\n"
        f"X-Filler: {'B' * 9000}\r\n\r\n"
    ).encode()

    status, headers, body = raw(streams.base, sent)

    assert status == 431
    assert_problem_without_echo(status, headers, body, code="validation_error", sent=sent)


def test_unknown_paths_and_methods_answer_problem_json_without_the_request(streams):
    unknown = f"GET /nowhere?api_key={API_KEY} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    method = (
        f"DELETE /api/v1/agents/6000/events?api_key={API_KEY} HTTP/1.1\r\nHost: x\r\n"
        "Connection: close\r\n\r\n"
    )
    for sent, status, code in ((unknown, 404, "not_found"), (method, 405, "method_not_allowed")):
        got = raw(streams.base, sent.encode())
        assert got[0] == status
        assert_problem_without_echo(*got, code=code, sent=sent.encode())


def test_every_stream_server_answer_says_no_store(streams):
    stream = RawStream(streams.base, f"/api/v1/agents/6000/events?api_key={API_KEY}")
    refused = RawStream(streams.base, "/api/v1/agents/6000/events?api_key=wrong")
    try:
        assert stream.status == 200
        assert refused.status == 401
        assert stream.headers["cache-control"] == refused.headers["cache-control"] == "no-store"
    finally:
        stream.close()
        refused.close()


def test_one_token_holds_eight_streams_the_ninth_is_busy_and_closing_one_frees_a_slot(streams):
    mine = token("6000")
    path = f"/api/v1/agents/6000/events?api_key={mine}"
    held = [RawStream(streams.base, path) for _ in range(8)]
    assert [s.status for s in held] == [200] * 8

    ninth = RawStream(streams.base, path)
    assert ninth.status == 503
    assert int(ninth.headers["retry-after"]) >= 1
    assert json.loads(ninth.body())["code"] == "busy"
    ninth.close()

    other = RawStream(streams.base, f"/api/v1/agents/6001/events?api_key={token('6001')}")
    full_key = RawStream(streams.base, f"/api/v1/agents/6000/events?api_key={API_KEY}")
    assert other.status == full_key.status == 200

    held.pop().close()
    # the server sees the close as soon as the connection's end reaches it
    again = wait_until(
        lambda: opened(streams.base, path), 5, "the closed stream's slot given back", interval=0
    )
    for stream in (*held, again, other, full_key):
        stream.close()


def closed_by_server_within(sock: socket.socket, seconds: float, trickle: bytes = b"") -> float:
    """Seconds until the server closes ``sock``, sending ``trickle`` a byte at a time meanwhile;
    fails past ``seconds``."""
    started = time.monotonic()
    deadline = started + seconds
    sent = 0
    while (remaining := deadline - time.monotonic()) > 0:
        if sent < len(trickle):
            try:
                sock.sendall(trickle[sent : sent + 1])
            except (BrokenPipeError, ConnectionResetError):
                return time.monotonic() - started
            sent += 1
        sock.settimeout(min(remaining, 0.5) if sent < len(trickle) else remaining)
        try:
            if sock.recv(65536) == b"":
                return time.monotonic() - started
        except TimeoutError:
            continue
        except ConnectionResetError:
            return time.monotonic() - started
    raise AssertionError(f"the server held the connection past {seconds} s")


def test_an_idle_connection_is_closed_within_the_header_timeout(streams):
    parts = urlsplit(streams.base)
    with socket.create_connection((parts.hostname, parts.port)) as sock:
        assert closed_by_server_within(sock, HEADER_SECONDS + 2) >= HEADER_SECONDS - 1


def test_a_slow_header_connection_is_closed_within_the_header_timeout(streams):
    parts = urlsplit(streams.base)
    head = f"GET /api/v1/agents/6000/events?api_key={API_KEY} HTTP/1.1\r\nHost: x\r\n"
    with socket.create_connection((parts.hostname, parts.port)) as sock:
        closed_by_server_within(
            sock, HEADER_SECONDS + 2, trickle=(head + "X-Slow: " + "s" * 200).encode()
        )
