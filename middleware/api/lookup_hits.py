"""The caller lookup's fresh hits and plain misses, answered at the WSGI level: a WSGI middleware
around Flask's ``app.wsgi_app`` (as Flask's documentation installs one), installed by the factory.

A PBX asks about the same callers all day; a fresh hit's answer is known before any of Flask's
per-request work (the request context, routing over every rule, the hooks, a ``Response``), and a
caller never seen before waits on the CRM already: neither should wait on Flask's work too. This
answers such a request only when each step of the normal path is known to give what it gives,
each step made by the normal path's own functions, and passes every other request to Flask
untouched:

- ``GET`` of exactly ``LOOKUP_PATH``, no body, routed as Flask routes it to the lookup view (found
  once, by the app's own URL map, with the same hooks and credential rule as when it was built);
- the credential read and checked as ``auth.authenticate`` does (``presented_credential``,
  ``Credentials.principal``, ``permit`` with the view's ``@allow``) and accepted: every 401 and
  403 comes from the normal path;
- the query string loaded as the view's request loads it, by the route's own schema and query memo
  (``describe.query_of``: held when this very query string was loaded before, else loaded from
  the same arguments); one that does not load is the normal path's to refuse;
- ``find(fresh_or_unknown=True)``: a fresh entry of this process's cache (no I/O; counted as the
  hit it is), or a lookup no cached contact can stand in for (no entry with a contact here, no
  shared cache), which asks the CRM as the view would and is counted as the view's would be;
  anything else is neither asked nor counted. A stale entry and the shared cache go to Flask, as
  does a lookup that failed: the failure is handed to the view (``contacts.LOOKUP_FAILED``), which
  raises it, so its problem is answered by the normal path without asking the CRM again.

The answer is the view's (``contacts.lookup_response``) with the headers of ``headers.of_endpoint``
as werkzeug sends them, made once per cache entry and form for a hit (``memo.derived``, kept on
the entry's answer): only ``X-Request-ID`` differs per request, the caller's plain token or a new
id (``logs.request_id``). The metrics and the one log line are ``logs.served``'s. ``HEAD`` goes
to Flask. ``tests/test_lookup_hits.py`` holds the two paths' answers, lines and counts equal.
"""

from __future__ import annotations

import time

from werkzeug.datastructures import EnvironHeaders
from werkzeug.exceptions import HTTPException

from ..auth import API_KEY, FULL, access_of, auth_kind, permit, presented_credential
from ..lookup.memo import derived
from ..lookup.text_form import LOOKUP_PATH, asks_for_text
from ..runtime import logs
from .common import raw_args
from .contacts import LOOKUP, LOOKUP_FAILED, find, lookup_response
from .headers import of_endpoint
from .streams import STREAM_PATH

_EMPTY = (None, "", "0")


class _Unclear(Exception):
    """The credential rule asks which agent the request names: the normal path decides."""


def _unclear():
    raise _Unclear


