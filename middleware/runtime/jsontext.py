"""JSON from outside (request bodies, upstream answers), refused before parsing when nested deeper
than any document we read.

``json.loads`` recurses once per level of nesting. A 64 KiB body can nest thirty thousand levels:
the parser then runs at the interpreter's recursion limit, and anything the garbage collector
finalises meanwhile (a closed socket, a generator) fails there too, out of reach of any ``except``.
So the depth is counted first, on the text with its strings taken out, and a document nested
deeper than ``MAX_DEPTH`` is a ``ValueError`` like any malformed JSON; it is never parsed.
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask.json.provider import DefaultJSONProvider

MAX_DEPTH = 64

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")
_OPENERS = frozenset(b"[{")


def nested_too_deep(text: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether the JSON text opens more than ``limit`` arrays or objects inside one another."""
    if text.count(b"[") + text.count(b"{") <= limit:  # the common case: too few to nest deep
        return False
    depth = 0
    for bracket in _BRACKET.finditer(_STRING.sub(b"", text)):
        if bracket.group()[0] in _OPENERS:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def refuse_deep(text: bytes | str) -> None:
    """``ValueError`` when the JSON text is nested deeper than ``MAX_DEPTH``."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if nested_too_deep(raw):
        raise ValueError(f"JSON nested deeper than {MAX_DEPTH} levels")


def loads(text: bytes | str) -> Any:
    """``json.loads``, with a document nested deeper than ``MAX_DEPTH`` refused (``ValueError``)."""
    refuse_deep(text)
    return json.loads(text)


# A surrogate escape, or the bytes of an encoded surrogate (``json.loads`` decodes bytes with
# ``surrogatepass``); a pair matches too, and is left as the one character it parses to.
_MAY_HOLD_SURROGATES = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def loads_text(raw: bytes) -> Any:
    """``loads`` for an upstream's answer, whose strings we show, store and send on: a lone
    surrogate in one (``"\\ud800"`` is valid JSON, but no text) becomes U+FFFD, as a byte that is
    not UTF-8 does in ``Reply.text``. Refusing the whole answer instead would lose a caller's
    contact for one bad character in a name."""
    value = loads(raw)
    return _replaced(value) if _MAY_HOLD_SURROGATES.search(raw) else value


def _replaced(value: Any) -> Any:
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_replaced(key): _replaced(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_replaced(item) for item in value]
    return value


class BoundedJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider (``app.json_provider_class``, its documented extension point), reading
    request bodies through ``loads`` above; ``request.get_json(silent=True)`` gives None for a
    body nested too deep, as for any malformed one."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        refuse_deep(s)
        return super().loads(s, **kwargs)
