"""The sandbox CRM on SQL (``sandbox.SandboxCrm``): its contacts and the call logs written to it,
shared by every worker (and every host on PostgreSQL)."""

from __future__ import annotations

import json
import time

from sqlalchemy import bindparam, select

from .database import Database
from .tables import sandbox_call_logs, sandbox_contacts

_CONTACTS = select(sandbox_contacts.c.body).order_by(
    sandbox_contacts.c.created_at, sandbox_contacts.c.id
)
_ADD_CALL_LOG = sandbox_call_logs.insert()
_CALL_LOGS = (
    select(sandbox_call_logs.c.body)
    .order_by(sandbox_call_logs.c.seq.desc())
    .limit(bindparam("limit"))
)


class SqlSandbox:
    def __init__(self, db: Database):
        self.db = db
        self._contact_insert = db.insert(sandbox_contacts).on_conflict_do_nothing(
            index_elements=["id"]
        )

    def contacts(self) -> list[dict]:
        with self.db.reading() as conn:
            rows = conn.execute(_CONTACTS).all()
        return [json.loads(row.body) for row in rows]

    def add_contact(self, contact: dict) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                self._contact_insert,
                {"id": contact["id"], "body": json.dumps(contact), "created_at": time.time()},
            )

    def add_call_log(self, payload: dict) -> None:
        with self.db.transaction() as conn:
            conn.execute(_ADD_CALL_LOG, {"body": json.dumps(payload), "created_at": time.time()})

    def call_logs(self, limit: int = 100) -> list[dict]:
        with self.db.reading() as conn:
            rows = conn.execute(_CALL_LOGS, {"limit": limit}).all()
        return [json.loads(row.body) for row in rows]