class LookupHits:
    """``app.wsgi_app = LookupHits(app, app.wsgi_app, hooks, start)``: ``hooks`` the app's
    before- and after-request functions (any other hook there sends every request to Flask),
    ``start()`` what the before-request hook starts at a process's first requests."""

    def __init__(self, app, wsgi_app, hooks: tuple, start):
        self.app = app
        self.wsgi_app = wsgi_app  # Flask's, for every request not answered here
        self.hooks = hooks
        self.start = start
        self.add_headers = of_endpoint(app.extensions["cti"].settings)
        self._route = None  # (endpoint, rule, view), once Flask has served a request
        self._flask_served = False  # Flask has taken a request: its hooks are final from then on

    def __call__(self, environ, start_response):
        answer = self._answered(environ)
        if answer is None:
            served = self.wsgi_app(environ, start_response)
            self._flask_served = True
            return served
        status, headers, body = answer
        start_response(status, headers)
        return body

    def _answered(self, environ):
        """``(status, headers, body)`` for a fresh hit or a plain miss the normal path would
        answer the same; else None, having changed nothing the normal path reads (but a lookup's
        failure, handed to the view)."""
        if environ.get("PATH_INFO") != LOOKUP_PATH or environ.get("REQUEST_METHOD") != "GET":
            return None
        started, now = time.perf_counter(), time.time()
        if environ.get("CONTENT_LENGTH") not in _EMPTY or "HTTP_TRANSFER_ENCODING" in environ:
            return None
        route = self._route
        if route is None:
            route = self._resolve()
        if not route:
            return None
        app = self.app
        config = app.config
        if config["SERVER_NAME"] or config.get("TRUSTED_HOSTS") or app.secret_key is not None:
            return None  # routing would check the host; a session could add a header
        try:
            raw = environ.get("QUERY_STRING", "").encode("latin1")
        except UnicodeEncodeError:
            return None
        services = app.extensions["cti"]
        if not _admitted(environ, raw, services, route[2]):
            return None
        query = LOOKUP.query_of(app, raw)
        if query is None:
            return None
        self.start()
        try:
            result = find(query, services.lookup, fresh_or_unknown=True)
        except Exception as failure:  # noqa: BLE001 - the view raises it: Flask answers
            environ[LOOKUP_FAILED] = failure
            return None
        if result is None:
            return None
        text = asks_for_text(query.get("format"), environ)
        status, code, template, at, body = derived(
            result, ("wsgi", text), self._answer, text, services, environ
        )
        request_id = logs.request_id(environ.get(logs.REQUEST_ID_ENVIRON))
        headers = list(template)
        headers[at] = (logs.REQUEST_ID, request_id)
        waited = logs.queue_seconds(environ.get(logs.REQUEST_START_ENVIRON), now)
        logs.served("GET", route[1], code, time.perf_counter() - started, request_id, waited)
        return status, headers, body

    def _resolve(self):
        """The lookup route as Flask routes ``GET LOOKUP_PATH``, once Flask has served a request
        (no hook can be added after that); False when this app's lookup is not one this answers."""
        if not self._flask_served:
            return None  # Flask refuses a hook added after its first request, not before
        app = self.app
        route = False
        try:
            rule, args = app.url_map.bind("localhost").match(
                LOOKUP_PATH, method="GET", return_rule=True
            )
        except HTTPException:
            rule, args = None, None
        view = app.view_functions.get(rule.endpoint) if rule is not None else None
        before, after = self.hooks
        if (
            view is not None
            and not args
            and not app.url_map.host_matching
            and getattr(view, "cti_doc", None) is LOOKUP
            and auth_kind(view) == API_KEY
            and not getattr(view, STREAM_PATH, 0)
            and _hooks(app.before_request_funcs) == {None: [before]}
            and _hooks(app.after_request_funcs) == {None: [after]}
            and not _hooks(app.teardown_request_funcs)
            and not app.teardown_appcontext_funcs
            and not _hooks(app.url_value_preprocessors)
        ):
            route = (rule.endpoint, rule.rule, view)
        self._route = route
        return route

    def _answer(self, result, text: bool, services, environ):
        """The answer as the normal path sends it, with an ``X-Request-ID`` to fill in: ``(status
        line, status, headers, the index of X-Request-ID, body)``. Read from ``environ``: only
        what a lookup answer has none of (``Location``) and the method (GET)."""
        app = self.app
        response = lookup_response(result, text, services, app)
        response = self.add_headers(response, self._route[0], app)
        response.headers[logs.REQUEST_ID] = ""  # logs.finish sets it last, after the hooks
        headers = tuple(response.get_wsgi_headers(environ).to_wsgi_list())
        at = next(i for i, (name, _) in enumerate(headers) if name == logs.REQUEST_ID)
        body = tuple(response.get_app_iter(environ))
        return response.status, response.status_code, headers, at, body


def _hooks(registered: dict) -> dict:
    """A hook registry without its empty lists (a blueprint's, read and left empty)."""
    return {scope: funcs for scope, funcs in registered.items() if funcs}


def _admitted(environ, raw: bytes, services, view) -> bool:
    """Whether ``auth.authenticate`` lets this request reach the view (a refusal, or a rule that
    asks which agent the request names, is the normal path's to answer)."""
    presented = presented_credential(
        EnvironHeaders(environ),
        lambda: raw_args(raw).get("api_key"),  # its args, as the request reads them
    )
    try:
        principal = services.credentials.principal(presented)
        if principal.kind != FULL:
            permit(principal, access_of(view), _unclear)
    except Exception:  # noqa: BLE001 - a refusal, or anything unclear: the normal path answers
        return False
    return True
