"""The service's measurements, in one place: code elsewhere calls these functions only.

The Prometheus implementation (summed over gunicorn workers) lives behind them, so nothing else
imports prometheus_client.
"""

from __future__ import annotations


def observe_upstream(upstream: str, operation: str, outcome: str, seconds: float) -> None:
    """One upstream request: ``outcome`` is the HTTP status or our error code."""


def count_lookup(result: str) -> None:
    """One caller lookup: ``result`` is hit, miss, stale or error."""


def count_call(provider: str, outcome: str) -> None:
    """One click-to-call that reached the dialer step: ``initiated`` or an error code."""


def count_delivery(outcome: str) -> None:
    """One journal delivery attempt: ``delivered``, ``retry`` or ``failed``."""
