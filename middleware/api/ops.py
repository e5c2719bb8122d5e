"""Operations: health for load balancers, metrics for Prometheus, the OpenAPI description."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, jsonify

from schemas.ops import StatusSchema

from ..auth import public
from ..errors import Problem
from ..runtime import metrics
from .common import cti
from .openapi import openapi_document
from .spec import describe

log = logging.getLogger(__name__)

bp = Blueprint("ops", __name__)


class NotReady(Problem):
    status, code, title = 503, "not_ready", "Not ready"


@bp.get("/healthz")
@describe(tags=["operations"], responses={200: StatusSchema})
@public
def healthz():
    """The process serves."""
    return {"status": "ok"}


@bp.get("/readyz")
@describe(tags=["operations"], responses={200: StatusSchema}, problems=(NotReady,))
@public
def readyz():
    """The store can be written (with Redis, both Redis and the database; the detail names which
    one fails)."""
    try:
        cti().store.check()
    except Exception as exc:
        reason = exc.detail if isinstance(exc, Problem) else type(exc).__name__
        raise NotReady(f"store: {reason}") from None
    return {"status": "ready"}


@bp.get("/metrics")
@describe(tags=["operations"], responses={200: "text/plain"})
@public
def prometheus_metrics():
    """Prometheus text, summed over every worker of this server."""
    return Response(metrics.render(_journal_counts()), content_type=metrics.CONTENT_TYPE)


def _journal_counts() -> dict[str, int] | None:
    """Journal entries by status from the store; None (no gauge) when it cannot say."""
    counts = getattr(cti().store.journal, "counts", None)
    if counts is None:
        return None
    try:
        return dict(counts())
    except Exception as exc:
        log.warning("metrics: journal counts unavailable: %s", type(exc).__name__)
        return None


@bp.get("/api/v1/openapi.json")
@describe(tags=["operations"], responses={200: "application/json"})
@public
def openapi():
    """The OpenAPI 3 description of every endpoint, generated from the validating schemas."""
    return jsonify(openapi_document(current_app))
