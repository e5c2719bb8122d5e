"""Privacy requests: the number in the path, everything stored about it, what an erasure removed."""

from marshmallow import fields

from .callbacks import CallbackSchema
from .contacts import Contact
from .fields import PhoneNumber, RegionSchema, Schema
from .journal import JournalEntrySchema


class NumberPathSchema(RegionSchema):
    phone = PhoneNumber(
        required=True,
        metadata={"description": "The number, any common form (URL-encode + and spaces)"},
    )


class PrivacyAccessSchema(Schema):
    number = fields.String(required=True, metadata={"description": "E.164"})
    journal = fields.List(
        fields.Nested(JournalEntrySchema),
        required=True,
        metadata={"description": "Journal entries whose call log's Number is this number"},
    )
    callbacks = fields.List(
        fields.Nested(CallbackSchema),
        required=True,
        metadata={"description": "Callbacks for this number"},
    )
    contact = Contact(
        allow_none=True, required=True, metadata={"description": "The cached contact, or null"}
    )


class ErasedCountsSchema(Schema):
    journal = fields.Integer(required=True, metadata={"description": "Journal entries (and legs)"})
    callbacks = fields.Integer(required=True)
    cache = fields.Integer(required=True, metadata={"description": "Contact cache entries"})


class PrivacyErasedSchema(Schema):
    number = fields.String(required=True, metadata={"description": "E.164"})
    erased = fields.Nested(ErasedCountsSchema, required=True)
