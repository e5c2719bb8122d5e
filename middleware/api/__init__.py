"""Blueprints, one per resource, and what every view shares: the operation declaration
(``spec``), the OpenAPI document (``openapi``), ``Idempotency-Key`` replay (``idempotency``) and the
headers every answer of a kind carries (``headers``)."""
