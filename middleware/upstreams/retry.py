"""Backoff with full jitter, in one place so tests can stub the randomness."""

from __future__ import annotations

import random


def backoff(attempt: int, *, base: float, cap: float, rand=random.random) -> float:
    """Seconds to wait before try ``attempt + 1`` (``attempt`` counts from 1): doubling, jittered."""
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    return ceiling / 2 + rand() * ceiling / 2
