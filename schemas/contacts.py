"""Caller lookup, contact search and create, screen pop: requests and answers."""

from marshmallow import ValidationError, fields, validate, validates_schema

from middleware.numbers import NUMBER_TYPES

from .fields import PhoneNumber, RegionSchema, Schema

Name = validate.Length(min=1, max=100)


class ContactSchema(Schema):
    id = fields.String(allow_none=True, required=True)
    name = fields.String(allow_none=True, required=True, metadata={"example": "James May"})
    first_name = fields.String(allow_none=True, required=True)
    last_name = fields.String(allow_none=True, required=True)
    company = fields.String(allow_none=True, required=True)
    customer_number = fields.String(allow_none=True, required=True)
    email = fields.String(allow_none=True, required=True)
    mobile_phone = fields.String(allow_none=True, required=True, metadata={"description": "E.164"})
    business_phone = fields.String(allow_none=True, required=True)
    business_phone2 = fields.String(allow_none=True, required=True)
    entity_type = fields.String(
        allow_none=True, required=True, metadata={"description": "Account, Contact or Lead"}
    )


CONTACT_FIELDS = tuple(ContactSchema().fields)


class Contact(fields.Nested):
    """A contact, described by ``ContactSchema``. The lookup service builds contacts in exactly
    that shape (``to_contact``), so dumping copies its fields instead of running the nested schema
    again on every cache hit."""

    def __init__(self, **kwargs):
        super().__init__(ContactSchema, **kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return {name: value.get(name) for name in CONTACT_FIELDS}


class CallerQuerySchema(RegionSchema):
    """Who is calling: ``phone`` in any common form, or ``email``; exactly one."""

    phone = PhoneNumber(
        space_is_plus=True,
        metadata={
            "description": "Caller number, any common form; a leading space is an unencoded +"
        },
    )
    email = fields.Email(validate=validate.Length(max=254))
    api_key = fields.String(load_only=True)

    @validates_schema
    def _one_of(self, data, **kwargs):
        if ("phone" in data) == ("email" in data):
            raise ValidationError("Give exactly one of phone or email.", "_schema")


class LookupQuerySchema(CallerQuerySchema):
    format = fields.String(
        validate=validate.OneOf(["json", "text"]),
        metadata={"description": "text: the display name as text/plain (as Accept: text/plain)"},
    )


class NumberInfoSchema(Schema):
    """What the number itself tells, from the offline data of ``phonenumbers`` (no upstream)."""

    region = fields.String(
        allow_none=True,
        required=True,
        metadata={"description": "ISO 3166 region; null for a non-geographic number"},
    )
    type = fields.String(
        required=True,
        validate=validate.OneOf(NUMBER_TYPES),
        metadata={"description": "The library's number type, in lower case", "example": "mobile"},
    )
    description = fields.String(
        allow_none=True,
        required=True,
        metadata={"description": "The place or country, in English", "example": "South Africa"},
    )
    carrier = fields.String(
        allow_none=True,
        required=True,
        metadata={"description": "The original carrier of a mobile number", "example": "Vodacom"},
    )


class LookupSchema(Schema):
    found = fields.Boolean(required=True)
    phone = fields.String(allow_none=True, required=True, metadata={"example": "+27721234567"})
    contact = Contact(allow_none=True, required=True)
    cached = fields.Boolean(required=True)
    stale = fields.Boolean(required=True)
    screen_pop_url = fields.String(allow_none=True, required=True)
    number_info = fields.Nested(
        NumberInfoSchema,
        allow_none=True,
        required=True,
        metadata={"description": "What the number tells by itself; null for an email lookup"},
    )


class SearchQuerySchema(Schema):
    term = fields.String(required=True, validate=validate.Length(min=1, max=100))
    api_key = fields.String(load_only=True)


class SearchResultSchema(Schema):
    results = fields.List(Contact(), required=True)


class ContactCreateSchema(RegionSchema):
    first_name = fields.String(required=True, validate=Name)
    last_name = fields.String(required=True, validate=Name)
    phone = PhoneNumber(required=True, metadata={"description": "Any common form"})
    email = fields.Email(validate=validate.Length(max=254))
    company = fields.String(validate=Name)


class ContactCreatedSchema(Schema):
    contact = Contact(required=True)
