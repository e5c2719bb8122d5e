"""One error shape: every failure, ours or an upstream's, becomes an RFC 9457 problem.

``Problem`` is the root of our exception tree; each subclass carries its HTTP status and contract
``code``. Upstream modules raise the ``Upstream*`` kinds, views raise the others, and one handler
registered in the factory renders them all (werkzeug's 404/405/413 and unexpected exceptions too).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from http import HTTPStatus

from flask import Flask, Response, current_app, json
from werkzeug.exceptions import HTTPException

from .runtime.secrets import scrub

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TEXT_FAILURES = "cti_text_failures"  # app.extensions: the routes whose failures are read as text
FAILURE_PAGES = "cti_failure_pages"  # app.extensions: the routes whose failures are their own pages


class Problem(Exception):
    status = 500
    code = "internal_error"
    title = "Internal server error"

    def __init__(self, detail: str | None = None, *, errors: dict | None = None, headers=None):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = errors
        self.headers = dict(headers or {})

    def to_dict(self) -> dict:
        body = {
            "type": f"urn:cti-middleware:problem:{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": scrub(self.detail),
            "code": self.code,
        }
        if self.errors is not None:
            body["errors"] = self.errors
        return body


class Unauthorized(Problem):
    status, code, title = 401, "unauthorized", "Unauthorized"


class ValidationFailed(Problem):
    status, code, title = 422, "validation_error", "Validation failed"


class InvalidNumber(Problem):
    status, code, title = 422, "invalid_number", "Invalid phone number"


class DestinationNotAllowed(Problem):
    status, code, title = 403, "destination_not_allowed", "Destination not allowed"


class Forbidden(Problem):
    status, code, title = 403, "forbidden", "Forbidden"


class Conflict(Problem):
    status, code, title = 409, "conflict", "Request still in progress"


class MethodNotAllowed(Problem):
    status, code, title = 405, "method_not_allowed", "Method not allowed"


class PayloadTooLarge(Problem):
    status, code, title = 413, "payload_too_large", "Payload too large"


class RateLimited(Problem):
    status, code, title = 429, "rate_limited", "Too many calls"

    def __init__(self, detail: str, retry_after: int):
        super().__init__(detail, headers={"Retry-After": str(max(1, int(retry_after)))})
        self.retry_after = max(1, int(retry_after))


class Busy(Problem):
    """No capacity for this now (a long-lived stream past its bound, or a request that waited for a
    thread longer than it may): nothing was done, so the client may simply try again."""

    status, code, title = 503, "busy", "Busy"

    def __init__(self, detail: str, retry_after: int, *, errors: dict | None = None):
        seconds = max(1, int(retry_after))
        super().__init__(detail, errors=errors, headers={"Retry-After": str(seconds)})
        self.retry_after = seconds

    def to_dict(self) -> dict:
        """Plus ``retry``: the same delay in milliseconds, as an SSE ``retry:`` field spells it, for
        a stream client that reads the body (``Retry-After`` carries it for every other client)."""
        return {**super().to_dict(), "retry": self.retry_after * 1000}


class NotFound(Problem):
    status, code, title = 404, "not_found", "Not found"


class Unsupported(Problem):
    status, code, title = 501, "unsupported", "Not supported by the configured provider"


class UpstreamError(Problem):
    """The upstream answered with a failure; its message (scrubbed) is the detail.

    ``in_doubt``: the request reached the upstream but its answer was lost (a read timeout, a
    connection broken after sending), so whatever it asked for may have happened."""

    status, code, title = 502, "upstream_error", "Upstream error"

    def __init__(
        self,
        upstream: str,
        detail: str,
        *,
        upstream_status: int | None = None,
        in_doubt: bool = False,
    ):
        super().__init__(f"{upstream}: {detail}")
        self.upstream = upstream
        self.upstream_status = upstream_status
        self.in_doubt = in_doubt
        self.retry_after: float | None = None  # the upstream's Retry-After, when it sent one


class UpstreamAuth(UpstreamError):
    code, title = "upstream_auth", "Upstream rejected our credentials"


class UpstreamUnavailable(UpstreamError):
    status, code, title = 503, "upstream_unavailable", "Upstream unavailable"


class UpstreamTimeout(UpstreamError):
    status, code, title = 504, "upstream_timeout", "Upstream timeout"


_BY_CODE = {
    cls.code: cls
    for cls in (
        Unauthorized,
        ValidationFailed,
        InvalidNumber,
        DestinationNotAllowed,
        Conflict,
        MethodNotAllowed,
        PayloadTooLarge,
        NotFound,
        Unsupported,
    )
}
_HTTP_CODES = {404: NotFound, 405: MethodNotAllowed, 413: PayloadTooLarge}


def problem_response(problem: Problem) -> Response:
    response = Response(json.dumps(problem.to_dict()), status=problem.status, mimetype=PROBLEM_JSON)
    for name, value in problem.headers.items():
        response.headers[name] = value
    return response


def from_http_exception(exc: HTTPException) -> Problem:
    status = exc.code or 500
    cls = _HTTP_CODES.get(status)
    if cls is not None:
        problem = cls(exc.description if status != 404 else "No such route or resource")
    elif 400 <= status < 500:
        problem = ValidationFailed(exc.description or HTTPStatus(status).phrase)
    else:
        problem = Problem()
    valid_methods = getattr(exc, "valid_methods", None)
    if status == 405 and valid_methods:
        problem.headers["Allow"] = ", ".join(valid_methods)
    return problem


def problem_from_dict(body: dict, headers: dict | None = None) -> Problem:
    """Rebuild a problem stored earlier (a dedupe waiter replays its owner's failure)."""
    cls = _BY_CODE.get(body.get("code"), Problem)
    problem = cls.__new__(cls)
    Problem.__init__(problem, body.get("detail"), errors=body.get("errors"), headers=headers)
    problem.status = body.get("status", cls.status)
    problem.code = body.get("code", cls.code)
    problem.title = body.get("title", cls.title)
    return problem


def empty_text_response(problem: Problem) -> Response:
    """The problem's status and headers with an empty text/plain body: what a PBX that shows the
    body whatever the status gets, so the phone keeps the carrier's name instead of an error."""
    response = Response(b"", status=problem.status, mimetype="text/plain")
    for name, value in problem.headers.items():
        response.headers[name] = value
    return response


def render(problem: Problem) -> Response:
    """Every error's one rendering, chosen from the request: problem+json, an empty text body
    where a route declared its caller reads any failure as text (``failures_as_text``), or the
    route's own page where it declared one (``failures_as_page``)."""
    if _read_as_text():
        return empty_text_response(problem)
    for page in current_app.extensions.get(FAILURE_PAGES, ()):
        response = page(problem)
        if response is not None:
            return response
    return problem_response(problem)


def failures_as_text(app: Flask, asks: Callable[[], bool]) -> None:
    """Declared by a route whose caller shows the body whatever the status (the caller lookup's
    plain-text form for a PBX): ``asks()`` says whether this request is one, whatever became of it
    (a refused credential, a wrong method), so its failures answer an empty text body."""
    app.extensions.setdefault(TEXT_FAILURES, []).append(asks)


def failures_as_page(app: Flask, page: Callable[[Problem], Response | None]) -> None:
    """Declared by a route that shows its failures to a person (click-to-call's page for a
    browser): ``page(problem)`` is this request's answer to ``problem``, whatever raised it (a
    refused credential, a check around the view, the view), or None where it is not one."""
    app.extensions.setdefault(FAILURE_PAGES, []).append(page)


def _read_as_text() -> bool:
    return any(asks() for asks in current_app.extensions.get(TEXT_FAILURES, ()))


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(Problem)
    def _problem(exc: Problem):
        if exc.status >= 500:
            log.warning("answered %s %s: %s", exc.status, exc.code, exc.detail)
        return render(exc)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        return render(from_http_exception(exc))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unexpected error")
        return render(Problem("The server failed to handle this request."))
