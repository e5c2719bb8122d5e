"""Health for load balancers and orchestrators."""

from __future__ import annotations

from flask import Blueprint, jsonify

from ..auth import public
from ..errors import Problem
from .common import cti
from .spec import describe

bp = Blueprint("ops", __name__)


class NotReady(Problem):
    status, code, title = 503, "not_ready", "Not ready"


@bp.get("/healthz")
@describe(tags=["operations"], responses={200: None})
@public
def healthz():
    """The process serves."""
    return jsonify(status="ok")


@bp.get("/readyz")
@describe(tags=["operations"], responses={200: None}, problems=(503,))
@public
def readyz():
    """The store can be written."""
    try:
        cti().store.check()
    except Exception as exc:
        raise NotReady(f"store: {type(exc).__name__}") from None
    return jsonify(status="ready")
