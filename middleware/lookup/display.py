"""The caller's name as a phone shows it: safe in a SIP display name and in a PBX dialplan.

A PBX puts the plain-text lookup into a SIP ``From`` display name (a quoted string) or a dialplan
variable (Asterisk, FreeSWITCH), so nothing from the CRM may end the quoted string, start a header
or a parameter, or be expanded as a variable: no control characters or line breaks, none of
``"`` ``;`` ``\\`` ``<`` ``>``, no ``${``. Whitespace is collapsed, the text trimmed, and cut to
``MAX_CHARS``. With ``ascii`` the name is transliterated first (a phone or trunk that carries only
IA5 names), so what the transliteration writes ("«" becomes "<<") is made safe as well.
"""

from __future__ import annotations

import unicodedata

from unidecode import unidecode

MAX_CHARS = 40
BANNED = '";\\<>'
# Characters that become a space (so "Zoë\nMüller" stays two words) or vanish.
_SPACE_CATEGORIES = frozenset({"Cc", "Zs", "Zl", "Zp"})
_DROP_CATEGORIES = frozenset({"Cf", "Cs", "Co", "Cn"})  # format (bidi overrides), unassigned


def caller_name(contact: dict, phone: str | None, *, ascii: bool = False) -> str:
    """What the phone shows for a found ``contact``: "name (company)", at most ``MAX_CHARS``.

    The company is left out when it is the name already (a contact with no person's name is named
    after its company); a contact with nothing displayable shows its number."""
    name, company = contact.get("name"), contact.get("company")
    text = f"{name} ({company})" if name and company and company != name else (name or "")
    return safe_display(text, ascii=ascii) or safe_display(phone or "")


def safe_display(text: str, *, ascii: bool = False) -> str:
    """``text`` made safe for a SIP display name and a dialplan, at most ``MAX_CHARS``."""
    text = unicodedata.normalize("NFC", text)  # "e" + combining diaeresis is one character
    if ascii:
        text = unidecode(text)
    kept = []
    for char in text:
        category = unicodedata.category(char)
        if category in _SPACE_CATEGORIES or char.isspace():
            kept.append(" ")
        elif category not in _DROP_CATEGORIES and char not in BANNED:
            kept.append(char)
    text = "".join(kept)
    while "${" in text:  # "$${{" leaves "${" after one pass
        text = text.replace("${", "")
    return " ".join(text.split())[:MAX_CHARS].rstrip()
