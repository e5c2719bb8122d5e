"""The HTTP edge: the only module that touches ``requests``.

Each upstream client subclasses ``HttpUpstream`` and gets its own ``requests.Session`` (a pooled,
kept-alive connection per upstream host), ``(connect, read)`` timeouts, and a deadline on the whole
exchange: the body is read in pieces and the socket's timeout shrinks to what is left, so an
upstream that drips one byte at a time cannot hold us past the budget. ``requests`` and ``urllib3``
exceptions are mapped here, once, to our ``Upstream*`` problems, with texts that carry no URL (some
upstreams take their key in the query string). Only requests marked ``idempotent`` are retried.
"""

from __future__ import annotations

import http.client
import io
import json as jsonlib
import logging
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from http.cookiejar import DefaultCookiePolicy
from typing import Any
from urllib.parse import urlencode

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.utils import requote_uri
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from .. import logs, metrics
from ..errors import UpstreamAuth, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from ..retry import backoff
from ..secrets import scrub

log = logging.getLogger("middleware.upstream")

MAX_BODY = 4 * 1024 * 1024
_NO_PROXIES: dict = {}
CONNECT_TIMEOUT = 3.05


@dataclass
class Reply:
    """An upstream's answer, read in full within the deadline."""

    upstream: str
    status: int
    headers: dict[str, str]
    content: bytes
    _json: Any = field(default=None, repr=False)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON, or UpstreamError when it is not JSON."""
        if self._json is None:
            try:
                self._json = jsonlib.loads(self.content)
            except ValueError:
                raise UpstreamError(
                    self.upstream, self._snippet("answered with non-JSON")
                ) from None
        return self._json

    def _snippet(self, what: str) -> str:
        text = " ".join(self.text.split())[:200]
        return f"{what} (HTTP {self.status}): {text}" if text else f"{what} (HTTP {self.status})"


class HttpUpstream:
    """Base of every upstream client: one Session, timeouts, a deadline, mapped errors."""

    name = "upstream"
    read_retries = 2

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        session: requests.Session | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = session or self._new_session()

    @staticmethod
    def _new_session() -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # no proxy or netrc surprises from the host environment
        # Credentials go in explicit headers; a cookie an upstream sets must never replace them.
        session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        adapter = _DeadlineAdapter(pool_connections=4, pool_maxsize=64, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session

    def close(self) -> None:
        self.session.close()

    # the one request path ----------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        op: str,
        params=None,
        json=None,
        data=None,
        headers=None,
        idempotent: bool = False,
        deadline: float | None = None,
        timeout: float | None = None,
    ) -> Reply:
        """Send one request (several tries only when ``idempotent``) and read the whole answer.

        ``deadline`` is a ``time.monotonic()`` instant shared by a series of requests; without it,
        the request gets ``timeout`` (or the client's) seconds from now.
        """
        if deadline is None:
            deadline = time.monotonic() + (timeout or self.timeout)
        url = self.base_url + path
        attempt = 0
        while True:
            attempt += 1
            started = time.monotonic()
            outcome = "error"
            try:
                reply = self._send(method, url, params, json, data, headers, deadline)
                outcome = str(reply.status)
            except UpstreamError as exc:
                outcome = exc.code
                if not (idempotent and self._may_retry(attempt, exc, deadline)):
                    raise
                continue
            finally:
                self._observe(op, outcome, time.monotonic() - started)
            if idempotent and (reply.status >= 500 or reply.status == 429):
                if self._may_retry(attempt, None, deadline):
                    continue
            return reply

    def _may_retry(self, attempt: int, exc: UpstreamError | None, deadline: float) -> bool:
        if attempt > self.read_retries or isinstance(exc, UpstreamTimeout):
            return False
        delay = backoff(attempt, base=0.05, cap=0.5)
        if time.monotonic() + delay >= deadline:
            return False
        time.sleep(delay)
        return True

    def _send(self, method, url, params, json, data, headers, deadline) -> Reply:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise UpstreamTimeout(self.name, "no time left for the request")
        _exchange.deadline = deadline
        try:
            # Straight to the adapter: no cookies, redirects, proxies or hooks to merge per call.
            prepared = _prepare(
                method,
                url,
                params,
                json,
                data,
                {**self.session.headers, **headers} if headers else self.session.headers,
            )
            response = self.session.get_adapter(url).send(
                prepared,
                stream=True,
                timeout=(min(CONNECT_TIMEOUT, remaining), remaining),
                verify=True,
                cert=None,
                proxies=_NO_PROXIES,
            )
        except requests.Timeout:
            raise UpstreamTimeout(self.name, "did not answer in time") from None
        except requests.ConnectionError as exc:
            raise UpstreamUnavailable(self.name, _connection_reason(exc)) from None
        except requests.RequestException:
            raise UpstreamUnavailable(self.name, "the request could not be sent") from None
        finally:
            _exchange.deadline = None
        try:
            content = self._read_body(response.raw, deadline)
        except UpstreamError:
            response.close()
            raise
        response.raw.release_conn()
        return Reply(self.name, response.status_code, dict(response.headers), content)

    def _read_body(self, raw, deadline: float) -> bytes:
        sock = _socket_of(raw)
        chunks, size = [], 0
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise UpstreamTimeout(self.name, "did not finish its answer in time")
                if sock is not None:
                    sock.settimeout(remaining)
                chunk = raw.read1(65536, decode_content=True)
                if not chunk:
                    return b"".join(chunks)
                size += len(chunk)
                if size > MAX_BODY:
                    raise UpstreamError(self.name, "answer too large")
                chunks.append(chunk)
        except (urllib3.exceptions.ReadTimeoutError, TimeoutError):
            raise UpstreamTimeout(self.name, "did not finish its answer in time") from None
        except (urllib3.exceptions.HTTPError, OSError):
            raise UpstreamUnavailable(self.name, "the connection broke during the answer") from None

    def _observe(self, op: str, outcome: str, seconds: float) -> None:
        logs.info(
            log,
            "upstream %s %s %s",
            (self.name, op, outcome),
            upstream=self.name,
            operation=op,
            status=outcome,
            duration_ms=round(seconds * 1000, 2),
        )
        metrics.observe_upstream(self.name, op, outcome, seconds)

    # helpers for subclasses --------------------------------------------------------------------

    def fail(self, reply: Reply, message: str | None) -> UpstreamError:
        """The problem for a failed answer: 401/403 are our credentials, the rest upstream errors."""
        detail = scrub(message) if message else reply._snippet("failed")
        cls = UpstreamAuth if reply.status in (401, 403) else UpstreamError
        error = cls(self.name, detail, upstream_status=reply.status)
        error.retry_after = _retry_after(reply.headers.get("Retry-After"))
        return error


def _prepare(method, url, params, json, data, headers) -> requests.PreparedRequest:
    """``requests.Request(...).prepare()``, less its two costs that buy nothing here.

    The URL is prepared (parsed, IDNA-checked, requoted: most of ``prepare``'s time) once per
    distinct base and path, and the query string added to it as ``prepare_url`` would add it;
    the cookie step is left out, since no request carries cookies and the session keeps none.
    ``tests/test_upstream_base.py`` holds the two to the same result.
    """
    prepared = requests.PreparedRequest()
    prepared.prepare_method(method)
    prepared.url = _with_query(url, params)
    prepared.prepare_headers(headers)
    prepared.prepare_body(data, None, json)
    if "@" in url:  # only a URL with a user part gives ``prepare_auth`` anything to do
        prepared.prepare_auth(None, url)
    prepared.prepare_hooks(None)
    return prepared


def _with_query(url: str, params) -> str:
    """What ``PreparedRequest.prepare_url(url, params)`` makes of ``url`` and ``params``."""
    base = _prepared_url(url)
    if not params:
        return base
    if "#" in base:  # a fragment goes after the query: the long way
        prepared = requests.PreparedRequest()
        prepared.prepare_url(url, params)
        return prepared.url
    if isinstance(params, dict) and all(
        type(k) is str and type(v) is str for k, v in params.items()
    ):
        query = urlencode(params)  # what ``_encode_params`` makes of text names and values
    else:
        query = requests.PreparedRequest._encode_params(params)
    if not query:
        return base
    # ``base`` is requoted already and requoting leaves it as it is, so requoting the whole is
    # requoting the query alone, as ``prepare_url`` requotes its result.
    return requote_uri(f"{base}{'&' if '?' in base else '?'}{query}")


@lru_cache(maxsize=512)
def _prepared_url(url: str) -> str:
    prepared = requests.PreparedRequest()
    prepared.prepare_url(url, None)
    return prepared.url


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds form), or None."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


# The status line and headers are read by http.client, whose socket timeout applies to each recv:
# an upstream dripping its headers one byte at a time would never time out. Our connections read
# through a file whose every recv gets only the time left before the exchange's deadline (set by
# ``_send`` for this thread), so the headers are bounded like the body.
_exchange = threading.local()


class _DeadlineReader(io.RawIOBase):
    def __init__(self, sock, deadline: float):
        self._sock, self._deadline = sock, deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the exchange's deadline passed")
        self._sock.settimeout(remaining)
        return self._sock.recv_into(buffer)


class _DeadlineSocket:
    def __init__(self, sock, deadline: float):
        self._sock, self._deadline = sock, deadline

    def makefile(self, mode: str = "rb"):
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline))


class _DeadlineResponse(http.client.HTTPResponse):
    def __init__(self, sock, *args, **kwargs):
        deadline = getattr(_exchange, "deadline", None)
        super().__init__(_DeadlineSocket(sock, deadline) if deadline else sock, *args, **kwargs)


class _HTTPConnection(HTTPConnection):
    response_class = _DeadlineResponse


class _HTTPSConnection(HTTPSConnection):
    response_class = _DeadlineResponse


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _DeadlineAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


def _socket_of(raw):
    connection = getattr(raw, "connection", None)
    return getattr(connection, "sock", None)


def _connection_reason(exc: Exception) -> str:
    text = repr(exc)
    if "refused" in text.lower():
        return "connection refused"
    if "resolve" in text.lower() or "name or service" in text.lower():
        return "host name could not be resolved"
    return "could not connect"
