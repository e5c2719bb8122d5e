"""Who may call what: API keys for protected routes, the webhook secret for webhooks.

Routes are protected unless their view says otherwise (``public`` or ``webhook``), so a new route
cannot be left open by mistake. Keys are compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

from flask import current_app, g, request

from .errors import Unauthorized

PUBLIC, WEBHOOK, API_KEY = "public", "webhook", "api_key"


def public(view):
    view.cti_auth = PUBLIC
    return view


def webhook(view):
    view.cti_auth = WEBHOOK
    return view


def _matches(candidate: str | None, accepted) -> str | None:
    if not candidate:
        return None
    found = None
    given = candidate.encode()
    for key in accepted:
        if hmac.compare_digest(given, key.encode()):
            found = key
    return found


def presented_api_key() -> str | None:
    return presented_credential(request.headers, request.args)


def presented_credential(headers, args) -> str | None:
    """The credential a request presents: ``X-API-Key``, else ``Authorization: Bearer``, else the
    ``api_key`` query parameter. ``headers`` and ``args`` are any mappings (Flask's, aiohttp's)."""
    key = headers.get("X-API-Key")
    if not key:
        scheme, _, value = headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            key = value.strip()
    return key or args.get("api_key")


def check_credential(settings, credential: str | None, *, extension: str | None = None) -> str:
    """The one credential rule for protected routes, usable without a Flask request (the stream
    server calls it too): the client id of ``credential``, or ``Unauthorized``.

    ``extension`` is the agent the request acts for (a path's ``{extension}``), so that a
    credential limited to one agent can be held to it; a key of ``CTI_API_KEYS`` may act for any.
    """
    key = _matches(credential, settings.api_keys)
    if key is None:
        raise Unauthorized("A valid API key is required (X-API-Key, Bearer token or api_key).")
    return _client_id(key)


def authenticate() -> None:
    """before_request hook: check the credential the matched view asks for."""
    if request.url_rule is None:
        return  # 404 or 405 follow, answered without a credential
    app = current_app._get_current_object()
    view = app.view_functions.get(request.endpoint)
    kind = getattr(view, "cti_auth", API_KEY)
    if kind == PUBLIC or request.endpoint == "static":
        return
    settings = app.extensions["cti"].settings
    if kind == WEBHOOK:
        token = request.headers.get("X-Webhook-Token") or request.args.get("token")
        secret = settings.webhook_secret
        if not secret or not _matches(token, (secret,)):
            raise Unauthorized("A valid webhook token is required.")
        g.client_id = "webhook"
        return
    extension = (request.view_args or {}).get("extension")
    g.client_id = check_credential(settings, presented_api_key(), extension=extension)


@lru_cache(maxsize=64)
def _client_id(key: str) -> str:
    """A stable, non-secret name for the key that authenticated (scopes Idempotency-Keys)."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]
