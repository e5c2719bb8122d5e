"""``Idempotency-Key``: the same key and request replay the first answer for 24 hours.

Checked before anything else the view does. The key is scoped to the API key that presented it and
stored with a fingerprint of the request (method, path, canonical body or query), so the same key
with another request answers 422, and a key whose first request is still running answers 409. An
error answer is not remembered: the claim is released and the client may try again.
"""

from __future__ import annotations

import hashlib
import json
from functools import wraps

from flask import Response, current_app, g, make_response, request

from ..errors import Conflict, ValidationFailed
from ..runtime import jsontext
from ..store import DONE, OWNER, PENDING

TTL = 24 * 3600
HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"


def _fingerprint() -> str:
    if request.method in ("GET", "HEAD"):
        payload = sorted((k, v) for k, v in request.args.items(multi=True) if k != "api_key")
    else:
        raw = request.get_data(cache=True)
        try:
            payload = jsontext.loads(raw)
        except ValueError:
            payload = raw.decode("latin-1")
    canonical = json.dumps([request.method, request.path, payload], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _valid_key(key: str) -> bool:
    return 1 <= len(key) <= 255 and key.isascii() and key.isprintable()


def idempotent(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None:
            return view(*args, **kwargs)
        if not _valid_key(key):
            raise ValidationFailed(
                "Idempotency-Key must be 1-255 printable ASCII characters.",
                errors={HEADER: ["Not a valid key."]},
            )
        services = current_app.extensions["cti"]
        claims = services.store.claims
        fingerprint = _fingerprint()
        slot = f"idem:{g.get('client_id', '-')}:{hashlib.sha256(key.encode()).hexdigest()}"
        claim = claims.claim(
            slot, lease=services.settings.upstream_timeout + 30, fingerprint=fingerprint
        )
        if claim.state != OWNER:
            if claim.fingerprint != fingerprint:
                raise ValidationFailed(
                    "This Idempotency-Key was used with a different request.",
                    errors={HEADER: ["Already used with a different request."]},
                )
            if claim.state == PENDING:
                raise Conflict("The first request with this Idempotency-Key is still running.")
            if claim.state == DONE:
                return _replay(claim.status, claim.body)
        try:
            response = make_response(view(*args, **kwargs))
        except BaseException:
            claims.release(slot, claim.token)
            raise
        if response.status_code >= 400 or response.is_streamed:
            claims.release(slot, claim.token)
        else:
            record = {"mimetype": response.mimetype, "body": response.get_data(as_text=True)}
            claims.complete(
                slot, claim.token, status=response.status_code, body=json.dumps(record), ttl=TTL
            )
        return response

    return wrapper


def _replay(status: int, stored: str) -> Response:
    record = json.loads(stored)
    response = Response(record["body"], status=status, mimetype=record["mimetype"])
    response.headers[REPLAYED] = "true"
    return response
