"""The sandbox CRM's state (``store.sandbox``, for the ``sandbox`` CRM): its contacts and the call
logs written to it.

Implementation: ``sql.sandbox.SqlSandbox`` (SQLite or PostgreSQL).
"""

from __future__ import annotations

from typing import Protocol


class SandboxCrm(Protocol):
    def contacts(self) -> list[dict]:
        """Every contact of the sandbox CRM (a handful), oldest first."""

    def add_contact(self, contact: dict) -> None:
        """Keep a sandbox CRM contact under its ``id``; an existing id is left as it is."""

    def add_call_log(self, payload: dict) -> None:
        """Record a call log written to the sandbox CRM."""

    def call_logs(self, limit: int = 100) -> list[dict]:
        """The call logs written to the sandbox CRM, newest first."""
