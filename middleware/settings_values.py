"""How each kind of setting is read and checked (``settings.load_settings`` reads them all, once):
a number within bounds, a duration, a flag, a URL, a screen-pop target, a region, a call rate, a
CA bundle, web origins, a key list. Each failure is a ``SettingsError`` naming its variable."""

from __future__ import annotations

import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import phonenumbers

from .durations import parse_duration

FLAGS = {
    **dict.fromkeys(("true", "1", "yes", "on"), True),
    **dict.fromkeys(("false", "0", "no", "off"), False),
}
RATE_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
# The placeholders each screen-pop target may hold (contract section 1).
POP_PLACEHOLDERS = {
    "CTI_POP_CONTACT_URL": ("id", "entity_type", "phone", "customer_number"),
    "CTI_POP_UNKNOWN_URL": ("phone",),
}
UNSAFE_SCHEMES = ("javascript", "data", "vbscript", "file")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


class SettingsError(ValueError):
    """A setting with a wrong value; the message names the variable."""

    def __init__(self, variable: str, problem: str):
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


@dataclass(frozen=True)
class Rate:
    limit: int
    window: int  # seconds

    def __str__(self) -> str:
        return f"{self.limit} per {self.window}s"


class Reader:
    """Typed access to the raw variables; each failure names its variable."""

    def __init__(self, env: Mapping[str, str]):
        self.env = env

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self.env.get(name, "")
        value = value.strip()
        return value if value else default

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = (self.text(name) or default).lower()
        if value not in choices:
            raise SettingsError(
                name, f"unknown value {value!r}; expected one of {', '.join(choices)}"
            )
        return value

    def number(self, name: str, default: float, *, integer=False, minimum=0, maximum=float("inf")):
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = int(raw) if integer else float(raw)
        except ValueError:
            kind = "a whole number" if integer else "a number"
            raise SettingsError(name, f"{raw!r} is not {kind}") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise SettingsError(name, f"{raw!r} is not a finite number")
        if value < minimum:
            raise SettingsError(name, f"must be at least {minimum}, got {raw}")
        if value > maximum:
            raise SettingsError(name, f"must be at most {maximum:g}, got {raw}")
        return value

    def duration(self, name: str, default: str) -> int:
        """Seconds (``durations.parse_duration``); set but empty is an error, not the default."""
        try:
            return parse_duration(self.env.get(name, default))
        except ValueError as exc:
            raise SettingsError(name, str(exc)) from None

    def flag(self, name: str, default: bool) -> bool:
        raw = self.text(name)
        if raw is None:
            return default
        value = FLAGS.get(raw.lower())
        if value is None:
            raise SettingsError(name, f"{raw!r} is not true or false")
        return value

    def url(self, name: str) -> str | None:
        raw = self.text(name)
        if raw is None:
            return None
        parts = urlsplit(raw)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SettingsError(name, "must be an http:// or https:// URL with a host")
        if parts.query or parts.fragment or raw.endswith(("?", "#")):
            raise SettingsError(name, "is a base URL: paths are added to it, so no ?query or #part")
        return raw.rstrip("/")

    def pop_url(self, name: str) -> str | None:
        """A screen-pop target: an absolute URL (http, https, or a desktop CRM's own scheme, not
        one that runs or reads anything in the browser) whose ``{placeholders}`` are the ones
        the contract gives it."""
        raw = self.text(name)
        if raw is None:
            return None
        allowed = POP_PLACEHOLDERS[name]
        unknown = sorted(set(_PLACEHOLDER.findall(raw)) - set(allowed))
        if unknown:
            raise SettingsError(
                name,
                f"unknown placeholder {{{unknown[0]}}}; "
                f"it may hold {', '.join('{' + p + '}' for p in allowed)}",
            )
        filled = _PLACEHOLDER.sub("x", raw)
        parts = urlsplit(filled)
        if not parts.scheme or parts.scheme.lower() in UNSAFE_SCHEMES:
            raise SettingsError(name, "must be an absolute URL (https://crm.example/...)")
        if parts.scheme.lower() in ("http", "https") and not parts.netloc:
            raise SettingsError(name, "must be an http:// or https:// URL with a host")
        return raw

    def region(self, name: str, value: str) -> str:
        region = value.strip().upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise SettingsError(name, f"{value!r} is not an ISO 3166 region known to phonenumbers")
        return region


def rate(name: str, raw: str) -> Rate:
    count, _, unit = raw.partition("/")
    unit = unit.strip().lower().rstrip("s") or "minute"
    if not count.strip().isdigit() or unit not in RATE_UNITS or int(count) < 1:
        raise SettingsError(name, f"{raw!r} is not of the form N/second|minute|hour|day")
    return Rate(int(count), RATE_UNITS[unit])


def ca_bundle(path: str | None) -> str | None:
    """The bundle's path once ``ssl`` has loaded at least one authority from it."""
    if path is None:
        return None
    try:
        context = ssl.create_default_context(cafile=path)
    except (OSError, ssl.SSLError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a PEM bundle"
        raise SettingsError("CTI_CA_BUNDLE", f"cannot load {path}: {reason}") from None
    if not context.get_ca_certs():
        raise SettingsError("CTI_CA_BUNDLE", f"{path} holds no certificate authority")
    return str(Path(path).resolve())


def origins(name: str, raw: str) -> tuple[str, ...]:
    """Web origins (``scheme://host[:port]``, nothing more), as a browser sends them in ``Origin``."""
    origins = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        parts = urlsplit(part)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query:
            raise SettingsError(name, f"{part!r} is not an origin like https://crm.example.com")
        origins.append(f"{parts.scheme}://{parts.netloc}".lower())
    return tuple(origins)


def keys(raw: str | None) -> tuple[str, ...]:
    return tuple(k.strip() for k in (raw or "").split(",") if k.strip())
