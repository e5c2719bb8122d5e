"""Phone numbers in log lines: each written with every digit but its last four masked.

A caller's number is personal data (contract section 4, privacy): no log line may hold a whole one.
Numbers reach log lines in every spelling, wherever a request line, a URL or an upstream's error
text is logged: ``+27721234567``, ``%2B27721234567``, ``0721234567``, ``072 123 4567``,
``072+123+4567`` (a form-encoded space), ``27721234567``. One rule masks them all, applied where
``secrets.py`` scrubs credentials (the log-record factory, for every handler of the process, ours,
gunicorn's and aiohttp's access lines included, and ``logs.JsonFormatter``'s structured fields):

- a number is a run of 7 or more digits, with at most two separators between two digits (a space
  or a no-break space, ``-`` or a typographic dash, ``(``, ``)``, a ``+`` or ``%20`` standing for a
  space), optionally led by ``+``, ``%2B`` or ``%252B``, and not part of a longer word (not
  touching a letter or digit, nor a ``-`` joined to one: the hex groups of a UUID, a request id);
- every digit of it but the last four becomes ``*``; separators stay; a compact ``+`` number (as
  we write E.164) keeps its country code in front, as the contract's example shows:
  ``+27721234567`` → ``+27*******4567``, ``072 123 4567`` → ``*** *** 4567``. A run of more digits
  than a number has (17: E.164's 15 and an international prefix's ``00``) is two numbers or more
  written side by side (``+27721234567 (0721234567)``, ``0721234567 0731234567``) or a long id:
  every digit of it but the last four is masked all the same;
- dates (``2025-07-05``, ``05-07-25``, with an hour after a space) and an access line's status
  and size (``200 1354``) are left as they are.

Why a pattern and not ``phonenumbers.PhoneNumberMatcher``: the matcher finds only what parses
(``Leniency.POSSIBLE`` at the loosest), so an invalid or foreign-looking number, or one glued to
``%2B``, stays whole, and it costs some 50-100 times more per line (docs/operations.md has the
figures). A run of digits that is not a phone number (a long id) is masked too: cheap, and safe.
"""

from __future__ import annotations

import re

from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

KEEP = 4  # digits left readable at the end of a number
MIN_DIGITS, MAX_DIGITS = 7, 17  # 15 of E.164, plus an international prefix's "00"

_NUMBER = re.compile(
    r"(?<![0-9A-Za-z])(?<![0-9A-Za-z]-)"
    r"(?P<lead>\+|%2[Bb]|%252[Bb])?"
    r"(?P<body>\(?\d(?:(?:[ \u00a0()+\-\u2010-\u2015]|%20){0,2}\d){6,})"
    r"(?![0-9A-Za-z])(?!-[0-9A-Za-z])"
)
# Digits that look like a number but are not one: a date (with an hour after it), and an access
# line's status and size ("200 1354", where the two runs meet with a space).
_NOT_A_NUMBER = re.compile(r"(?:\d{4}-\d\d-\d\d|\d\d-\d\d-\d{2,4})(?: \d\d)?|[1-5]\d\d \d{1,12}")
_CALLING_CODES = frozenset(str(code) for code in COUNTRY_CODE_TO_REGION_CODE)


def _calling_code(digits: str) -> str:
    """The country calling code a compact international number starts with ('' if none)."""
    for length in (1, 2, 3):
        if digits[:length] in _CALLING_CODES:
            return digits[:length]
    return ""


def _masked(match: re.Match) -> str:
    lead, body = match.group("lead") or "", match.group("body")
    parts = body.split("%20")  # an encoded space is a separator, its digits none of the number's
    digits = sum(char.isdigit() for part in parts for char in part)
    if digits <= MAX_DIGITS and _NOT_A_NUMBER.fullmatch(body):
        return match.group(0)
    hide = digits - KEEP
    masked_parts = []
    for part in parts:
        out = []
        for char in part:
            if hide > 0 and char.isdigit():
                out.append("*")
                hide -= 1
            else:
                out.append(char)
        masked_parts.append("".join(out))
    masked = "%20".join(masked_parts)
    if lead and body.isdigit() and digits <= MAX_DIGITS:
        masked = _calling_code(body) + masked
    return lead + masked


def mask(text: str) -> str:
    """``text`` with every phone number in it masked (see the module's rule)."""
    return _NUMBER.sub(_masked, text)


def masked_number(e164: str) -> str:
    """How a log line writes this E.164 number: ``+27721234567`` → ``+27*******4567``."""
    return mask(e164)
