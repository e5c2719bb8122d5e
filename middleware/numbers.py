"""Phone numbers: parsed by ``phonenumbers`` only, written out as clean digits only.

``parse`` turns whatever an agent or PBX typed into a valid ``PhoneNumber`` or raises
``NumberError``; ``check_destination`` applies the click-to-call policy; ``dial_string`` writes the
number in one of the contract's forms; ``number_info`` says what the number itself tells (its
region, line type, place and original carrier, from the library's offline data). Nothing but digits (and the leading ``+`` of E.164) can come
out of ``dial_string``, so nothing injected in the input ever reaches an upstream.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import PhoneNumber, PhoneNumberFormat, PhoneNumberType, carrier, geocoder

from .errors import DestinationNotAllowed

MAX_INPUT_LENGTH = 32
# What people write between digits; letters (vanity numbers, "x" extensions) are refused.
_PUNCTUATION = frozenset(" -.()/\u00a0")
_PLUS = frozenset("+\uff0b")
NUMBER_TYPES = tuple(  # what ``NumberInfo.type`` may be
    PhoneNumberType.to_string(value).lower() for value in PhoneNumberType.values()
)
_REFUSED_TYPES = {
    PhoneNumberType.PREMIUM_RATE: "premium-rate",
    PhoneNumberType.SHARED_COST: "shared-cost",
}


class NumberError(ValueError):
    """The text is not a valid phone number."""


@dataclass(frozen=True, slots=True)
class NumberInfo:
    """What a number tells by itself: ``region`` (ISO 3166, None for a non-geographic number),
    ``type`` (the library's number type in lower case: "mobile", "fixed_line", "toll_free",
    ..., "unknown"), ``description`` (the place or country, in English) and ``carrier`` (the
    original carrier of a mobile number)."""

    region: str | None
    type: str
    description: str | None
    carrier: str | None

    def summary(self) -> str:
        """One line for a person: "Mobile, South Africa, Vodacom"."""
        kind = None if self.type == "unknown" else self.type.replace("_", " ").capitalize()
        return ", ".join(part for part in (kind, self.description, self.carrier) if part)


def parse(raw: str, region: str) -> PhoneNumber:
    """Parse ``raw`` as written in ``region``; raise NumberError unless it is a valid number.

    Valid answers are memoised (a ringing number is looked up again and again, and parsing is
    most of a cache hit's work); the returned number is shared, so callers must not modify it.
    """
    if not isinstance(raw, str):
        raise NumberError("Not a phone number.")
    return _parse(raw, region)


@lru_cache(maxsize=4096)
def _parse(raw: str, region: str) -> PhoneNumber:
    text = raw.strip()
    if not text:
        raise NumberError("The number is empty.")
    if len(text) > MAX_INPUT_LENGTH:
        raise NumberError("The number is too long.")
    for position, char in enumerate(text):
        allowed = char.isdigit() or char in _PUNCTUATION or (char in _PLUS and position == 0)
        if not allowed:
            raise NumberError(f"The number contains {char!r}, which is not part of a phone number.")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise NumberError(f"Not a phone number: {exc._msg}") from None
    if not phonenumbers.is_valid_number(number):
        raise NumberError("Not a valid phone number.")
    return number


@lru_cache(maxsize=4096)
def number_info(phone: str) -> NumberInfo:
    """``NumberInfo`` of a valid number given in E.164, made once per number (a ringing number is
    looked up again and again)."""
    number = phonenumbers.parse(phone)
    region = phonenumbers.region_code_for_number(number)
    kind = phonenumbers.number_type(number)  # once: the geocoder and carrier lookups ask it again
    return NumberInfo(
        region=region if region and region.isalpha() and region != "ZZ" else None,  # not "001"
        type=PhoneNumberType.to_string(kind).lower(),
        description=_description(number, kind) or None,
        carrier=(carrier.name_for_valid_number(number, "en") if kind in _CARRIED else "") or None,
    )


# The number types a carrier is named for: ``carrier.name_for_number``'s rule.
_CARRIED = frozenset(
    {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE, PhoneNumberType.PAGER}
)


def _description(number: PhoneNumber, kind: int) -> str:
    """``geocoder.description_for_number`` of a number whose type is known."""
    if kind == PhoneNumberType.UNKNOWN:
        return ""
    if not phonenumbers.is_number_type_geographical(kind, number.country_code):
        return geocoder.country_name_for_number(number, "en")
    return geocoder.description_for_valid_number(number, "en")


def e164(number: PhoneNumber) -> str:
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def region_of(number: PhoneNumber) -> str | None:
    return phonenumbers.region_code_for_number(number)


def dial_string(number: PhoneNumber, form: str, default_region: str) -> str:
    """Write ``number`` as ``e164``, ``international`` (no plus) or ``national`` digits.

    ``national`` applies to numbers of the default region only; others go out international.
    """
    if form == "e164":
        return e164(number)
    if form == "national" and region_of(number) == default_region:
        national = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
        return phonenumbers.normalize_digits_only(national)
    return e164(number).lstrip("+")


def pretty(number: PhoneNumber) -> str:
    """The number as a person reads it: "+27 72 123 4567"."""
    return phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)


def check_destination(number: PhoneNumber, allowed_regions: frozenset[str] | None) -> None:
    """Refuse regions outside the allow-list and premium-rate or shared-cost numbers."""
    region = region_of(number)
    if allowed_regions is not None and region not in allowed_regions:
        raise DestinationNotAllowed(
            f"Calls to {region or 'that destination'} are not allowed "
            f"(allowed: {', '.join(sorted(allowed_regions))})."
        )
    refused = _REFUSED_TYPES.get(phonenumbers.number_type(number))
    if refused:
        raise DestinationNotAllowed(f"Calls to {refused} numbers are not allowed.")


@dataclass(frozen=True)
class Written:
    """The spellings of one number that stored text may hold (a privacy request looks for them):
    E.164, international digits, national digits. ``core``, the national significant number, is
    part of each (a cheap ``LIKE`` before ``found_in`` decides)."""

    e164: str
    core: str
    pattern: re.Pattern
    digits: frozenset[str]  # the spellings' digits: international and national

    def found_in(self, text: str | None) -> bool:
        """Whether ``text`` holds one of the spellings as a whole (not inside a longer number)."""
        return bool(text) and self.core in text and self.pattern.search(text) is not None

    def is_phone(self, value) -> bool:
        """Whether a phone field (a contact's ``mobile_phone``...) holds this number, however
        it is punctuated."""
        return isinstance(value, str) and phonenumbers.normalize_digits_only(value) in self.digits


def written(e164_number: str) -> Written:
    """The spellings of an E.164 number (as ``e164`` writes it)."""
    number = phonenumbers.parse(e164_number, None)
    national = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
    digits = frozenset((e164_number.lstrip("+"), phonenumbers.normalize_digits_only(national)))
    forms = sorted({e164_number, *digits}, key=len, reverse=True)
    alternatives = "|".join(re.escape(form) for form in forms)
    return Written(
        e164_number,
        phonenumbers.national_significant_number(number),
        re.compile(rf"(?<![0-9])(?:{alternatives})(?![0-9])"),
        digits,
    )
