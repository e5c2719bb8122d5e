"""Instants as the API writes them: UTC, ISO 8601 to the second, with ``Z`` (contract dates)."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return (
        datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )
