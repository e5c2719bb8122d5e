"""A real local HTTP server for tests where timing or concurrency matters.

``FakeServer(handler)`` listens on 127.0.0.1 at a free port in a background thread. ``handler``
receives a ``Seen`` request and returns ``Answer`` (or raises ``Hang`` / ``Drip`` behaviour through
the answer's fields). Every request is recorded in ``server.seen``, thread-safely.

Real upstreams either keep connections alive or close them after each answer (HTTP/1.1
``Connection: close``, as many PHP, IIS and load-balanced stacks do). Unless ``close`` is given,
a fake closes its connections in a fixed half of the tests, chosen by the test's id (so the same
test always sees the same behaviour, and a regression of either kind fails CI).

    with FakeServer(lambda req: Answer(200, {"Success": True, "uuid": "u"}, delay=0.3)) as fake:
        ... fake.url ...
        assert len(fake.seen) == 1
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Seen:
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body or b"null")


@dataclass
class Answer:
    status: int = 200
    body: object = None  # dict/list -> JSON; str/bytes -> as is
    delay: float = 0.0  # seconds before the status line
    drip: float = 0.0  # seconds between body bytes (headers sent at once)
    hang: bool = False  # accept and never answer (until the server stops)
    headers: dict = field(default_factory=dict)
    content_type: str | None = None

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, (dict, list)):
            return json.dumps(self.body).encode(), self.content_type or "application/json"
        if isinstance(self.body, str):
            return self.body.encode(), self.content_type or "text/plain"
        return self.body or b"", self.content_type or "application/octet-stream"


def closes_by_default() -> bool:
    """Whether this test's fakes answer ``Connection: close``: the test id's CRC, odd or even."""
    test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0]
    return zlib.crc32(test.encode()) % 2 == 1


class FakeServer:
    def __init__(self, handler, *, close: bool | None = None):
        self.handler = handler
        self.close = closes_by_default() if close is None else close
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def setup(self):
                super().setup()
                # Headers and body go out in two writes: without this, Nagle's algorithm and the
                # client's delayed ACK hold every answer back ~40 ms.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                seen = Seen(
                    self.command, parts.path, dict(parse_qsl(parts.query)), dict(self.headers), body
                )
                with outer._lock:
                    outer.seen.append(seen)
                answer = outer.handler(seen)
                if answer.hang:
                    outer._stopping.wait(60)
                    return
                if answer.delay:
                    time.sleep(answer.delay)
                payload, content_type = answer.encoded()
                self.send_response(answer.status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                if outer.close:
                    self.send_header("Connection", "close")  # and the handler closes after
                self.end_headers()
                if answer.drip:
                    for byte in payload:
                        if outer._stopping.is_set():
                            return
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(answer.drip)
                else:
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def count(self, path: str | None = None) -> int:
        with self._lock:
            return sum(1 for s in self.seen if path is None or s.path == path)
