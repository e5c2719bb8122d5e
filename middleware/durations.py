"""Durations written by people: whole seconds, or a whole number with a unit (``90d``, ``12h``)."""

from __future__ import annotations

import re

UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_SECONDS = 36500 * 86400  # a hundred years: anything longer is a typing slip
_DURATION = re.compile(r"([0-9]+)([smhd]?)")


def parse_duration(raw: str) -> int:
    """The seconds ``raw`` stands for; ``ValueError`` (one line saying why) when it is no
    duration: negative, fractional, an unknown unit, empty."""
    found = _DURATION.fullmatch(raw.strip())
    if found is None:
        raise ValueError(f"{raw!r} is not a duration: whole seconds, or a number with s, m, h or d")
    seconds = int(found[1]) * UNITS[found[2]]
    if seconds > MAX_SECONDS:
        raise ValueError(f"{raw!r} is longer than 36500 days")
    return seconds
