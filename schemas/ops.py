"""Operations: the health answers."""

from marshmallow import fields, validate

from .fields import Schema


class StatusSchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(["ok", "ready"]))
