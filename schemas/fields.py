"""The base of every schema, and the fields the schemas share."""

from __future__ import annotations

from collections.abc import Mapping

import marshmallow
from marshmallow import ValidationError, fields, pre_load

from middleware.directory import AgentDirectory
from middleware.numbers import NumberError, parse

INVALID_NUMBER = "Invalid phone number"
UNKNOWN_AGENT = "Unknown agent: add it to CTI_AGENTS_FILE, or give 1 to 10 digits."
AGENT_DESCRIPTION = "Agent extension: one of CTI_AGENTS_FILE, else digits read as a number"
NOT_TEXT = "Not valid text: it holds a lone surrogate or bytes that are not UTF-8."


def encodable(value) -> bool:
    """Whether every string in ``value``, and in the lists and objects it holds, is text that can
    be written as UTF-8 (no lone UTF-16 surrogate)."""
    if isinstance(value, str):
        if value.isascii():
            return True
        try:
            value.encode()
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(encodable(key) and encodable(item) for key, item in value.items())
    if isinstance(value, list | tuple):
        return all(encodable(item) for item in value)
    return True


class Schema(marshmallow.Schema):
    """The base of every schema: input text that cannot be encoded is a malformed field.

    A JSON string may hold a lone surrogate (``"\\ud800"`` is valid JSON), and a query string or
    form whose bytes are not UTF-8 arrives as such surrogates (``middleware/runtime/wsgi.py``). Python
    keeps that text until something encodes it (the store, a template, an upstream request) and
    fails there: so every field's value is checked here, once, before any field loads it, and
    each bad one is named with ``NOT_TEXT``. Fields the schema ignores (``EXCLUDE``) are not read.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._input_names = tuple(
            field.data_key or name for name, field in self.load_fields.items()
        )

    @pre_load
    def _text_is_encodable(self, data, **kwargs):
        if isinstance(data, Mapping):
            bad = {
                name: [NOT_TEXT]
                for name in self._input_names
                if name in data and not encodable(data[name])
            }
            if bad:
                raise ValidationError(bad)
        return data


class RegionSchema(Schema):
    """A schema that reads what depends on the app: numbers without a country code in its
    ``region``, agent extensions (``Agent``) against its agent ``directory``."""

    def __init__(
        self, *args, region: str = "ZZ", directory: AgentDirectory | None = None, **kwargs
    ):
        super().__init__(*args, **kwargs)
        self.region = region
        self.directory = AgentDirectory() if directory is None else directory


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


class Agent(fields.String):
    """Loads an agent extension in its one spelling (``AgentDirectory.spelling``): an extension of
    the directory as written there, or else 1 to 10 digits without leading zeros (``07602`` is
    ``7602``); anything else fails. Its schema must be a ``RegionSchema`` made with the app's
    directory."""

    def __init__(self, *, metadata: dict | None = None, **kwargs):
        described = {"description": AGENT_DESCRIPTION, "example": "6000", **(metadata or {})}
        super().__init__(metadata=described, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        spelled = self.root.directory.spelling(text)
        if spelled is None:
            raise ValidationError(UNKNOWN_AGENT)
        return spelled
