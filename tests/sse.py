"""A small Server-Sent Events reader over http.client, for tests against a real server.

A background thread reads the stream line by line into a queue, so the test can wait for the next
event with a timeout without breaking the connection.
"""

from __future__ import annotations

import http.client
import json
import queue
import threading
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
