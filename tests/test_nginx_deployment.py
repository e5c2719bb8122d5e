"""deploy/nginx.conf in front of gunicorn and the stream server, as the compose file runs it (one
host, real nginx, the certificate deploy/make-cert.sh makes). Skipped where nginx is not installed."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
from pathlib import Path

import pytest

from devtools.processes import ROOT, free_port
from devtools.waiting import wait_until

from .conftest import API_KEY, WEBHOOK_SECRET
from .gunicorn_runner import gunicorn, stream_server

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed"),
]
STREAMS_PER_CLIENT = 3  # the deployed 200, lowered so the test reaches it


def nginx_version() -> tuple[int, ...]:
    text = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr
    return tuple(int(n) for n in re.search(r"nginx/(\d+)\.(\d+)", text).groups())


def local_config(tmp: Path, port: int, web: str, streams: str) -> Path:
    """The deployed file with this machine's addresses and paths; nothing else changed."""
    text = (ROOT / "deploy/nginx.conf").read_text()
    web_host, stream_host = web.split("//")[1], streams.split("//")[1]
    text = text.replace("cti-1:8000", web_host).replace("cti-2:8000", web_host)
    text = text.replace("cti-1:8001", stream_host).replace("cti-2:8001", stream_host)
    text = text.replace("listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;")
    text = text.replace("/etc/nginx/certs", str(tmp / "certs"))
    text = text.replace("access_log /dev/stdout cti;", f"access_log {tmp}/access.log cti;")
    text = text.replace(
        "limit_conn streams_per_client 200;", f"limit_conn streams_per_client {STREAMS_PER_CLIENT};"
    )
    text = text.replace("worker_processes auto;", "worker_processes 1;")
    if nginx_version() < (1, 25):  # "http2 on" is the 1.25+ spelling (the compose file's 1.27)
        text = text.replace("        http2 on;\n", "")
        text = text.replace(f"listen 127.0.0.1:{port} ssl;", f"listen 127.0.0.1:{port} ssl http2;")
    path = tmp / "nginx.conf"
    path.write_text(text)
    return path


@pytest.fixture
def deployed(tmp_path):
    env = {
        "CTI_API_KEYS": API_KEY,
        "CTI_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "CTI_DATABASE": str(tmp_path / "cti.sqlite3"),
    }
    certs = tmp_path / "certs"
    certs.mkdir()
    subprocess.run(
        ["sh", str(ROOT / "deploy/make-cert.sh")],
        env={**os.environ, "CERT_DIR": str(certs)},
        check=True,
    )
    port = free_port()
    with (
        gunicorn(env, workers=2, threads=16, cwd=tmp_path) as web,
        stream_server(env, tmp_path) as streams,
    ):
        config = local_config(tmp_path, port, web, streams.base)
        prefix = ["nginx", "-c", str(config), "-e", str(tmp_path / "error.log")]
        globals_ = f"pid {tmp_path}/nginx.pid; daemon off;"
        subprocess.run([*prefix, "-t", "-g", globals_], check=True, capture_output=True)
        process = subprocess.Popen([*prefix, "-g", globals_], start_new_session=True)
        context = ssl.create_default_context(cafile=str(certs / "cti.crt"))
        try:

            def answers() -> bool:
                try:
                    connect(port, context).request("GET", "/healthz")
                except OSError:
                    return False
                return True

            wait_until(answers, 10, lambda: (tmp_path / "error.log").read_text())
            yield port, context, tmp_path, web
        finally:
            os.killpg(process.pid, signal.SIGQUIT)
            process.wait(timeout=10)


def connect(port, context) -> http.client.HTTPSConnection:
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    connection.connect()
    return connection


def get(port, context, path, headers=None):
    connection = connect(port, context)
    connection.request("GET", path, headers=headers or {})
    answer = connection.getresponse()
    return connection, answer


def test_streams_go_to_the_stream_server_over_tls_and_past_the_limit_answer_busy(deployed):
    port, context, _, _ = deployed
    path = f"/api/v1/agents/6000/events?api_key={API_KEY}"
    held = [get(port, context, path) for _ in range(STREAMS_PER_CLIENT)]
    # The raw (chunked) opening block: a chunk size, then retry:, id: and the server's comment.
    openings = [b"".join(answer.fp.readline() for _ in range(4)) for _, answer in held]
    _, refused = get(port, context, path)
    body = json.loads(refused.read())
    for connection, _ in held:
        connection.close()

    assert {answer.status for _, answer in held} == {200}
    assert all(b"stream-server" in text for text in openings)
    assert refused.status == 503
    assert refused.getheader("Retry-After") == "5"
    assert refused.getheader("Content-Type") == "application/problem+json"
    assert body["code"] == "busy" and body["status"] == 503


def test_proxy_stamps_requests_for_the_queue_wait_and_logs_no_query_string(deployed):
    port, context, tmp_path, web = deployed
    _, answer = get(port, context, f"/api/v1/contacts/lookup?phone=0721234567&api_key={API_KEY}")
    assert answer.status == 200
    answer.read()

    log = (tmp_path / f"gunicorn-{web.rsplit(':', 1)[1]}.log").read_text()
    line = next(
        json.loads(x) for x in log.splitlines() if '"route": "/api/v1/contacts/lookup"' in x
    )
    assert 0 <= line["queue_ms"] < 1000
    access = _access_line(tmp_path / "access.log", "/api/v1/contacts/lookup ")
    assert "api_key" not in access and API_KEY not in access and "phone=" not in access


def _access_line(path, fragment: str, timeout: float = 10) -> str:
    """The access log once it holds ``fragment``: nginx writes its line after the answer, so
    the test waits for it (up to ``timeout``) rather than sleeping and hoping it came first."""
    access = ""

    def logged() -> str | None:
        nonlocal access
        access = path.read_text() if path.exists() else ""
        return access if fragment in access else None

    return wait_until(logged, timeout, lambda: access[-500:], interval=0.02)


def raw_tls(port, context, request: bytes) -> tuple[int, dict, bytes]:
    """``request`` sent as it is over TLS; (status, headers, body) of nginx's answer."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as plain:
        with context.wrap_socket(plain, server_hostname="localhost") as sock:
            sock.sendall(request)
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines)}
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize(
    "request_bytes,status",
    [
        (
            f"GET /api/v1/contacts/lookup?api_key={API_KEY}&x={'A' * 9000} HTTP/1.1\r\n"
            "Host: localhost\r\n\r\n",
            414,
        ),
        (
            f"GET /api/v1/agents/6000/events?api_key={API_KEY} HTTP/1.1\r\nHost: localhost\r\n"
            f"X-Filler: {'B' * 9000}\r\n\r\n",
            431,
        ),
        (f"GET /api/v1/contacts/lookup?api_key={API_KEY} HTTP/1.1 junk\r\n\r\n", 400),
    ],
)
def test_requests_nginx_refuses_answer_problem_json_without_repeating_them(
    deployed, request_bytes, status
):
    port, context, _, _ = deployed

    got, headers, body = raw_tls(port, context, request_bytes.encode())

    assert got == status
    assert headers["content-type"] == "application/problem+json"
    problem = json.loads(body)
    assert problem["status"] == status and problem["code"] == "validation_error"
    for piece in (API_KEY.encode(), b"api_key", b"AAAA", b"BBBB", b"/api/v1"):
        assert piece not in body
