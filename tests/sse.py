"""A small Server-Sent Events reader over http.client, for tests against a real server.

A background thread reads the stream line by line into a queue, so the test can wait for the next
event with a timeout without breaking the connection.
"""

from __future__ import annotations

import http.client
import json
import queue
import threading
import time
from urllib.parse import urlsplit


class SseStream:
    def __init__(self, base: str, path: str, headers: dict | None = None, timeout: float = 10):
        parts = urlsplit(base)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        self.connection.request("GET", path, headers=headers or {})
        self.response = self.connection.getresponse()
        self.status = self.response.status
        # Without keep-alive, http.client hands the socket over to the response.
        self.sock = self.connection.sock or self.response.fp.raw._sock
        self.sock.settimeout(None)
        self.comments: queue.Queue[str] = queue.Queue()
        self.events: queue.Queue[dict] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        fields: dict = {}
        try:
            for raw in self.response:
                text = raw.decode().rstrip("\n")
                if text == "":
                    if "data" in fields:
                        fields["data"] = json.loads(fields["data"])
                        self.events.put(fields)
                    fields = {}
                elif text.startswith(":"):
                    self.comments.put(text[1:].strip())
                else:
                    name, _, value = text.partition(":")
                    fields[name] = value.lstrip(" ")
        except Exception:  # noqa: BLE001 - the test closed the connection under the reader
            return

    def next_event(self, timeout: float) -> dict | None:
        """The next event (``id``, ``event``, ``data`` parsed as JSON), or None at the timeout."""
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            return None

    def worker(self, timeout: float = 5) -> str | None:
        """The pid of the worker serving this stream, from its opening comment."""
        comment = self.comments.get(timeout=timeout)
        return comment.rsplit(" ", 1)[-1] if " worker " in comment else None

    def close(self) -> None:
        try:
            self.sock.shutdown(2)
        except OSError:
            pass
        self.response.close()
        self.connection.close()


class RawStream:
    """One stream over a bare socket, without a reader thread: for tests that hold hundreds."""

    def __init__(self, base: str, path: str, headers: dict | None = None, timeout: float = 10):
        import socket

        parts = urlsplit(base)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
        lines = [f"GET {path} HTTP/1.1", f"Host: {parts.netloc}", "Accept: text/event-stream"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed before the response head")
            self.buffer += chunk
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in header_lines)
        }

    def body(self, timeout: float = 5) -> bytes:
        """The rest of a non-stream answer (by Content-Length)."""
        length = int(self.headers.get("content-length", 0))
        self.sock.settimeout(timeout)
        while len(self.buffer) < length:
            self.buffer += self.sock.recv(65536)
        return self.buffer[:length]

    def next_event(self, timeout: float) -> dict | None:
        """The next event with data (``id``, ``event``, ``data`` parsed), or None at the timeout.
        Chunked framing is skipped over: only SSE lines are read."""
        deadline = time.monotonic() + timeout
        while True:
            for block in self._blocks():
                fields = {}
                for line in block.split("\n"):
                    if line and not line.startswith(":") and ":" in line:
                        name, _, value = line.partition(":")
                        fields[name] = value.lstrip(" ")
                if "data" in fields:
                    fields["data"] = json.loads(fields["data"])
                    return fields
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                return None
            if not chunk:
                return None
            self.buffer += chunk

    def _blocks(self):
        text = self.buffer.decode()
        # Drop chunk-size lines: an SSE line never is bare hex.
        kept = [
            line
            for line in text.replace("\r\n", "\n").split("\n")
            if not (line and all(c in "0123456789abcdefABCDEF" for c in line))
        ]
        joined = "\n".join(kept)
        *complete, rest = joined.split("\n\n")
        self.buffer = rest.encode()
        return complete

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def opened(base: str, path: str) -> RawStream | None:
    """A stream of ``path`` if the server opens it (200), else None (the refusal closed)."""
    stream = RawStream(base, path)
    if stream.status == 200:
        return stream
    stream.close()
    return None
