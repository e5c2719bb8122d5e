"""An HTTP server written on bare sockets, for behaviours that ``http.server`` does not show.

Real upstreams differ in how they end an answer and treat a connection: HTTP/1.0, HTTP/1.1
with ``Connection: close`` or kept alive, a kept-alive connection closed while idle, chunked or
gzip bodies, a slow first byte, headers or a body dripping byte by byte, a reset after reading the
request, TLS. ``RawServer(style, body)`` answers every request in one such ``style`` and counts
the requests it read in full (``received``) and the connections it accepted (``connections``).

    with RawServer("close", {"status": True}) as server:
        ... server.url ...
        assert server.received == 1
"""

from __future__ import annotations

import gzip
import json
import socket
import ssl
import struct
import threading
import time

STYLES = (
    "http10",
    "keepalive",
    "close",
    "idle_close",
    "chunked",
    "gzip",
    "slow_first_byte",
    "drip_body",
    "drip_headers",
    "reset",
)


class RawServer:
    def __init__(
        self,
        style: str,
        body: object,
        *,
        content_type: str = "application/json",
        pause: float = 0.0,
        tls: ssl.SSLContext | None = None,
        port: int = 0,
    ):
        assert style in STYLES, style
        self.style = style
        self.payload = body if isinstance(body, bytes) else _encode(body)
        self.content_type = content_type
        self.pause = pause  # slow_first_byte: the wait; drip_*: seconds between bytes
        self.tls = tls
        self.received = 0
        self.connections = 0
        self.closed = 0  # connections this server has closed (wait_closed)
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", port))
        self._listener.settimeout(0.1)
        host = "localhost" if tls else "127.0.0.1"
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://{host}:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()

    # serving ------------------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = None
        try:
            if self.tls is not None:
                conn.settimeout(5)
                conn = self.tls.wrap_socket(conn, server_side=True)
            conn.settimeout(10)
            reader = conn.makefile("rb")
            while not self._stop.is_set():
                if not self._read_request(reader):
                    return
                with self._lock:
                    self.received += 1
                if not self._answer(conn):
                    return
        except (OSError, ssl.SSLError):
            return
        finally:
            try:
                if reader is not None:  # the descriptor closes with the socket's last file object
                    reader.close()
                conn.close()
            except OSError:
                pass
            with self._lock:
                self.closed += 1
                self._lock.notify_all()

    def wait_closed(self, count: int, timeout: float = 10) -> None:
        """Until this server has closed ``count`` connections: a test that must not race the
        server's close waits for it, instead of sleeping and hoping it came first."""
        with self._lock:
            assert self._lock.wait_for(lambda: self.closed >= count, timeout), (
                f"{self.closed} of {count} connections closed"
            )

    def _read_request(self, reader) -> bool:
        length = 0
        line = reader.readline()
        if not line:
            return False
        while True:
            header = reader.readline()
            if not header:
                return False
            if header in (b"\r\n", b"\n"):
                break
            name, _, value = header.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        if length:
            reader.read(length)
        return True

    def _answer(self, conn: socket.socket) -> bool:
        """Send one answer; True when the connection stays open for another request."""
        style, payload = self.style, self.payload
        if style == "reset":
            # RST instead of FIN: SO_LINGER on with a zero timeout, then close.
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        if style == "slow_first_byte":
            self._stop.wait(self.pause)
        version = "HTTP/1.0" if style == "http10" else "HTTP/1.1"
        headers = [f"{version} 200 OK", f"Content-Type: {self.content_type}"]
        if style == "chunked":
            headers.append("Transfer-Encoding: chunked")
        else:
            if style == "gzip":
                payload = gzip.compress(payload)
                headers.append("Content-Encoding: gzip")
            headers.append(f"Content-Length: {len(payload)}")
        if style == "close":
            headers.append("Connection: close")
        head = ("\r\n".join(headers) + "\r\n\r\n").encode()
        if style == "drip_headers":
            self._drip(conn, head)
        else:
            conn.sendall(head)
        if style == "chunked":
            third = max(1, len(payload) // 3)
            for start in range(0, len(payload), third):
                piece = payload[start : start + third]
                conn.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                time.sleep(0.01)
            conn.sendall(b"0\r\n\r\n")
        elif style == "drip_body":
            self._drip(conn, payload)
        else:
            conn.sendall(payload)
        if style in ("http10", "close"):
            return False
        if style == "idle_close":
            time.sleep(0.05)  # idle, then the server's keep-alive timeout closes the connection
            return False
        return True

    def _drip(self, conn: socket.socket, data: bytes) -> None:
        for index in range(len(data)):
            if self._stop.is_set():
                raise OSError("stopping")
            conn.sendall(data[index : index + 1])
            time.sleep(self.pause)


def _encode(body: object) -> bytes:
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body).encode()
