"""The HTTP edge: the only module that touches ``requests``.

Each upstream client subclasses ``HttpUpstream`` and gets its own ``requests.Session`` (pooled,
kept-alive connections per upstream host; a pooled connection the server has closed meanwhile is
dropped by urllib3 before reuse), ``(connect, read)`` timeouts within the client's budget, and
certificates verified against ``CTI_CA_BUNDLE`` or the system's authorities. Everything goes
through documented APIs: a ``PreparedRequest`` prepared with the session's headers, sent by the
session's adapter with ``stream=True`` (its settings merged once per client), then the body read
with ``raw.read1`` so that the deadline is checked between pieces and a body dripping one byte at a
time cannot hold us past the budget. (Headers dripping within each read timeout are not bounded
here; the lookup, which must be, bounds its wait from the caller: ``services/lookup.py``.)

``requests`` and ``urllib3`` exceptions are mapped here, once, to our ``Upstream*`` problems with
texts that carry no URL (some upstreams take their key in the query string), and each says whether
the request may have reached the upstream (``in_doubt``): a refused or unresolvable connection, or
a connect timeout, sent nothing; a read timeout or a connection broken after the request went out
may have changed state upstream. Only requests marked ``idempotent`` are retried.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from http.cookiejar import DefaultCookiePolicy
from typing import Any
from urllib.parse import urlencode

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

from ..errors import UpstreamAuth, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from ..runtime import jsontext, logs, metrics
from ..runtime.secrets import scrub
from .retry import backoff

log = logging.getLogger("middleware.upstream")

MAX_BODY = 4 * 1024 * 1024
CONNECT_TIMEOUT = 3.05
PIECE = 65536

# urllib3's errors raised before a byte of the request was written: nothing reached the upstream.
_NOT_SENT = (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError)


@dataclass
class Reply:
    """An upstream's answer, read in full within the deadline."""

    upstream: str
    status: int
    headers: CaseInsensitiveDict
    content: bytes
    _json: Any = field(default=None, repr=False)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON, or UpstreamError when it is not JSON."""
        if self._json is None:
            try:
                self._json = jsontext.loads_text(self.content)
            except ValueError:
                raise UpstreamError(
                    self.upstream, self._snippet("answered with non-JSON")
                ) from None
        return self._json

    def _snippet(self, what: str) -> str:
        text = " ".join(self.text.split())[:200]
        return f"{what} (HTTP {self.status}): {text}" if text else f"{what} (HTTP {self.status})"


def new_session(ca_bundle: str | None = None) -> requests.Session:
    """A session for one upstream: no proxies or netrc from the host, no cookies kept (credentials
    go in explicit headers; a cookie an upstream sets must never replace them), no retries of its
    own (ours are in ``HttpUpstream.request``), certificates verified."""
    session = requests.Session()
    session.trust_env = False
    session.verify = ca_bundle or True
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=64, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class HttpUpstream:
    """Base of every upstream client: one Session, timeouts, a deadline, mapped errors."""

    name = "upstream"
    read_retries = 2

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        ca_bundle: str | None = None,
        session: requests.Session | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = session or new_session(ca_bundle)
        self._settings: dict | None = None  # the adapter's settings, merged once
        # Per method, its bodiless request (``_prepare``), made at its first: a client sets its
        # session's headers when it is made, never after.
        self._bare: dict[str, requests.PreparedRequest] = {}

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
        try:
            prepared = self._prepare(method, url, params, json, data, headers)
            response = self.session.get_adapter(url).send(
                prepared,
                timeout=(min(CONNECT_TIMEOUT, remaining), remaining),
                **self._send_settings(),
            )
        except requests.RequestException as exc:
            raise self._sending_failed(exc) from None
        with response:
            content = self._read_body(response, deadline)
            return Reply(self.name, response.status_code, response.headers, content)

    def _prepare(self, method, url, params, json, data, headers) -> requests.PreparedRequest:
        """The request as ``Request.prepare`` makes it, less its two steps that are of state ours
        never holds: ``prepare_cookies`` (no cookie is ever kept: ``new_session``) and
        ``prepare_hooks`` (no hook is ever set). It is sent by the session's adapter
        (``HTTPAdapter.send``, which follows no redirect), as ``Session.send`` does once it has
        merged what ours never sets (hooks, a redirect to follow) and kept the answer's cookies,
        which the session's policy refuses. Together a tenth of a request's CPU, and with it of
        a miss's latency over the CRM's.

        A request with no body and no headers of its own (a lookup, a PBX read) differs from
        another of its method only by its URL: it is a copy (``PreparedRequest.copy``) of the
        method's request prepared once, with its URL prepared."""
        params = _query(params)
        if json is None and data is None and not headers:
            template = self._bare.get(method)
            if template is None:
                template = self._bare[method] = self._prepared(method, self.base_url)
            prepared = template.copy()
            prepared.prepare_url(url, params)
            return prepared
        return self._prepared(method, url, params, json, data, headers)

    def _prepared(self, method, url, params=None, json=None, data=None, headers=None):
        prepared = requests.PreparedRequest()
        prepared.prepare_method(method)
        prepared.prepare_url(url, params)
        prepared.prepare_headers(self._headers(headers))
        prepared.prepare_body(data, None, json)
        prepared.prepare_auth(None, url)
        return prepared

    def _headers(self, headers: dict | None) -> CaseInsensitiveDict:
        """The session's headers with the request's over them (a None value drops one), as
        ``Session.prepare_request`` merges them. The request is prepared by ``_prepare`` rather
        than ``Session.prepare_request``, whose other merges (cookies, auth, params, hooks) are
        of session state ours never holds (``new_session``: no cookies kept, no netrc) and cost a
        tenth of a request's CPU (``typing.Protocol`` checks in ``merge_setting``)."""
        merged = CaseInsensitiveDict(self.session.headers)
        if headers:
            merged.update(headers)
            for name in [name for name, value in headers.items() if value is None]:
                del merged[name]
        return merged

    def _send_settings(self) -> dict:
        """The adapter's proxies, stream, verify and cert: what ``Session.request`` merges from
        the session (and, with ``trust_env``, the environment) on every call, merged once per
        client (``Session.merge_environment_settings``; every request goes to ``base_url``'s
        host). ``stream=True``: the body is read by ``_read_body``, within the deadline."""
        settings = self._settings
        if settings is None:
            settings = self._settings = self.session.merge_environment_settings(
                self.base_url, {}, True, None, None
            )
        return settings

    def _sending_failed(self, exc: requests.RequestException) -> UpstreamError:
        """Our problem for a request that got no answer, and whether it may have arrived."""
        if not _was_sent(exc):
            if isinstance(exc, requests.ConnectTimeout):
                return UpstreamUnavailable(self.name, "could not connect in time")
            if isinstance(exc, requests.exceptions.SSLError):
                return UpstreamUnavailable(self.name, "the TLS handshake failed (certificate?)")
            return UpstreamUnavailable(self.name, _connection_reason(exc))
        if isinstance(exc, requests.Timeout):
            return UpstreamTimeout(self.name, "did not answer in time", in_doubt=True)
        return UpstreamError(self.name, "the connection broke before the answer", in_doubt=True)

    def _read_body(self, response: requests.Response, deadline: float) -> bytes:
        chunks, size = [], 0
        try:
            while True:
                if time.monotonic() >= deadline:
                    raise UpstreamTimeout(
                        self.name, "did not finish its answer in time", in_doubt=True
                    )
                chunk = response.raw.read1(PIECE, decode_content=True)
                if not chunk:
                    return b"".join(chunks)
                size += len(chunk)
                if size > MAX_BODY:
                    raise UpstreamError(self.name, "answer too large")
                chunks.append(chunk)
        except (urllib3.exceptions.ReadTimeoutError, TimeoutError):
            raise UpstreamTimeout(
                self.name, "did not finish its answer in time", in_doubt=True
            ) from None
        except (urllib3.exceptions.HTTPError, OSError):
            raise UpstreamError(
                self.name, "the connection broke during the answer", in_doubt=True
            ) from None

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
        metrics.observe_upstream(self.name, outcome, seconds)

    # helpers for subclasses --------------------------------------------------------------------

    def fail(self, reply: Reply, message: str | None, *, in_doubt: bool = False) -> UpstreamError:
        """The problem for a failed answer: 401/403 are our credentials, the rest upstream errors.

        ``in_doubt``: the answer says the request was carried out but is broken (a dialer's
        success without the call's id), so the call may have been placed."""
        detail = scrub(message) if message else reply._snippet("failed")
        cls = UpstreamAuth if reply.status in (401, 403) else UpstreamError
        error = cls(self.name, detail, upstream_status=reply.status, in_doubt=in_doubt)
        error.retry_after = _retry_after(reply.headers.get("Retry-After"))
        return error


