"""Headers every answer of a kind carries, set by rule in one place so a route added later has them.

- Every answer of a protected route (any route whose view is not ``public``) carries a credential
  or a caller's data, or could: ``Cache-Control: no-store``, so no browser or proxy keeps it.
- Every HTML page (``/agent``, ``/click-to-call``, the ``/pop`` card, any page added later) carries
  a ``Content-Security-Policy``: its scripts and styles from this origin only (none inline), its
  requests to this origin and the stream server, and ``frame-ancestors`` the CRM origins of
  ``CTI_FRAME_ORIGINS`` (``'none'`` when unset, with ``X-Frame-Options: DENY`` for browsers that
  predate ``frame-ancestors``). ``Referrer-Policy: no-referrer``: a page opened with ``?api_key=``
  never hands its address to another site.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from flask import Response, current_app, request

from ..auth import PUBLIC, auth_kind
from ..settings import Settings


def page_policy(settings: Settings) -> str:
    connect = ["'self'"]
    if settings.stream_url:
        parts = urlsplit(settings.stream_url)
        connect.append(f"{parts.scheme}://{parts.netloc}")
    ancestors = " ".join(settings.frame_origins) or "'none'"
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        f"connect-src {' '.join(connect)}; form-action 'self'; base-uri 'none'; "
        f"frame-ancestors {ancestors}"
    )


def by_rule(settings: Settings) -> Callable[[Response], Response]:
    """The after-request step that adds these headers (the factory's one after-request hook)."""
    add = of_endpoint(settings)

    def add_headers(response: Response) -> Response:
        return add(response, request.endpoint, current_app)  # endpoint None: no route matched

    return add_headers


def of_endpoint(settings: Settings) -> Callable[[Response, str | None, object], Response]:
    """``add(response, endpoint, app)``: ``by_rule``'s step for an answer of ``app``'s
    ``endpoint``, read from no request (also the lookup's WSGI hit path's: ``lookup_hits.py``)."""
    policy = page_policy(settings)
    deny_frames = not settings.frame_origins
    protected: dict[str, bool] = {}  # endpoint: whether its answers are no-store, asked once

    def add_headers(response: Response, endpoint: str | None, app) -> Response:
        if endpoint is not None:
            no_store = protected.get(endpoint)
            if no_store is None:
                view = app.view_functions.get(endpoint)
                no_store = protected[endpoint] = endpoint != "static" and auth_kind(view) != PUBLIC
            if no_store:
                response.headers["Cache-Control"] = "no-store"
        if response.mimetype == "text/html":
            response.headers["Content-Security-Policy"] = policy
            response.headers["Referrer-Policy"] = "no-referrer"
            if deny_frames:
                response.headers["X-Frame-Options"] = "DENY"
        return response

    return add_headers
