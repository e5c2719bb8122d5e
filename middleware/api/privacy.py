"""Privacy requests by phone number: what is stored about it, and its erasure (a full key only)."""

from __future__ import annotations

from flask import Blueprint

from schemas.privacy import NumberPathSchema, PrivacyAccessSchema, PrivacyErasedSchema

from ..auth import FULL_ONLY, allow
from .common import cti
from .spec import describe

bp = Blueprint("privacy", __name__)
NUMBER_PATH = "/api/v1/privacy/numbers/<phone>"
NO_STORE = {"Cache-Control": "no-store"}  # a caller's personal data


def _number_operation(answer):
    return describe(tags=["privacy"], path=NumberPathSchema, responses={200: answer})


@bp.get(NUMBER_PATH)
@allow(FULL_ONLY)
@_number_operation(PrivacyAccessSchema)
def access(phone):
    """Everything stored about a number: journal entries, callbacks, the cached contact."""
    return cti().privacy.access(phone), 200, NO_STORE


@bp.delete(NUMBER_PATH)
@allow(FULL_ONLY)
@_number_operation(PrivacyErasedSchema)
def erase(phone):
    """Erase a number: its journal entries and legs, callbacks, screen pops and cache entries
    (every worker and host has forgotten it when this answers); the counts."""
    return cti().privacy.erase(phone), 200, NO_STORE
