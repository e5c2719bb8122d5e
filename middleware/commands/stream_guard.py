"""The stream server's connection rules: what it answers before a stream's own checks.

- A connection has ``HEADER_SECONDS`` to send a whole request (and a kept-alive one to send the
  next): an idle or slow-header client is dropped then, whatever it holds (aiohttp's documented
  ``keepalive_timeout``, which runs from the connection's start until a request is complete).
- A request target over ``MAX_LINE`` bytes (414), a header over ``MAX_LINE`` bytes or more than
  ``MAX_FIELDS`` headers (431) is answered problem+json by ``bounded``, and nothing of the request
  is repeated in the answer: a key in the query string stays with its sender. aiohttp's own parser
  takes up to ``PARSER_LINE`` bytes a line, so these reach our middleware; what aiohttp cannot parse
  at all (a malformed request line, a line over ``PARSER_LINE``) it answers itself, a plain-text
  400 that may quote the start of the offending line (aiohttp has no documented way to change that
  answer). In production nginx parses every request first and answers those itself
  (docs/deployment.md).
- A stream whose client has gone is ended at once (``handler_cancellation``), which also gives
  back its credential's slot at once rather than at the next heartbeat.
- Every answer carries ``Cache-Control: no-store`` (``no_store``): streams and their refusals
  carry a caller's data or a credential's fate, and no proxy or browser should keep them.
"""

from __future__ import annotations

import json

from aiohttp import web

from ..errors import PROBLEM_JSON, Problem, ValidationFailed

HEADER_SECONDS = 5.0
MAX_LINE = 8190  # what nginx (8k buffers) and gunicorn take by default
MAX_FIELDS = 100  # gunicorn's limit_request_fields
PARSER_LINE = 4 * (MAX_LINE + 2)  # aiohttp's bound, above ours: between the two we answer


class TargetTooLong(ValidationFailed):
    status, title = 414, "Request target too long"


class HeadersTooLarge(ValidationFailed):
    status, title = 431, "Request header fields too large"


def problem_answer(problem: Problem, headers: dict | None = None) -> web.Response:
    return web.Response(
        text=json.dumps(problem.to_dict()),
        status=problem.status,
        content_type=PROBLEM_JSON,
        headers={**problem.headers, **(headers or {})},
    )


def handler_args() -> dict:
    """``web.Application(handler_args=...)``: the connection options above."""
    return {
        "keepalive_timeout": HEADER_SECONDS,
        "handler_cancellation": True,
        "max_line_size": PARSER_LINE,
        "max_field_size": PARSER_LINE,
        "max_headers": 2 * MAX_FIELDS,  # beyond: aiohttp's 400 "Too many headers received"
    }


@web.middleware
async def bounded(request: web.Request, handler):
    if len(request.raw_path) > MAX_LINE:
        return problem_answer(
            TargetTooLong(f"The request target is longer than {MAX_LINE} bytes; nothing was done.")
        )
    fields = request.raw_headers
    if len(fields) > MAX_FIELDS or any(len(k) + len(v) + 2 > MAX_LINE for k, v in fields):
        return problem_answer(
            HeadersTooLarge(
                f"At most {MAX_FIELDS} header fields of at most {MAX_LINE} bytes each are "
                "accepted; nothing was done."
            )
        )
    return await handler(request)


async def no_store(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: no answer of the stream server is kept by a cache."""
    response.headers["Cache-Control"] = "no-store"
