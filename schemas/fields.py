"""Fields shared by the schemas."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate

from middleware.numbers import NumberError, parse

INVALID_NUMBER = "Invalid phone number"


class RegionSchema(Schema):
    """A schema that knows the region in which numbers without a country code are read."""

    def __init__(self, *args, region: str = "ZZ", **kwargs):
        super().__init__(*args, **kwargs)
        self.region = region


class PhoneNumber(fields.String):
    """Loads a parsed, valid ``phonenumbers.PhoneNumber``, or fails with "Invalid phone number".

    ``space_is_plus`` (a query string a PBX or CRM link fills in without encoding it): a leading
    space before the digits is the ``+`` that form decoding turned into a space, so
    ``?phone= 447911123456`` is +44 7911 123456 and not a number of the default region. When the
    number does not parse with that ``+`` it is read as typed (" 0721234567")."""

    def __init__(self, *, space_is_plus: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.space_is_plus = space_is_plus

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        region = getattr(self.root, "region", "ZZ")
        if self.space_is_plus and text[:1] == " " and text.lstrip()[:1].isdigit():
            try:
                return parse("+" + text.lstrip(), region)
            except NumberError:
                pass
        try:
            return parse(text, region)
        except NumberError as exc:
            raise ValidationError(f"{INVALID_NUMBER}: {exc}") from None


def is_number_error(messages) -> bool:
    return bool(messages) and all(
        isinstance(m, str) and m.startswith(INVALID_NUMBER) for m in messages
    )


# Agent extensions and upstream ids end up in upstream paths and queries: keep them plain.
Extension = validate.Regexp(
    r"^[A-Za-z0-9_.@-]{1,64}\Z", error="Must be 1-64 letters, digits, '_', '.', '@' or '-'."
)
