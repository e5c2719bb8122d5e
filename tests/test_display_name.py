"""The caller's name for a phone display: safe for a SIP display name and a dialplan (pure rule)."""

from __future__ import annotations

import unicodedata

import pytest

from middleware.lookup.display import BANNED, MAX_CHARS, caller_name, safe_display

PHONE = "+27721234567"


def contact(name, company=None):
    return {"name": name, "company": company}


def is_safe(text: str) -> bool:
    return (
        not any(unicodedata.category(c).startswith("C") for c in text)
        and not any(c in text for c in BANNED)
        and "${" not in text
        and text == " ".join(text.split())
        and len(text) <= MAX_CHARS
    )


def test_name_then_company_in_parentheses():
    assert (
        caller_name(contact("James May", "My Company name"), PHONE) == "James May (My Company name)"
    )


def test_company_named_contact_is_not_repeated():
    assert caller_name(contact("Acme Ltd", "Acme Ltd"), PHONE) == "Acme Ltd"
    assert caller_name(contact("James May"), PHONE) == "James May"


def test_contact_with_nothing_displayable_shows_its_number():
    assert caller_name(contact(None), PHONE) == PHONE
    assert caller_name(contact('";<>'), PHONE) == PHONE


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ('James "Jim" May', "James Jim May"),
        ("May; tag=evil", "May tag=evil"),
        ("May\r\nVia: SIP/2.0/UDP evil", "May Via: SIP/2.0/UDP evil"),
        ("Back\\slash <sip:x@evil>", "Backslash sip:x@evil"),
        ("${SHELL(rm -rf /)}", "SHELL(rm -rf /)}"),
        ("$${{x}}", "x}}"),
        ('$"{x}', "x}"),
        ("Tab\there\x00nul\x1besc\x7fdel", "Tab here nul esc del"),
        ("Line\u2028sep\u2029para\u0085nel", "Line sep para nel"),
        ("bidi \u202eevil\u202c zero\u200bwidth", "bidi evil zerowidth"),
        ("   lots \u00a0 of\u3000 space   ", "lots of space"),
    ],
)
def test_nothing_ends_the_quoted_string_starts_a_header_or_expands(raw, shown):
    text = safe_display(raw)
    assert text == shown
    assert is_safe(text)


def test_unicode_is_kept_and_composed_unless_ascii_is_asked():
    decomposed = "Zoe\u0308 Mu\u0308ller"
    assert safe_display(decomposed) == "Zoë Müller"
    assert len(safe_display(decomposed)) == len("Zoë Müller")
    assert safe_display("Zoë Müller", ascii=True) == "Zoe Muller"


def test_ascii_transliteration_is_made_safe_too():
    # the transliteration itself writes characters a display name may not hold
    text = safe_display("«Zoë» „Müller“ 北京", ascii=True)
    assert text.isascii()
    assert is_safe(text)
    assert text.startswith("Zoe")


def test_at_most_40_characters_and_no_trailing_space():
    name = contact("James May", "The Very Long Name Of A Holding Company Ltd")
    text = caller_name(name, PHONE)
    assert len(text) <= MAX_CHARS
    assert text == "James May (The Very Long Name Of A Holdi"
    assert safe_display("x" * 39 + " y") == "x" * 39


def test_the_limit_counts_what_is_left_after_cleaning():
    assert safe_display('"' * 50 + "James May") == "James May"
