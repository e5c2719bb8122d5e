"""What every view shares: the services of this app, and loading input through a schema."""

from __future__ import annotations

import json
from functools import lru_cache
from types import MappingProxyType

from flask import current_app, request
from marshmallow import Schema, ValidationError

from schemas.fields import PhoneNumber, is_number_error

from ..errors import InvalidNumber, ValidationFailed


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


MEMO_QUERY_CHARS = 512  # longer query strings are validated afresh each time, never remembered


def load_query(schema: Schema):
    """The query string loaded by ``schema`` (``api_key`` left out), read-only.

    A PBX asks about the same few numbers over and over, so the answer for a valid query string is
    kept by its raw bytes and reused without even splitting it again (``schema`` must be pure: same
    input, same output). An invalid one is not remembered: it is refused afresh each time."""
    raw = request.query_string
    if len(raw) > MEMO_QUERY_CHARS:
        return _load_args(schema, raw)
    return _load_memo(schema, raw)


def _load_args(schema: Schema, raw: bytes):
    """``raw`` is this request's query string (the memo's key); its arguments are read from the
    request, parsed as every other view gets them."""
    return MappingProxyType(load(schema, query_args()))


_load_memo = lru_cache(maxsize=4096)(_load_args)


def encoded(answer) -> str:
    """``answer`` (plain JSON types) as Flask's JSON provider writes an answer (compact, keys
    sorted, one line), for ``json_answer``: an answer that is the same every time is encoded once,
    at import, instead of on every request."""
    return json.dumps(answer, separators=(",", ":"), sort_keys=True) + "\n"


def json_answer(body: str, status: int = 200):
    """A JSON answer from a body encoded already (``encoded``)."""
    return current_app.response_class(body, status, mimetype="application/json")


def parsed_json():
    """The request body parsed as JSON whatever its content type, or None when it is not JSON
    (a body nested too deep for the parser is not JSON either: never a 500)."""
    try:
        return request.get_json(silent=True, force=True)
    except RecursionError:
        return None


def json_body():
    """The request body as JSON; anything else is a validation error."""
    data = parsed_json()
    if data is None:
        raise ValidationFailed("The body must be a JSON object.", errors={"_body": ["Not JSON."]})
    return data


def query_args(*, drop=("api_key",)):
    return {k: v for k, v in request.args.items() if k not in drop}


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
