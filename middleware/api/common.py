"""What every view shares: the services of this app, and loading input through a schema."""

from __future__ import annotations

import functools
import json

from flask import current_app, request
from marshmallow import Schema, ValidationError

from schemas.fields import PhoneNumber, is_number_error

from ..errors import Busy, InvalidNumber, ValidationFailed
from ..runtime import logs
from ..runtime.wsgi import Request, decoded_pairs


def started_in_time(view):
    """Refuse a request that waited for a thread longer than ``CTI_UPSTREAM_TIMEOUT``, before it
    does anything: its client has given up by now (or is about to), and a call placed this late
    rings an agent who no longer expects it. The wait is known behind a proxy that sets
    ``X-Request-Start`` (``logs.queue_seconds``)."""

    @functools.wraps(view)
    def checked(*args, **kwargs):
        waited = logs.queued()
        budget = cti().settings.upstream_timeout
        if waited is not None and waited > budget:
            logs.note(refused="queued too long")
            raise Busy(
                f"The request waited {waited:.1f} s for a free thread, longer than the "
                f"{budget:g} s allowed; nothing was done.",
                retry_after=1,
            )
        return view(*args, **kwargs)

    return checked


def cti():
    """The services built by the factory for this app."""
    return current_app.extensions["cti"]


def load(schema: Schema, data):
    """Validate ``data``; a bad phone number is ``invalid_number``, anything else ``validation_error``."""
    try:
        return schema.load(data)
    except ValidationError as err:
        messages = err.normalized_messages()
        if not isinstance(messages, dict):
            messages = {"_schema": messages if isinstance(messages, list) else [str(messages)]}
        number_keys = {
            field.data_key or name
            for name, field in schema.fields.items()
            if isinstance(field, PhoneNumber)
        }
        if set(messages) <= number_keys and all(is_number_error(m) for m in messages.values()):
            detail = "; ".join(f"{k}: {' '.join(v)}" for k, v in messages.items())
            raise InvalidNumber(detail, errors=messages) from None
        raise ValidationFailed("The request is not valid.", errors=_flat(messages)) from None


def encoded(answer) -> str:
    """``answer`` (plain JSON types) as Flask's JSON provider writes an answer (compact, keys
    sorted, one line), for ``json_answer``: an answer that is the same every time is encoded once,
    at import, instead of on every request."""
    return json.dumps(answer, separators=(",", ":"), sort_keys=True) + "\n"


def json_answer(body: str, status: int = 200, *, app=None):
    """A JSON answer from a body encoded already (``encoded``); ``app``: the current one."""
    return (app or current_app).response_class(body, status, mimetype="application/json")


def parsed_json():
    """The request body parsed as JSON whatever its content type, or None when it is not JSON
    (a body nested too deep is not JSON either: the app's provider refuses it, ``jsontext``)."""
    return request.get_json(silent=True, force=True)


def json_body():
    """The request body as JSON; anything else is a validation error."""
    data = parsed_json()
    if data is None:
        raise ValidationFailed("The body must be a JSON object.", errors={"_body": ["Not JSON."]})
    return data


def query_args(*, drop=("api_key",)):
    return {k: v for k, v in request.args.items() if k not in drop}


def raw_args(raw: bytes):
    """``request.args`` of a request whose raw query string is ``raw``, read as the request class
    reads them (``runtime/wsgi.py``), without a request."""
    return Request.parameter_storage_class(decoded_pairs(raw))


def raw_query_args(raw: bytes, *, drop=("api_key",)) -> dict:
    """``query_args()`` of a request whose raw query string is ``raw``."""
    return {k: v for k, v in raw_args(raw).items() if k not in drop}


def wants_html() -> bool:
    """A browser (text/html preferred over JSON); on a tie, JSON wins."""
    return request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html"


def _flat(messages: dict) -> dict:
    """``{field: [messages]}``; nested errors are joined under dotted names."""
    flat: dict[str, list[str]] = {}
    for key, value in messages.items():
        if isinstance(value, dict):
            for sub, sub_value in _flat(value).items():
                flat[f"{key}.{sub}"] = sub_value
        elif isinstance(value, list):
            flat[str(key)] = [m if isinstance(m, str) else str(m) for m in value]
        else:
            flat[str(key)] = [str(value)]
    return flat
