"""Operations: the health answers."""

from marshmallow import Schema, fields, validate


class StatusSchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(["ok", "ready"]))
