"""A small SIP over UDP toolkit for the PBX tests: a caller that sends an INVITE, and a sink (the
agent's phone) that records the INVITE it is relayed and answers 486, so every transaction ends.

Only what these tests need of RFC 3261: one INVITE per call, the final answer, the ACK of a
non-2xx answer; messages are parsed just enough to check what a phone would read.
"""

from __future__ import annotations

import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass

# RFC 3261 name-addr with a quoted display name: "quoted-string" <SIP-URI> ;tag=...
QUOTED_FROM = re.compile(
    r'^"((?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[\x00-\x09\x0b\x0c\x0e-\x7f])*)"'
    r" ?<(sips?:[^<>\s\"]+)>;tag=([\w.!%*+`'~-]+)$"
)


@dataclass
class Message:
    start: str
    headers: list[tuple[str, str]]
    received_at: float

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def one(self, name: str) -> str:
        (value,) = self.all(name)
        return value


def parse(data: bytes, received_at: float = 0.0) -> Message:
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8")
    start, *lines = head.split("\r\n")
    headers = []
    for line in lines:
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return Message(start, headers, received_at)


def display_name(from_header: str) -> str:
    """The display name of a well-formed From header (a quoted string), unquoted; or fail."""
    match = QUOTED_FROM.match(from_header)
    assert match, f"not a well-formed From header: {from_header!r}"
    return re.sub(r"\\(.)", r"\1", match.group(1))


class Sink:
    """The phone Kamailio relays to: records each INVITE (by Call-ID) and answers it 486."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.invites: dict[str, Message] = {}
        self._arrived = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> Sink:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop = True
        self.sock.sendto(b"", ("127.0.0.1", self.port))  # wakes recvfrom
        self._thread.join(5)
        self.sock.close()

    def _serve(self) -> None:
        while True:
            data, peer = self.sock.recvfrom(65535)
            now = time.perf_counter()
            if self._stop:
                return
            if not data.strip():
                continue
            message = parse(data, now)
            if not message.start.startswith("INVITE "):
                continue  # the ACK of our 486
            self.sock.sendto(_reply(message, 486, "Busy Here"), peer)
            with self._arrived:
                self.invites.setdefault(message.one("Call-ID"), message)
                self._arrived.notify_all()

    def wait(self, call_id: str, timeout: float = 10) -> Message:
        with self._arrived:
            self._arrived.wait_for(lambda: call_id in self.invites, timeout)
            return self.invites[call_id]


def _reply(request: Message, status: int, reason: str) -> bytes:
    to = request.one("To")
    if ";tag=" not in to:
        to += ";tag=sink"
    lines = [f"SIP/2.0 {status} {reason}"]
    lines += [f"Via: {via}" for via in request.all("Via")]
    lines += [f"From: {request.one('From')}", f"To: {to}"]
    lines += [f"Call-ID: {request.one('Call-ID')}", f"CSeq: {request.one('CSeq')}"]
    lines += ["Content-Length: 0", "", ""]
    return "\r\n".join(lines).encode()


class Caller:
    """The carrier's side: sends INVITEs to the proxy for the sink, ACKs their final answers."""

    def __init__(self, proxy_port: int, sink_port: int):
        self.proxy = ("127.0.0.1", proxy_port)
        self.sink_port = sink_port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(10)
        self.port = self.sock.getsockname()[1]
        self._calls: dict[str, tuple[str, str, str]] = {}

    def __enter__(self) -> Caller:
        return self

    def __exit__(self, *exc) -> None:
        self.sock.close()

    def invite(self, user: str, display: str = "Carrier Name") -> tuple[str, float]:
        """Send an INVITE from ``user``; return its Call-ID and when it was sent."""
        call_id = f"{uuid.uuid4().hex}@127.0.0.1"
        branch = f"z9hG4bK{uuid.uuid4().hex}"
        self._calls[call_id] = (branch, user, display)
        message = "\r\n".join(
            [
                f"INVITE sip:6000@127.0.0.1:{self.sink_port} SIP/2.0",
                f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch={branch};rport",
                "Max-Forwards: 70",
                f'From: "{display}" <sip:{user}@carrier.example>;tag=caller',
                f"To: <sip:6000@127.0.0.1:{self.sink_port}>",
                f"Call-ID: {call_id}",
                "CSeq: 1 INVITE",
                f"Contact: <sip:{user}@127.0.0.1:{self.port}>",
                "Content-Length: 0",
                "",
                "",
            ]
        ).encode()
        sent = time.perf_counter()
        self.sock.sendto(message, self.proxy)
        return call_id, sent

    def finish(self, call_id: str) -> int:
        """Read answers for ``call_id`` up to the final one, ACK it, return its status."""
        while True:
            data, _ = self.sock.recvfrom(65535)
            answer = parse(data)
            if answer.one("Call-ID") != call_id:
                continue
            status = int(answer.start.split()[1])
            if status >= 200:
                self._ack(answer)
                return status

    def _ack(self, answer: Message) -> None:
        call_id = answer.one("Call-ID")
        branch, user, display = self._calls.pop(call_id)
        message = "\r\n".join(
            [
                f"ACK sip:6000@127.0.0.1:{self.sink_port} SIP/2.0",
                f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch={branch};rport",
                "Max-Forwards: 70",
                f'From: "{display}" <sip:{user}@carrier.example>;tag=caller',
                f"To: {answer.one('To')}",
                f"Call-ID: {call_id}",
                "CSeq: 1 ACK",
                "Content-Length: 0",
                "",
                "",
            ]
        ).encode()
        self.sock.sendto(message, self.proxy)
