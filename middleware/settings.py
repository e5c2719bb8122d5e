"""Settings: read once at start-up from defaults, `.env`, the environment and a test dict.

Every CTI_* variable of the contract is parsed and validated here; the rest of the code receives a
frozen ``Settings`` and never reads ``os.environ``. A wrong value raises ``SettingsError`` whose
message is one line that names the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

from . import settings_values as values
from .settings_values import Rate, Reader, SettingsError

DIALERS = ("cc_agent", "zain", "telephony", "sandbox")
AGENT_PROVIDERS = ("cc_agent", "telephony", "ibizfone", "sandbox")
CRMS = ("switchtransact", "sandbox")
DIAL_FORMATS = ("e164", "international", "national")
DEFAULT_DIAL_FORMAT = {
    "zain": "national",
    "cc_agent": "international",
    "telephony": "national",
    "sandbox": "e164",
}
SETTLE_MAX = 3600  # CTI_JOURNAL_SETTLE_SECONDS: well inside the 4 hours an open call may wait
# Upper bounds of the settings that become times: what a deployment could mean, and far inside
# what datetime, sockets and Redis expiries take (a token TTL of 3e11 s made every token a 500).
TTL_MAX = 10 * 366 * 86400  # cache lifetimes, token lifetime: ten years
TIMEOUT_MAX = 300  # CTI_UPSTREAM_TIMEOUT, CTI_LOOKUP_TIMEOUT: five minutes
DEDUPE_MAX = 86400  # CTI_DEDUPE_SECONDS: a day


@dataclass(frozen=True)
class Settings:
    api_keys: tuple[str, ...]
    webhook_secret: str | None
    default_region: str
    allowed_countries: frozenset[str] | None  # None means any region
    dialer: str
    agent_provider: str
    dial_format: str
    crm: str
    crm_url: str | None
    crm_api_key: str | None
    crm_auth_header: str
    crm_phone_formats: tuple[str, ...]
    cc_agent_url: str | None
    cc_agent_api_key: str | None
    zain_url: str | None
    zain_token: str | None
    zain_domain: str | None
    zain_locale: str
    telephony_url: str | None
    telephony_token: str | None
    ibizfone_url: str | None
    ibizfone_api_key: str | None
    ibizfone_custid: str | None
    agents_file: Path | None
    cache_ttl: float
    cache_negative_ttl: float
    cache_stale_ttl: float
    cache_size: int
    cache_revalidate_ttl: float
    cache_local_ttl: float  # with Redis: seconds a worker trusts its in-process copy
    upstream_timeout: float
    lookup_timeout: float
    dedupe_seconds: float
    call_rate: Rate
    pop_contact_url: str | None
    pop_unknown_url: str | None
    database: str
    redis_url: str | None
    timezone: ZoneInfo
    journal_max_attempts: int
    journal_settle_seconds: float  # a cc_agent call whose legs all ended waits this for a late leg
    dnc_list_id: str | None
    ca_bundle: str | None = None  # PEM file of authorities for upstream HTTPS; None: the system's
    display_ascii: bool = False  # the plain-text caller name transliterated to ASCII
    streams_per_worker: int = 16  # screen-pop streams one threaded gunicorn worker may hold
    stream_url: str | None = None  # where browsers open streams (the stream server), if elsewhere
    stream_origins: tuple[str, ...] = ()  # page origins the stream server answers cross-origin
    streams_per_credential: int = 8  # streams one credential holds on one stream, per host
    frame_origins: tuple[str, ...] = ()  # CRM origins that may frame our pages; none: no framing
    lookup_keys: tuple[str, ...] = ()
    token_secret: str | None = None
    token_ttl: int = 43200
    journal_retention: int = 90 * 86400  # seconds finished journal entries are kept; 0: for ever

    def secrets(self) -> list[str]:
        """Every credential this process holds: scrubbed from logs, errors and responses."""
        values = [
            *self.api_keys,
            *self.lookup_keys,
            self.token_secret,
            self.webhook_secret,
            self.crm_api_key,
            self.cc_agent_api_key,
            self.zain_token,
            self.telephony_token,
            self.ibizfone_api_key,
            unquote(urlsplit(self.redis_url).password or "") if self.redis_url else None,
            unquote(urlsplit(self.database).password or "") if "://" in self.database else None,
        ]
        return [v for v in values if v]


def read_environment(test_config: Mapping[str, object] | None = None) -> dict[str, str]:
    """`.env` in the working directory, then the real environment (which wins), then tests."""
    merged: dict[str, str] = {}
    dotenv = Path.cwd() / ".env"
    if dotenv.is_file():
        merged.update({k: v for k, v in dotenv_values(dotenv).items() if v is not None})
    merged.update(os.environ)
    for key, value in (test_config or {}).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = str(value)
    return merged


def _require(settings_for: str, **required: str | None) -> None:
    for name, value in required.items():
        if not value:
            raise SettingsError(name, f"required when {settings_for}")


def load_settings(env: Mapping[str, str]) -> Settings:
    """Parse and validate every setting; raise SettingsError on the first wrong one."""
    r = Reader(env)
    keys = tuple(k.strip() for k in (r.text("CTI_API_KEYS") or "").split(",") if k.strip())
    region = r.region("CTI_DEFAULT_REGION", r.text("CTI_DEFAULT_REGION", "ZA"))

    allowed_raw = r.text("CTI_ALLOWED_COUNTRIES", region)
    if allowed_raw == "*":
        allowed = None
    else:
        allowed = frozenset(
            r.region("CTI_ALLOWED_COUNTRIES", part)
            for part in allowed_raw.split(",")
            if part.strip()
        )
        if not allowed:
            raise SettingsError("CTI_ALLOWED_COUNTRIES", "lists no region")

    dialer = r.choice("CTI_DIALER", DIALERS, "sandbox")
    agent_default = "sandbox" if dialer == "zain" else dialer
    agent_provider = r.choice("CTI_AGENT_PROVIDER", AGENT_PROVIDERS, agent_default)
    dial_format = r.choice("CTI_DIAL_FORMAT", DIAL_FORMATS, DEFAULT_DIAL_FORMAT[dialer])
    crm = r.choice("CTI_CRM", CRMS, "sandbox")

    formats_raw = r.text("CTI_CRM_PHONE_FORMATS", "e164,national")
    phone_formats = tuple(f.strip().lower() for f in formats_raw.split(",") if f.strip())
    bad = [f for f in phone_formats if f not in DIAL_FORMATS]
    if bad or not phone_formats:
        raise SettingsError(
            "CTI_CRM_PHONE_FORMATS",
            f"expected a list of {', '.join(DIAL_FORMATS)}, got {formats_raw!r}",
        )

    tz_name = r.text("CTI_TIMEZONE", "UTC")
    try:
        timezone = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError("CTI_TIMEZONE", f"{tz_name!r} is not an IANA time zone") from None

    agents_file = r.text("CTI_AGENTS_FILE")
    if agents_file and not Path(agents_file).is_file():
        raise SettingsError("CTI_AGENTS_FILE", f"no such file: {agents_file}")

    database = r.text("CTI_DATABASE", "instance/cti.sqlite3")
    if "://" in database and not database.startswith(("postgresql://", "postgres://")):
        raise SettingsError("CTI_DATABASE", "must be a SQLite path or a postgresql:// URL")
    redis_url = r.text("CTI_REDIS_URL")
    if redis_url and urlsplit(redis_url).scheme not in ("redis", "rediss", "unix"):
        raise SettingsError("CTI_REDIS_URL", "must be a redis://, rediss:// or unix:// URL")

    ca_bundle = values.ca_bundle(r.text("CTI_CA_BUNDLE"))

    auth_header = r.text("CTI_CRM_AUTH_HEADER", "Authorization")
    if not all(c.isalnum() or c == "-" for c in auth_header):
        raise SettingsError("CTI_CRM_AUTH_HEADER", f"{auth_header!r} is not an HTTP header name")

    settings = Settings(
        api_keys=keys,
        webhook_secret=r.text("CTI_WEBHOOK_SECRET"),
        default_region=region,
        allowed_countries=allowed,
        dialer=dialer,
        agent_provider=agent_provider,
        dial_format=dial_format,
        crm=crm,
        crm_url=r.url("CTI_CRM_URL"),
        crm_api_key=r.text("CTI_CRM_API_KEY"),
        crm_auth_header=auth_header,
        crm_phone_formats=phone_formats,
        cc_agent_url=r.url("CTI_CC_AGENT_URL"),
        cc_agent_api_key=r.text("CTI_CC_AGENT_API_KEY"),
        zain_url=r.url("CTI_ZAIN_URL"),
        zain_token=r.text("CTI_ZAIN_TOKEN"),
        zain_domain=r.text("CTI_ZAIN_DOMAIN"),
        zain_locale=r.text("CTI_ZAIN_LOCALE", "en"),
        telephony_url=r.url("CTI_TELEPHONY_URL"),
        telephony_token=r.text("CTI_TELEPHONY_TOKEN"),
        ibizfone_url=r.url("CTI_IBIZFONE_URL"),
        ibizfone_api_key=r.text("CTI_IBIZFONE_API_KEY"),
        ibizfone_custid=r.text("CTI_IBIZFONE_CUSTID"),
        agents_file=Path(agents_file) if agents_file else None,
        cache_ttl=r.number("CTI_CACHE_TTL", 300, maximum=TTL_MAX),
        cache_negative_ttl=r.number("CTI_CACHE_NEGATIVE_TTL", 60, maximum=TTL_MAX),
        cache_stale_ttl=r.number("CTI_CACHE_STALE_TTL", 86400, maximum=TTL_MAX),
        cache_size=r.number("CTI_CACHE_SIZE", 10000, integer=True, minimum=1),
        cache_revalidate_ttl=r.number("CTI_CACHE_REVALIDATE_TTL", 3600, maximum=TTL_MAX),
        cache_local_ttl=r.number("CTI_CACHE_LOCAL_TTL", 2, maximum=TTL_MAX),
        upstream_timeout=r.number("CTI_UPSTREAM_TIMEOUT", 5, minimum=0.01, maximum=TIMEOUT_MAX),
        lookup_timeout=r.number("CTI_LOOKUP_TIMEOUT", 2, minimum=0.01, maximum=TIMEOUT_MAX),
        dedupe_seconds=r.number("CTI_DEDUPE_SECONDS", 10, maximum=DEDUPE_MAX),
        call_rate=values.rate("CTI_CALL_RATE", r.text("CTI_CALL_RATE", "20/minute")),
        pop_contact_url=r.pop_url("CTI_POP_CONTACT_URL"),
        pop_unknown_url=r.pop_url("CTI_POP_UNKNOWN_URL"),
        database=database,
        redis_url=redis_url,
        timezone=timezone,
        journal_max_attempts=r.number("CTI_JOURNAL_MAX_ATTEMPTS", 8, integer=True, minimum=1),
        journal_settle_seconds=r.number("CTI_JOURNAL_SETTLE_SECONDS", 5, maximum=SETTLE_MAX),
        journal_retention=r.duration("CTI_JOURNAL_RETENTION", "90d"),
        dnc_list_id=r.text("CTI_DNC_LIST_ID"),
        ca_bundle=ca_bundle,
        display_ascii=r.flag("CTI_DISPLAY_ASCII", False),
        streams_per_worker=r.number("CTI_STREAMS_PER_WORKER", 16, integer=True),
        stream_url=r.url("CTI_STREAM_URL"),
        stream_origins=values.origins("CTI_STREAM_ORIGINS", r.text("CTI_STREAM_ORIGINS", "")),
        streams_per_credential=r.number("CTI_STREAMS_PER_CREDENTIAL", 8, integer=True, minimum=1),
        frame_origins=values.origins("CTI_FRAME_ORIGINS", r.text("CTI_FRAME_ORIGINS", "")),
        lookup_keys=values.keys(r.text("CTI_LOOKUP_KEYS")),
        token_secret=r.text("CTI_TOKEN_SECRET"),
        token_ttl=r.number("CTI_TOKEN_TTL", 43200, integer=True, minimum=1, maximum=TTL_MAX),
    )
    if set(settings.lookup_keys) & set(settings.api_keys):
        raise SettingsError("CTI_LOOKUP_KEYS", "a key is also in CTI_API_KEYS; give each one kind")
    _check_upstreams(settings)
    return settings


#: What each upstream needs once chosen: its variables (the field of each is its name without
#: ``CTI_``, lower-cased) and how the error says it was chosen.
_CHOSEN_NEEDS = (
    ("zain", "CTI_DIALER is zain", ("CTI_ZAIN_URL", "CTI_ZAIN_TOKEN", "CTI_ZAIN_DOMAIN")),
    ("telephony", "telephony is chosen", ("CTI_TELEPHONY_URL", "CTI_TELEPHONY_TOKEN")),
    (
        "ibizfone",
        "CTI_AGENT_PROVIDER is ibizfone",
        ("CTI_IBIZFONE_URL", "CTI_IBIZFONE_API_KEY", "CTI_IBIZFONE_CUSTID"),
    ),
)


def _check_upstreams(s: Settings) -> None:
    """Each chosen upstream must have its URL and credentials."""
    chosen = {s.dialer, s.agent_provider}
    if "cc_agent" in chosen or s.dnc_list_id:
        why = "cc_agent is chosen" if "cc_agent" in chosen else "CTI_DNC_LIST_ID is set"
        _require(why, CTI_CC_AGENT_URL=s.cc_agent_url, CTI_CC_AGENT_API_KEY=s.cc_agent_api_key)
    for name, why, variables in _CHOSEN_NEEDS:
        if name in chosen:
            _require(why, **{v: getattr(s, v.removeprefix("CTI_").lower()) for v in variables})
    if s.crm == "switchtransact":
        _require("CTI_CRM is switchtransact", CTI_CRM_URL=s.crm_url, CTI_CRM_API_KEY=s.crm_api_key)
