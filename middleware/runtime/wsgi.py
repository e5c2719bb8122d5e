"""The request class (Flask's ``app.request_class``): query strings and form bodies whose bytes are
not UTF-8 are decoded so that the bad bytes stay visible, instead of failing the request or turning
into other, valid text.

Werkzeug decodes a query string with a strict ``bytes.decode()``: one raw byte that is not UTF-8
(``?phone=\\xff``, sent unencoded) made every ``request.args`` raise ``UnicodeDecodeError``, a 500
even inside the error handler. And a percent-escape that is not UTF-8 (``%ED%A0%80``, an encoded
surrogate) it leaves percent-encoded, so the field loaded as the valid text "%ED%A0%80". Here both
become lone surrogates (Python's ``surrogateescape``: one per bad byte), text the schemas refuse as
a malformed field (``schemas/fields.py``) and credentials compare as the bytes they were
(``auth.py``). Multipart fields keep werkzeug's decoding (bad bytes replaced by U+FFFD).

And a body over the limit is refused however it is sent (``refuse_oversized_body``): werkzeug
refuses a ``Content-Length`` over ``MAX_CONTENT_LENGTH``, but reads a chunked body (no length) only
up to it and stops there, so the rest went unseen and the first 64 KiB were taken as the whole.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from flask import Request as FlaskRequest
from flask import request
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser
from werkzeug.utils import cached_property

FORM = "application/x-www-form-urlencoded"
MAX_BODY_BYTES = 64 * 1024  # contract section 3: a body over 64 KiB is 413 payload_too_large
# The app's MAX_CONTENT_LENGTH: werkzeug reads a body without a length up to it, one byte past
# the limit, so a body of exactly the limit and one over it read differently.
MAX_CONTENT_LENGTH = MAX_BODY_BYTES + 1


def refuse_oversized_body() -> None:
    """413 (``RequestEntityTooLarge``) for a body over ``MAX_BODY_BYTES``, before anything reads
    it: by its ``Content-Length``, or, sent chunked without one, by reading it (up to one byte
    past the limit, kept for the view: ``get_data(cache=True)``)."""
    length = request.content_length
    if length is not None:
        if length > MAX_BODY_BYTES:
            raise RequestEntityTooLarge()
    elif "chunked" in request.headers.get("Transfer-Encoding", "").lower():
        if len(request.get_data(cache=True)) > MAX_BODY_BYTES:
            raise RequestEntityTooLarge()


def decoded_pairs(raw: bytes) -> list[tuple[str, str]]:
    """The ``name=value`` pairs of a query string or form body; each byte that is not UTF-8, raw
    or percent-encoded, is the lone surrogate ``surrogateescape`` makes of it."""
    return parse_qsl(
        raw.decode("utf-8", "surrogateescape"),
        keep_blank_values=True,
        encoding="utf-8",
        errors="surrogateescape",
    )


class FormParser(FormDataParser):
    """Werkzeug's form parser, but a URL-encoded body is decoded as ``decoded_pairs`` says."""

    def parse(self, stream, mimetype, content_length, options=None):
        if mimetype != FORM:
            return super().parse(stream, mimetype, content_length, options)
        # The stream is limited to MAX_CONTENT_LENGTH already (as werkzeug reads it at once too).
        return stream, self.cls(decoded_pairs(stream.read())), self.cls()


class Request(FlaskRequest):
    form_data_parser_class = FormParser

    @cached_property
    def args(self) -> MultiDict[str, str]:
        return self.parameter_storage_class(decoded_pairs(self.query_string))
