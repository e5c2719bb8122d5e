"""Stream paths on the main port: where the stream server serves them, a redirect there.

When the stream server runs beside gunicorn (``CTI_STREAM_URL`` set, as under ``make run``), a
stream path asked of gunicorn (``GET /api/v1/agents/{extension}/events``, the board's stream)
answers ``307`` with ``Location`` = ``CTI_STREAM_URL`` + the same path and query: a client that
follows redirects (EventSource, ``curl -L``) gets its stream there, and no gunicorn thread is held.
The redirect comes before the credential check and before any stream bound (the factory's
before-request hook runs ``redirect_to_stream_server`` ahead of ``auth.authenticate``): the
credential is checked where the stream is served. A stream view says it is one with one line,
``@stream_path``.
"""

from __future__ import annotations

from urllib.parse import quote, quote_from_bytes

from flask import Response, current_app, request

from .common import cti

STREAM_PATH = "cti_stream_path"
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?%"  # what the client escaped stays escaped, byte for byte


def stream_path(view):
    """Mark ``view`` as a stream that the stream server serves when ``CTI_STREAM_URL`` is set."""
    setattr(view, STREAM_PATH, True)
    return view


def redirect_to_stream_server() -> Response | None:
    """The ``307`` to the stream server for a stream path, or None (serve it here)."""
    base = cti().settings.stream_url
    if not base or request.url_rule is None or request.method not in ("GET", "HEAD"):
        return None
    if not getattr(current_app.view_functions.get(request.endpoint), STREAM_PATH, 0):
        return None
    location = base + quote(request.path, safe=_PATH_SAFE)
    if request.query_string:
        location += "?" + quote_from_bytes(request.query_string, safe=_QUERY_SAFE)
    # No body: werkzeug's redirect page would repeat the address, and the query may hold a key.
    return Response(status=307, headers={"Location": location}, content_type="text/plain")