def _query(params):
    """A mapping of text parameters written as ``requests`` writes it into the query string
    (``urlencode``, a None value left out), which ``prepare_url`` then appends as it is; any other
    ``params`` as given. ``requests`` tells a mapping from a file or a string by two runtime
    protocol checks (``typing.Protocol``), a third of a lookup's preparation and on the miss's path
    before the CRM is asked. ``tests/test_upstream_prepare.py`` holds the two equal."""
    if type(params) is dict and all(
        type(key) is str and (value is None or type(value) is str) for key, value in params.items()
    ):
        return urlencode([(key, value) for key, value in params.items() if value is not None])
    return params


def _was_sent(exc: requests.RequestException) -> bool:
    """False when urllib3 failed before writing the request (refused, unresolvable, connect
    timeout, TLS handshake): ``requests`` wraps those in ``MaxRetryError.reason``."""
    if isinstance(exc, requests.exceptions.SSLError | requests.ConnectTimeout):
        return False
    for cause in exc.args:
        reason = getattr(cause, "reason", cause)
        if isinstance(reason, _NOT_SENT):
            return False
    return True


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds form), or None."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def _connection_reason(exc: Exception) -> str:
    text = repr(exc)
    if "refused" in text.lower():
        return "connection refused"
    if "resolve" in text.lower() or "name or service" in text.lower():
        return "host name could not be resolved"
    return "could not connect"


def edge_options(settings) -> dict:
    """The keyword arguments every client takes from the settings: its budget and trust."""
    return {"timeout": settings.upstream_timeout, "ca_bundle": settings.ca_bundle}
